# %% [markdown]
# # Module 4 — Fine-grained access: row filters, masks, and the audit log
#
# *About 35 minutes.* A grant on a table is coarse. Real rules are finer: a European analyst
# sees European customers only (a **row filter**), and personal data reaches nobody but the
# governance team in clear (**column masks**). On AWS these are Lake Formation **data cells
# filters** (rows and columns); masks have no Lake Formation counterpart (you would publish a
# masked view).

# %%
%load_ext meshsim
from meshsim import workshop
from meshsim.errors import AccessDenied

mesh = workshop.start(4)
ANALYST = "eu_marketing_analyst"

# %% [markdown]
# ## Row filters with a mapping lookup
#
# The analyst's `region` attribute is `EUROPE`. The filter on `customer.customer` keeps the
# customers whose nation is in the consumer's region: a lookup through two mapping tables
# (`customer.nation`, `customer.region`).

# %%
mesh.spec.consumer(ANALYST).attributes

# %%
[(f.name, f.table) for f in mesh.spec.mesh.policies.row_filters]

# %%
print(mesh.spec.mesh.policies.row_filters[0].predicate)

# %%
%%meshsql --as governance_admin
SELECT count(*) AS customers FROM customer.customer

# %%
%%meshsql --as eu_marketing_analyst
SELECT count(*) AS customers FROM customer.customer

# %% [markdown]
# The filter applies however the query is written: through a join, a subquery or an
# aggregate, the hidden rows never take part.

# %%
%%meshsql --as eu_marketing_analyst
SELECT n_name, count(*) AS customers
FROM customer.customer JOIN customer.nation ON c_nationkey = n_nationkey
GROUP BY 1 ORDER BY 1

# %% [markdown]
# ## Masks: keyed hash, last N, redact
#
# `c_name` is hashed with the mesh's secret key (the same name always gives the same hash, so
# joins and counts still work, but it cannot be looked up in a rainbow table); `c_phone` keeps
# its last 4 digits; `c_address` is redacted.

# %%
%%meshsql --as eu_marketing_analyst
SELECT c_custkey, c_name, c_phone, c_address FROM customer.customer ORDER BY c_custkey LIMIT 3

# %%
%%meshsql --as governance_admin
SELECT c_custkey, c_name, c_phone, c_address FROM customer.customer WHERE c_custkey IN (
  SELECT c_custkey FROM customer.customer WHERE c_nationkey IN (6, 7, 19, 22, 23) ORDER BY c_custkey LIMIT 3)
ORDER BY c_custkey

# %% [markdown]
# ## Explain: why can't I see X?
#
# `explain` shows, column by column, what a query would read and which rule decided it, and the
# governed SQL that runs (the mesh key is never shown).

# %%
mesh.explain(ANALYST, "SELECT c_name, c_phone FROM customer.customer")

# %%
mesh.table_access(ANALYST, "customer.customer").column("c_acctbal")

# %%
try:
    mesh.sql(ANALYST, "SELECT avg(c_acctbal) FROM customer.customer")
except AccessDenied as refused:
    print("refused:", refused.message)

# %% [markdown]
# ## The audit log
#
# Every query, allowed or refused, and every access decision is recorded. The governance team
# reads the whole log (also with SQL, `meshsim.audit`); a consumer sees its own records.

# %%
mesh.audit(as_consumer="governance_admin", limit=3)

# %%
%%meshsql --as governance_admin
SELECT consumer, decision, count(*) AS queries FROM meshsim.audit WHERE kind = 'query' GROUP BY ALL ORDER BY ALL

# %% [markdown]
# ## Your turn
#
# **4.1** How many customers does `eu_marketing_analyst` see? Give a number.

# %%
answer = mesh.sql(ANALYST, "SELECT count(*) FROM customer.customer").fetchall()[0][0]  # answer
workshop.check("4.1", answer)

# %% [markdown]
# **4.2** Which mask function hides `c_address` from the analyst? Give its name.

# %%
answer = mesh.table_access(ANALYST, "customer.customer").column("c_address").mask.function  # answer
workshop.check("4.2", answer)

# %% [markdown]
# **4.3** Which columns of `sales.orders` can `external_partner` not see at all? Give their
# names (hint: `mesh.table_access`, or `mesh.access().cells()`).

# %%
answer = [c.column for c in mesh.table_access("external_partner", "sales.orders").columns if c.state == "denied"]  # answer
workshop.check("4.3", answer)

# %% [markdown]
# **4.4** How many of `eu_marketing_analyst`'s queries in this module were refused? Count them
# in the audit log.

# %%
answer = mesh.sql("governance_admin", "SELECT count(*) FROM meshsim.audit WHERE kind = 'query' AND consumer = 'eu_marketing_analyst' AND decision = 'refused'").fetchall()[0][0]  # answer
workshop.check("4.4", answer)

# %% [markdown]
# ## What changes on AWS
#
# A Lake Formation data cells filter can express a row filter over the table's own columns
# (`c_nationkey IN (6, 7, 19, 22, 23)`), not a lookup through other tables, nor a consumer
# attribute: on AWS you would write one filter per region, or a view. Masks need views or a
# query engine with masking (Athena has none). The audit log is CloudTrail plus Athena's query
# history.
