# %% [markdown]
# # Module 3 — Consumer: discover, request, query
#
# *About 30 minutes.* You are **external_partner**, a wholesale partner. You want to size an
# offer by customer market segment. On AWS you would search DataZone's catalog, subscribe, wait
# for the owner's approval, then query with Athena in your own account.

# %%
%load_ext meshsim
from meshsim import workshop
from meshsim.errors import AccessDenied

mesh = workshop.start(3)
ME = "external_partner"

# %% [markdown]
# ## Discover

# %%
mesh.search("market segment")

# %%
mesh.show("customer.customer_profiles", as_consumer=ME)

# %% [markdown]
# ## Refused before approval: deny by default

# %%
%%meshsql --as external_partner
SELECT c_mktsegment, count(*) AS customers FROM customer.customer GROUP BY 1 ORDER BY 1

# %% [markdown]
# ## Request access
#
# The request asks for some tables and columns, with a reason. It asks for personal data
# (`c_name`), so the product's owner decides.

# %%
request = mesh.catalog.request(
    ME,
    "customer.customer_profiles",
    "size our wholesale offer by market segment",
    tables=["customer.customer"],
    columns=["c_custkey", "c_name", "c_mktsegment"],
)
request.id, request.state

# %% [markdown]
# ## The owner approves, narrowed
#
# The owner (`customer-data`) approves the segments, not the names.

# %%
approved = mesh.catalog.approve(
    request.id, by="customer-data", columns=["c_custkey", "c_mktsegment"], comment="segments, not names"
)
approved.state

# %%
%%meshsql --as external_partner
SELECT c_mktsegment, count(*) AS customers FROM customer.customer GROUP BY 1 ORDER BY 1

# %%
%%meshsql --as external_partner
SELECT c_name FROM customer.customer LIMIT 1

# %% [markdown]
# ## A governed query across domains
#
# The partner also reads public b2b data of the supply domain (its tag grant): one query reads
# both domains, each under its own rules.

# %%
%%meshsql --as external_partner
SELECT (SELECT count(DISTINCT c_mktsegment) FROM customer.customer) AS segments,
       (SELECT count(DISTINCT p_brand) FROM supply.part) AS brands

# %% [markdown]
# ## Auto-approval of non-sensitive products
#
# A request that touches no personal or sensitive column needs no human: it is approved at once.

# %%
nations = mesh.catalog.request(ME, "customer.customer_profiles", "label nations in our reports", tables=["customer.nation"])
nations.state, nations.auto_approved

# %% [markdown]
# ## Revoke
#
# Ending the subscription takes effect on the next query.

# %%
mesh.catalog.revoke(request.id, by="customer-data", comment="offer sized")
try:
    mesh.sql(ME, "SELECT count(*) FROM customer.customer")
except AccessDenied as refused:
    print("refused:", refused.message)

# %% [markdown]
# ## Your turn
#
# **3.1** What state is the first request in now? Give it as a string.

# %%
answer = mesh.catalog.get_request(request.id).state  # answer
workshop.check("3.1", answer)

# %% [markdown]
# **3.2** Request `customer.region` as `external_partner` (any reason). Was it auto-approved?
# Give the request id as your answer.

# %%
regions = mesh.catalog.request(ME, "customer.customer_profiles", "our regions", tables=["customer.region"])  # answer
answer = regions.id  # answer
workshop.check("3.2", answer)

# %% [markdown]
# **3.3** Which tables can `external_partner` read now? Give their references.

# %%
answer = [a.table for a in mesh.access(ME) if a.granted and not a.table.startswith("meshsim.")]  # answer
workshop.check("3.3", answer)

# %% [markdown]
# ## What changes on AWS
#
# DataZone publishes products to a catalog; a consumer project subscribes, the producer
# approves, and DataZone grants through Lake Formation (and AWS RAM across accounts). A
# narrowed approval corresponds to a grant on fewer columns (or a data cells filter).
