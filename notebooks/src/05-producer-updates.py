# %% [markdown]
# # Module 5 — Producer updates: appends, upserts, time travel
#
# *About 30 minutes.* Data products change: new orders arrive every day, corrections come in.
# The sales domain writes new **versions** of its Delta tables; consumers see the new data at
# once, with no copy and no new grant, and can still read an older version (time travel). On
# AWS the producer would write to its S3 bucket (for example with Glue jobs) and consumers would
# query the same table through Lake Formation.

# %%
%load_ext meshsim
import datetime as dt

import pyarrow as pa

from meshsim import workshop

mesh = workshop.start(5)
OWNER = "sales-ops"   # the owner of sales.order_history: only it may write its tables

# %%
mesh.history("sales.orders")

# %% [markdown]
# ## Append: new orders arrive
#
# A write is checked against the table's declared schema, then published as the next version.

# %%
def new_orders(keys, status="O", price="100.00"):
    return pa.table({
        "o_orderkey": pa.array(keys, pa.int64()),
        "o_custkey": pa.array([1] * len(keys), pa.int64()),
        "o_orderstatus": [status] * len(keys),
        "o_totalprice": pa.array([price] * len(keys)).cast(pa.decimal128(15, 2)),
        "o_orderdate": pa.array([dt.date(2026, 11, 30)] * len(keys)),
        "o_orderpriority": ["1-URGENT"] * len(keys),
        "o_clerk": ["Clerk#000000001"] * len(keys),
        "o_shippriority": pa.array([0] * len(keys), pa.int32()),
        "o_comment": ["from the workshop"] * len(keys),
    })

appended = mesh.write("sales.orders", new_orders([9_000_001, 9_000_002, 9_000_003]), by=OWNER)
appended

# %% [markdown]
# Consumers see the new rows on their next query: the same table, a new version.

# %%
%%meshsql --as finance_controller
SELECT count(*) AS orders, max(o_orderkey) AS newest FROM sales.orders

# %% [markdown]
# ## Upsert: corrections by primary key
#
# `o_orderkey` is the table's primary key: an upsert updates the rows whose key exists and
# inserts the others.

# %%
upserted = mesh.write("sales.orders", new_orders([9_000_002, 9_000_004], status="F", price="250.00"), mode="upsert", by=OWNER)
upserted

# %%
%%meshsql --as finance_controller
SELECT o_orderkey, o_orderstatus, o_totalprice FROM sales.orders WHERE o_orderkey > 9000000 ORDER BY 1

# %% [markdown]
# Only the owner may write: anyone else is refused.

# %%
from meshsim.errors import MeshsimError

try:
    mesh.write("sales.orders", new_orders([9_000_005]), by="customer-data")
except MeshsimError as refused:
    print("refused:", refused.message.splitlines()[0])

# %% [markdown]
# ## Time travel
#
# Every published version stays readable, under the consumer's policies of today.

# %%
mesh.history("sales.orders")

# %%
%%meshsql --as finance_controller
SELECT count(*) AS orders_at_first_version FROM sales.orders AT (VERSION => 0)

# %% [markdown]
# ## Freshness against the SLA
#
# `order_history` promises data at most 24 hours old (`freshness_sla: 24h`); `show` says
# whether the product keeps it.

# %%
mesh.show("sales.order_history")

# %% [markdown]
# ## Your turn
#
# **5.1** Which version of `sales.orders` is published now? Give a number.

# %%
answer = mesh.published_version("sales.orders")  # answer
workshop.check("5.1", answer)

# %% [markdown]
# **5.2** Append one order with key `9000010` as the owner. Then give the number of rows
# `finance_controller` sees in `sales.orders`.

# %%
mesh.write("sales.orders", new_orders([9_000_010]), by=OWNER)  # answer
answer = mesh.sql("finance_controller", "SELECT count(*) FROM sales.orders").fetchall()[0][0]  # answer
workshop.check("5.2", answer)

# %% [markdown]
# **5.3** How many orders did `sales.orders` have at version 1 (after the first append)? Use
# time travel.

# %%
answer = mesh.sql("finance_controller", "SELECT count(*) FROM sales.orders AT (VERSION => 1)").fetchall()[0][0]  # answer
workshop.check("5.3", answer)

# %% [markdown]
# ## What changes on AWS
#
# On AWS the producer's job writes new Delta (or Iceberg) versions to S3 and updates the Glue
# table; Athena reads the current snapshot, and supports time travel on Iceberg tables (not on
# Delta tables). Write permissions are IAM policies on the producer's bucket; here they are the
# product's owner (`--by`).
