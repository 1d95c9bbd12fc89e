# %% [markdown]
# # Module 2 — Central governance: the catalog, tags and grants
#
# *About 30 minutes.* You are the **central governance team**. You keep the catalog, the tag
# taxonomy and the rules. On AWS this is the central governance account: the Glue Data
# Catalog, Lake Formation's LF-Tags and grants.

# %%
%load_ext meshsim
from meshsim import workshop

mesh = workshop.start(2)

# %% [markdown]
# ## The catalog
#
# Every published product, its owner, version, tables and subscribers; full-text search over
# products, tables and columns (on AWS: the Glue Data Catalog, or DataZone's catalog search).

# %%
mesh.products()

# %%
mesh.search("account balance")

# %%
mesh.show("supply.supply_catalog")

# %% [markdown]
# ## The tag taxonomy (LF-Tags)
#
# `mesh.yaml` declares the tag keys and their allowed values, like LF-Tags. Products, tables
# and columns carry tags; a column inherits its table's, a table its product's, unless it sets
# its own.

# %%
mesh.spec.mesh.tags

# %%
[(t.ref, dict(t.table.tags) or "(inherits the product's)") for t in mesh.spec.tables()]

# %% [markdown]
# ## Tag-based grants
#
# A **tag grant** gives a consumer every column whose tags match an expression (Lake
# Formation's tag-based access control). The wholesale partner sees public business-to-business
# data:

# %%
mesh.spec.mesh.policies.tag_grants

# %%
mesh.access("external_partner")

# %% [markdown]
# ## Retagging changes who sees what
#
# Supply decides that the part-supplier table is public b2b data: tag it. Nobody edits a grant;
# the tag grant now covers the table, at once.

# %%
catalog_file = mesh.mesh_dir / "supply" / "products" / "supply_catalog.yaml"
text = catalog_file.read_text()
catalog_file.write_text(text.replace(
    "    description: Which supplier offers which part, how many and at what cost.\n",
    "    description: Which supplier offers which part, how many and at what cost.\n"
    "    tags: {channel: b2b, confidentiality: public}\n",
))
mesh.access("external_partner")

# %%
%%meshsql --as external_partner
SELECT count(*) AS offers FROM supply.partsupp

# %% [markdown]
# ## The access matrix
#
# Who may see what, column by column, and which rule decided each cell: one answer, the same the
# query engine uses.

# %%
mesh.access().cells()

# %% [markdown]
# ## A what-if: see the effect of a rule before applying it
#
# Write the proposed `mesh.yaml` to another file and compare; nothing changes until you edit the
# real one.

# %%
proposed = mesh.mesh_dir.parent / "what-if.yaml"
proposed.write_text((mesh.mesh_dir / "mesh.yaml").read_text().replace(
    "      expression: channel=b2b AND confidentiality=public\n",
    "      expression: channel=b2b AND confidentiality=public\n"
    "    - name: planner_public\n"
    "      consumers: [supply_planner]\n"
    "      expression: confidentiality=public\n",
))
mesh.access_changes(proposed, "supply_planner")

# %% [markdown]
# ## Your turn
#
# **2.1** After the retagging, which tables can `external_partner` read? Give their references.

# %%
answer = [a.table for a in mesh.access("external_partner") if a.granted and not a.table.startswith("meshsim.")]  # answer
workshop.check("2.1", answer)

# %% [markdown]
# **2.2** Which columns of the mesh are tagged `confidentiality=sensitive`? Give them as
# `domain.table.column`. Hint: `mesh.show(...)`, or the product files.

# %%
answer = ["customer.customer.c_acctbal", "supply.supplier.s_acctbal"]  # answer
workshop.check("2.2", answer)

# %% [markdown]
# **2.3** With the what-if applied, which tables would `supply_planner` gain? Give their
# references.

# %%
answer = sorted({row["table"] for row in mesh.access_changes(proposed, "supply_planner")})  # answer
workshop.check("2.3", answer)

# %% [markdown]
# ## What changes on AWS
#
# In Lake Formation you would create the LF-Tags (`CreateLFTag`), attach them to databases,
# tables and columns (`AddLFTagsToResource`) and grant on tag expressions
# (`GrantPermissions` with an `LFTagPolicy`). A what-if has no AWS counterpart: you would test
# in a separate account. `meshsim export lakeformation` writes the CloudFormation for this mesh.
