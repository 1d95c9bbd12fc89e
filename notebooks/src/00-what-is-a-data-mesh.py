# %% [markdown]
# # Module 0 — What a data mesh is
#
# *About 20 minutes. Offline: no cloud account, no network.*
#
# A **data mesh** organises analytical data by business **domain**. Four ideas:
#
# 1. **Domain ownership.** Each domain (sales, customer, supply...) owns its data, in its own
#    storage, and the team that knows the data is responsible for it.
# 2. **Data as a product.** A domain publishes **data products**: tables with a description, an
#    owner, a schema, classifications, a freshness promise and a version, that others can find
#    and rely on.
# 3. **A self-serve platform.** Domains do not each build their own infrastructure: storage,
#    a catalog and a query layer are shared services.
# 4. **Federated governance.** Rules (who may see what, how personal data is protected) are set
#    centrally and enforced everywhere, automatically.
#
# ## The AWS reference architecture, and meshsim's version of it
#
# The AWS workshop "Build a data mesh on AWS" uses one AWS **account per producer domain**, one
# **central governance account** and **consumer accounts**:
#
# | part of the mesh | on AWS | in meshsim |
# |---|---|---|
# | a producer domain's storage | an S3 bucket in the producer's account | `accounts/<domain>/` in the workspace: Delta Lake tables |
# | the catalog of products | Glue Data Catalog in the governance account | the catalog (`mesh.catalog`, `meshsim products`, `meshsim show`) |
# | sharing across accounts | AWS RAM shares and resource links | not needed: one machine, one catalog |
# | permissions, LF-Tags | Lake Formation (named and tag-based grants, data cells filters) | `domains/mesh.yaml`: grants, tag grants, masks, row filters |
# | a consumer's query | Athena in the consumer's account | `mesh.sql("consumer", ...)`, `%%meshsql --as consumer` |
# | requests and approvals | DataZone subscriptions | `mesh.catalog.request(...)`, `approve`, `revoke` |
#
# Everything a step does here has an AWS counterpart; `docs/workshop/aws-mapping.md` lists them.
#
# ## Start the module
#
# Every module starts from a known state: a fresh copy of the example mesh (`domains/` in the
# repository), built into its own workspace in a few seconds. Run the next cell.

# %%
%load_ext meshsim
from meshsim import workshop

mesh = workshop.start(0)
mesh

# %% [markdown]
# ## Domains and their accounts
#
# The example is a retailer with three domains. Each has an owner team and its own storage
# root, its "account".

# %%
mesh.domains()

# %% [markdown]
# ## Data products and their tables
#
# A product groups tables that belong together. Each table is a Delta Lake table: a log of
# versions over Parquet files, in the owning domain's storage.

# %%
mesh.products()

# %%
mesh.tables()

# %% [markdown]
# ## Federated governance: deny by default
#
# A consumer sees only what a rule grants it. The admin sees everything; others see what
# `domains/mesh.yaml` grants them, with masks on personal data and row filters by region.

# %%
%%meshsql --as eu_marketing_analyst
SELECT c_name, c_phone, c_mktsegment FROM customer.customer LIMIT 3

# %%
mesh.access("eu_marketing_analyst")

# %% [markdown]
# ## Your turn
#
# **0.1** Which domains does the example mesh have? Give their names as a list.

# %%
answer = [d["domain"] for d in mesh.domains()]  # answer
workshop.check("0.1", answer)

# %% [markdown]
# **0.2** Which tables does the product `sales.order_history` publish? Give their references
# (`domain.table`). Hint: `mesh.products()` or `mesh.show("sales.order_history")`.

# %%
answer = [p for p in mesh.products() if p["product"] == "sales.order_history"][0]["tables"]  # answer
workshop.check("0.2", answer)

# %% [markdown]
# **0.3** In which folder (the domain's "account") does `supply.partsupp` live? Give the path
# as a string. On AWS this would be an `s3://` location in the supply account's bucket.

# %%
answer = mesh.locate("supply.partsupp")  # answer
workshop.check("0.3", answer)

# %% [markdown]
# **0.4** Which columns of `customer.customer` does `eu_marketing_analyst` see masked?
# Hint: `mesh.access("eu_marketing_analyst")`, or try a query.

# %%
answer = ["c_name", "c_address", "c_phone"]  # answer
workshop.check("0.4", answer)

# %% [markdown]
# ## What changes on AWS
#
# On AWS each domain would be a separate account, sharing its Glue databases with the
# governance account through AWS RAM; the governance account would grant consumers with Lake
# Formation, and consumers would reach shared tables through resource links. meshsim keeps one
# catalog on one machine, so none of that plumbing appears here: the rules do.
#
# Next: module 1, where a producer publishes a product of its own.
