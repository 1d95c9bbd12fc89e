# %% [markdown]
# # Module 6 — Consumer becomes producer: a derived product, its lineage, contract and gates
#
# *About 40 minutes.* The sales domain reads orders (its own) and customer profiles (the
# customer domain's, under sales' grants) and publishes a new product from them:
# `sales.customer_revenue`, revenue per customer and nation. On AWS the consumer account would
# run a Glue job or an Athena `CREATE TABLE AS`, then publish the result to DataZone; lineage
# would come from OpenLineage events, quality from Glue Data Quality.

# %%
%load_ext meshsim
from meshsim import Mesh, workshop
from meshsim.errors import MeshsimError

mesh = workshop.start(6)
product_file = mesh.mesh_dir / "sales" / "products" / "customer_revenue.yaml"
print(product_file.read_text())

# %% [markdown]
# The product is built **as the consumer `sales`**, through governed SQL: it can only be built
# from what sales may read, and customer names arrive keyed-hashed because the `pii` mask
# applies to sales too.

# %%
%%meshsql --as finance_controller
SELECT nation, count(*) AS customers, round(sum(revenue), 2) AS revenue
FROM sales.customer_revenue GROUP BY 1 ORDER BY 3 DESC LIMIT 5

# %% [markdown]
# ## Lineage: where does a column come from?
#
# Column-level lineage is computed from the product's SQL: each output column, the input
# columns it depends on and how (direct, expression, aggregate, or filter: the columns that
# only decide which rows), and the governance it was read through (masks, row filters).

# %%
mesh.lineage("sales.customer_revenue.revenue", direction="upstream")

# %%
mesh.lineage("sales.customer_revenue.c_name", direction="upstream")

# %% [markdown]
# And the other way: what would break if `l_discount` changed?

# %%
mesh.lineage("sales.lineitem.l_discount", direction="downstream")

# %% [markdown]
# Every build of a derived product, every producer write and every check run is also an
# OpenLineage run event, in `governance/lineage/events.jsonl` (or sent to `OPENLINEAGE_URL`).

# %%
events = (mesh.workspace.root / "governance" / "lineage" / "events.jsonl").read_text().splitlines()
len(events), events[0][:200]

# %% [markdown]
# ## The contract (Open Data Contract Standard v3)
#
# The product's promise as a standard contract: schema, classifications, primary key, quality
# rules, the freshness SLA, owner and where the data lives.

# %%
print(mesh.export_contract("sales.customer_revenue")[:1500])

# %% [markdown]
# ## Quality rules and their gate
#
# The product's rules run on every build, write and publish; `check` runs them on demand.

# %%
mesh.check("sales.customer_revenue")

# %% [markdown]
# Tighten a rule so that the data fails it (no customer may have revenue above 1): the build
# is refused and the previous version stays current.

# %%
original = product_file.read_text()
product_file.write_text(original.replace("{range: {min: 0}}", "{range: {min: 0, max: 1}}"))
try:
    Mesh.build(mesh.mesh_dir, mesh.workspace.root)
except MeshsimError as refused:
    print("refused:", refused.message.splitlines()[0])
product_file.write_text(original)

# %% [markdown]
# ## A breaking change is refused
#
# Remove the `orders` column. Consumers who read it would break: the build refuses unless the
# product's major version is raised, and names the subscribers it would break.

# %%
without_orders = original.replace("               count(DISTINCT o.o_orderkey) AS orders,\n", "").replace(
    "      - {name: orders, type: bigint, classification: internal, "
    "description: Orders with at least one line item not returned.}\n",
    "",
)
product_file.write_text(without_orders)
mesh.contract_diff("sales.customer_revenue")

# %%
try:
    Mesh.build(mesh.mesh_dir, mesh.workspace.root)
except MeshsimError as refused:
    print(refused.message)

# %% [markdown]
# Raise the major version (and tell the subscribers): now it builds.

# %%
product_file.write_text(without_orders.replace("name: customer_revenue\n", "name: customer_revenue\nversion: 2.0.0\n", 1))
mesh = Mesh.build(mesh.mesh_dir, mesh.workspace.root)
mesh.show("sales.customer_revenue")

# %% [markdown]
# ## Your turn
#
# **6.1** Which input columns does `sales.customer_revenue.revenue` get its values from (not
# the filter-only ones)? Give them as `domain.table.column`.

# %%
answer = {r["from"] for r in mesh.lineage("sales.customer_revenue.revenue", direction="upstream").rows() if r["to"] == "sales.customer_revenue.revenue" and r["edge"] != "mask"}  # answer
workshop.check("6.1", answer)

# %% [markdown]
# **6.2** Which mask was `c_name` read through when sales built the product? Give the policy's
# name.

# %%
answer = "pii_keyed_hash"  # answer
workshop.check("6.2", answer)

# %% [markdown]
# **6.3** Which consumers did the refusal name as the subscribers the breaking change would
# break? Give their names.

# %%
answer = ["finance_controller", "governance_admin"]  # answer
workshop.check("6.3", answer)

# %% [markdown]
# **6.4** Which contract version of `sales.customer_revenue` is published now? Give it as a
# string like `"1.0.0"`.

# %%
answer = mesh.spec.product("sales.customer_revenue").product.version  # answer
workshop.check("6.4", answer)

# %% [markdown]
# ## What changes on AWS
#
# On AWS the derived product is a Glue job (or an Athena CTAS) in the consumer account that
# becomes a producer; DataZone shows its lineage from OpenLineage events; Glue Data Quality runs
# DQDL rules and can stop a pipeline; a data contract lives next to the product's code, and a
# breaking change is caught in review, not by the platform.
