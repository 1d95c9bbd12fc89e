# %% [markdown]
# # Module 7 — Performance: what governance costs
#
# *About 25 minutes.* Governance that makes every query slow would not be used. meshsim's
# benchmark runs the 22 TPC-H queries, written against the mesh's tables, on meshsim and on the
# engines an analyst could use instead, over the same Delta snapshots; it checks that every
# engine gives the same answers, then compares times as **ratios** measured in one run.
#
# Here it runs at a tiny scale on a few queries, so it takes seconds; `meshsim bench` runs the
# reference at scale 1 (the committed report is `benchmarks/results/sf1/report.md`).

# %%
from pathlib import Path

from meshsim import workshop
from meshsim.bench.harness import run_benchmark

mesh = workshop.start(7)
home = mesh.mesh_dir.parent

# %% [markdown]
# ## Run it
#
# `duckdb` is raw DuckDB over the snapshot's Parquet files (the floor); `meshsim` is the same
# query through the governed layer as the admin (the cost of governance alone);
# `meshsim_restricted` runs as `eu_marketing_analyst` (row filters and masks) and
# `duckdb_twin` is the same restriction written by hand in plain DuckDB.

# %%
result, files = run_benchmark(
    scale=0.01,
    runs=3,
    out=home / "report",
    workspace=home / "bench",
    mesh_dir=mesh.mesh_dir,
    engines=["duckdb", "meshsim", "meshsim_restricted", "duckdb_twin"],
    query_names=["1", "3", "6", "10"],
    micro=False,
    cold=False,
)
[(r.engine, r.query, r.status, r.answer) for r in result.runs][:8]

# %% [markdown]
# Every answer was checked: the governed engines against raw DuckDB (admin) or the hand-written
# twin (restricted).

# %%
result.problems

# %% [markdown]
# ## Read the report
#
# A ratio below 1 means the engine was faster than its baseline. At this tiny scale, fixed
# costs (planning, the governance rewrite) weigh more than at scale 1, where the data dominates.

# %%
[(r.engine, r.baseline, r.mode, round(r.geomean, 3) if r.geomean else None) for r in result.ratios]

# %%
print(files["report"].read_text()[:2500] if "report" in files else sorted(files))

# %% [markdown]
# ## What governance costs, query by query
#
# The restricted analyst's queries read fewer rows (the row filter) but compute masks and a
# filter with lookups: compare each with its hand-written twin.

# %%
twin = {r.query: r for r in result.runs if r.engine == "duckdb_twin"}
[
    (r.query, round(min(r.warm), 1), round(min(twin[r.query].warm), 1))
    for r in result.runs
    if r.engine == "meshsim_restricted" and r.ok and r.query in twin and twin[r.query].ok
]

# %% [markdown]
# ## Your turn
#
# **7.1** Did every engine answer every query correctly? Give `True` or `False`.

# %%
answer = not result.problems  # answer
workshop.check("7.1", (answer, result))

# %% [markdown]
# **7.2** Which query was slowest through `meshsim` (warm, median)? Give its name, like `q03`.

# %%
ours = [r for r in result.runs if r.engine == "meshsim" and r.ok]  # answer
answer = max(ours, key=lambda r: sorted(r.warm)[len(r.warm) // 2]).query  # answer
workshop.check("7.2", (answer, result))

# %% [markdown]
# ## What changes on AWS
#
# On AWS, Athena bills by data scanned and Lake Formation's filtering runs inside the engine:
# the equivalent measurement is the query's data scanned and run time in Athena's history, with
# and without a data cells filter. The layout choices (file and row-group sizes, sort order)
# matter there as much as here.
