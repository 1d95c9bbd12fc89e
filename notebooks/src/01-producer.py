# %% [markdown]
# # Module 1 — Producer: publish a data product
#
# *About 30 minutes.* You are the new **marketing** domain. You have a CSV export of your
# campaigns and an existing Delta table of stores, and you want both in the mesh as products
# that others can find and, once granted, query.
#
# On AWS a producer account would upload the data to its S3 bucket, crawl it with a Glue
# crawler, describe the tables in the Glue Data Catalog and share them with the governance
# account. Here the same steps are `new domain`, `new product --from`, a description in YAML
# and a build.

# %%
%load_ext meshsim
import csv
from pathlib import Path

from meshsim import Mesh, workshop
from meshsim.mesh import validate

mesh = workshop.start(1)
mesh_dir = mesh.mesh_dir          # this module's own copy of the example mesh
home = mesh_dir.parent
mesh_dir

# %% [markdown]
# ## The producer's own data
#
# A small CSV file, as a marketing tool would export it.

# %%
campaigns_csv = home / "campaigns.csv"
rows = [("campaign_id", "name", "channel", "budget_eur", "start_date", "contact_email")]
for i in range(1, 13):
    channel = ["email", "social", "tv"][i % 3]
    rows.append((i, f"Campaign {i}", channel, 1000 * i, f"2026-{i:02d}-01", f"owner{i}@retail.example"))
with campaigns_csv.open("w", newline="") as f:
    csv.writer(f).writerows(rows)
print(campaigns_csv.read_text()[:200])

# %% [markdown]
# ## A domain, and a product from the file
#
# `Mesh.new_domain` writes `marketing/domain.yaml`; `Mesh.new_product` reads the file like a Glue
# crawler would: it infers the columns' names, types and nullability, classifies each column
# (`internal`, or `pii` for names that look personal, marked "check") and leaves every
# description as `TODO: describe`. (The command line does the same:
# `meshsim new domain marketing` and `meshsim new product marketing.campaigns --from campaigns.csv`.)

# %%
Mesh.new_domain("marketing", mesh_dir=mesh_dir, owner="marketing-team")
new = Mesh.new_product("marketing.campaigns", from_path=campaigns_csv, mesh_dir=mesh_dir)
new.columns

# %%
print(new.file.read_text())

# %% [markdown]
# ## Describe it, then validate
#
# Consumers find products by their descriptions. `validate` runs every check a build runs:
# the `TODO` descriptions are warnings; errors stop a build.

# %%
text = new.file.read_text()
text = text.replace('description: "TODO: describe"', 'description: "Marketing campaigns and their budgets."', 2)
new.file.write_text(text)
for problem in validate(mesh_dir):
    print(problem)

# %% [markdown]
# ## Build: the CSV becomes a Delta table in the marketing account
#
# The build writes the product's table as Delta Lake in `accounts/marketing/` and publishes it
# in the catalog. Building again only redoes what changed.

# %%
mesh = Mesh.build(mesh_dir, mesh.workspace.root)
[(t.ref, t.version, t.rows, t.location) for t in mesh.tables() if t.domain == "marketing"]

# %% [markdown]
# Nobody but the admin can read it yet: deny by default.

# %%
%%meshsql --as eu_marketing_analyst
SELECT count(*) FROM marketing.campaigns

# %%
%%meshsql --as governance_admin
SELECT channel, count(*) AS campaigns, sum(budget_eur) AS budget FROM marketing.campaigns GROUP BY 1 ORDER BY 1

# %% [markdown]
# ## Register an existing Delta table in place
#
# Some data already lives in Delta tables elsewhere (on AWS: an S3 location you register with
# Lake Formation instead of copying). `new product --from` a Delta folder writes a
# `source: {location: ...}`: the build registers the table where it is, without copying it.

# %%
import deltalake
import pyarrow as pa

legacy = home / "legacy" / "stores"
deltalake.write_deltalake(str(legacy), pa.table({"store_id": [1, 2, 3], "city": ["Lyon", "Porto", "Graz"]}))
stores = Mesh.new_product("marketing.stores", from_path=legacy, mesh_dir=mesh_dir)
print(stores.file.read_text())

# %%
mesh = Mesh.build(mesh_dir, mesh.workspace.root)
[(t.ref, t.external, t.location) for t in mesh.tables() if t.domain == "marketing"]

# %% [markdown]
# ## The publish gates
#
# A product is published only when it passes the gates: an owner, a description, a
# classification on every column, and no protected column (`pii`, `sensitive`) readable
# unmasked by any consumer. Break one on purpose: remove the classification of `budget_eur`.

# %%
broken = new.file.read_text().replace(
    '{name: budget_eur, type: "bigint", nullable: false, classification: internal,',
    '{name: budget_eur, type: "bigint", nullable: false,',
)
new.file.write_text(broken)
for problem in validate(mesh_dir):
    if problem.severity == "error":
        print(problem)

# %%
from meshsim.errors import MeshsimError

try:
    Mesh.build(mesh_dir, mesh.workspace.root)
except MeshsimError as refused:
    print("refused:", refused.message.splitlines()[0])

# %% [markdown]
# Put the classification back before going on.

# %%
new.file.write_text(text)
mesh = Mesh.build(mesh_dir, mesh.workspace.root)

# %% [markdown]
# ## Your turn
#
# **1.1** How many rows does `marketing.campaigns` have now? Give a number.

# %%
answer = [t.rows for t in mesh.tables() if t.ref == "marketing.campaigns"][0]  # answer
workshop.check("1.1", answer)

# %% [markdown]
# **1.2** Which columns of `marketing.campaigns` did `new product` classify as `pii`? Give their
# names. Why does no consumer see them in clear? (Look for a mask by classification in
# `mesh.yaml`.)

# %%
answer = [name for name, _, _, classification in new.columns if classification == "pii"]  # answer
workshop.check("1.2", answer)

# %% [markdown]
# **1.3** Where are the files of the registered table `marketing.stores`? Give the folder.

# %%
answer = mesh.locate("marketing.stores")  # answer
workshop.check("1.3", answer)

# %% [markdown]
# **1.4** Which gate refused the broken build? Give the column the error named, as
# `domain.table.column`.

# %%
answer = "marketing.campaigns.budget_eur"  # answer
workshop.check("1.4", answer)

# %% [markdown]
# ## What changes on AWS
#
# On AWS the CSV would go to the marketing account's S3 bucket, a Glue crawler would infer the
# schema, and the table would be shared with the governance account through AWS RAM. meshsim's
# publish gates have no direct Lake Formation counterpart: on AWS they are a pipeline step you
# build yourself (or DataZone's publishing workflow).
