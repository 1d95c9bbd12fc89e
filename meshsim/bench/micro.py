"""Micro-benchmarks: planning overhead, snapshot resolution, one-shot CLI latency, catalog
search and scaling. Each returns a dict for the JSON file and the report:
``{"title", "note", "columns", "rows": [dict, ...]}`` (``skipped`` holds the reason when it
could not run).

- **planning**: the governed engine's planning path (parse, validate, resolve, authorise,
  rewrite, bind, DuckDB cross-check) without execution, for the restricted consumer's TPC-H
  queries, under the mesh's policies plus 10, 100 and 1,000 synthetic ones. The synthetic
  policies are grants, masks and row filters on real tables and columns for every consumer
  (``*``) under a ``when`` condition no consumer meets, so every one is evaluated and none
  changes an answer.
- **snapshot**: ``load_snapshot`` of a table with 1, 100 and 1,000 one-row commits, without
  and with a checkpoint at the last version; then the 1,000-file table before and after
  compaction, with the time to scan it on DuckDB.
- **cli**: ``meshsim sql`` on a tiny query, from process start to the first row on stdout.
- **catalog**: search latency with 1,000 published products, when the catalog offers search.
- **layout**: each choice of Parquet layout and DuckDB setting, as ratios of raw DuckDB time
  (:mod:`meshsim.bench.layout`).
- **scaling**: total TPC-H time (one run per query on a fresh engine) and peak memory of
  every engine at several scale factors, one process per engine.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshsim.bench import queries
from meshsim.console import Console, NullConsole

if TYPE_CHECKING:
    from meshsim.mesh import Mesh
    from meshsim.spec.models import Policies

POLICY_COUNTS = (10, 100, 1000)
COMMIT_COUNTS = (1, 100, 1000)


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def _fetch(con: Any, sql: str) -> Any:
    return con.sql(sql).fetchall()


def _time(fn: Callable[[], Any], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


# --- planning ---------------------------------------------------------------------------------


def synthetic_policies(base: Policies, count: int) -> Policies:
    """``base`` plus ``count`` policies that are evaluated for every consumer but never apply."""
    from meshsim.spec.models import Grant, Mask, RowFilter

    tables = ["customer.customer", "sales.orders", "sales.lineitem", "supply.part"]
    columns = [
        "customer.customer.c_comment",
        "sales.orders.o_comment",
        "sales.lineitem.l_comment",
        "supply.part.p_comment",
    ]
    predicates = ["c_nationkey >= 0", "o_orderkey >= 0", "l_orderkey >= 0", "p_partkey >= 0"]
    grants, masks, filters = list(base.grants), list(base.masks), list(base.row_filters)
    for i in range(count):
        when = f"consumer.region = 'BENCH_REGION_{i}'"
        k = i % len(tables)
        if i % 3 == 0:
            grants.append(
                Grant(name=f"bench_grant_{i}", consumers=["*"], when=when, tables=[tables[k]])
            )
        elif i % 3 == 1:
            masks.append(
                Mask(
                    name=f"bench_mask_{i}",
                    consumers=["*"],
                    when=when,
                    function="redact",
                    columns=[columns[k]],
                )
            )
        else:
            filters.append(
                RowFilter(
                    name=f"bench_filter_{i}",
                    consumers=["*"],
                    when=when,
                    table=tables[k],
                    predicate=predicates[k],
                )
            )
    return base.model_copy(update={"grants": grants, "masks": masks, "row_filters": filters})


def planning(
    mesh: Mesh,
    *,
    counts: tuple[int, ...] = POLICY_COUNTS,
    repeat: int = 30,
    consumer: str = queries.RESTRICTED_CONSUMER,
) -> dict[str, Any]:
    from meshsim.query.pipeline import PLAN_RULES, run_rules
    from meshsim.query.session import GovernedEngine

    qs = queries.restricted()
    rows = []
    for count in counts:
        spec = mesh.spec.with_policies(synthetic_policies(mesh.spec.policies, count))
        roots = sorted({str(Path(mesh.locate(t.ref)).parent) for t in spec.tables()})
        # as the mesh's own engine reads: the published versions (not each table's Delta
        # log) and the serving gate, in a query's block (once per query, as Mesh.sql does)
        governed = GovernedEngine(
            spec,
            locate=mesh.locate,
            mesh_key=mesh.workspace.mesh_key(),
            allowed_paths=roots,
            published=mesh.published_version,
            publications=mesh.publications,
            serves=mesh.serving.require_served,
        )
        stages: dict[str, list[float]] = {rule.name: [] for rule in PLAN_RULES}
        totals: list[float] = []
        seen_shape: list[float] = []
        new_values: list[float] = []
        cached: list[float] = []
        try:
            for q in qs:
                governed.plan(governed.attempt(consumer, q.sql))  # warm: snapshots, scans
                for _ in range(repeat):
                    # a new text of a shape never seen: the verifier binds it afresh
                    governed.duck.accepted_shapes.clear()
                    t0 = time.perf_counter()
                    with mesh._one_command(query=True):
                        attempt = run_rules(governed, governed.attempt(consumer, q.sql), PLAN_RULES)
                    totals.append(time.perf_counter() - t0)
                    for name, seconds in attempt.timings.items():
                        stages[name].append(seconds)
                for _ in range(repeat):
                    # a new text of a shape seen before (other literals): bound once per shape
                    t0 = time.perf_counter()
                    with mesh._one_command(query=True):
                        run_rules(governed, governed.attempt(consumer, q.sql), PLAN_RULES)
                    seen_shape.append(time.perf_counter() - t0)
                for text in literal_variants(q.sql, repeat):
                    # a new text of the query with other values: planned as a session plans
                    # it (the first of them makes the query's template)
                    t0 = time.perf_counter()
                    with mesh._one_command(query=True):
                        governed.plan(governed.attempt(consumer, text))
                    new_values.append(time.perf_counter() - t0)
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    with mesh._one_command(query=True):
                        governed.plan(governed.attempt(consumer, q.sql))  # the plan cache
                    cached.append(time.perf_counter() - t0)
        finally:
            governed.close()
        policies = spec.policies
        rows.append(
            {
                "policies": count,
                "total_policies": len(policies.grants)
                + len(policies.tag_grants)
                + len(policies.masks)
                + len(policies.row_filters),
                "p50_ms": _ms(statistics.median(totals)),
                "p95_ms": _ms(_percentile(totals, 0.95)),
                "seen_shape_p50_ms": _ms(statistics.median(seen_shape)),
                "seen_shape_p95_ms": _ms(_percentile(seen_shape, 0.95)),
                "new_values_p50_ms": _ms(statistics.median(new_values)) if new_values else None,
                "new_values_p95_ms": _ms(_percentile(new_values, 0.95)) if new_values else None,
                "new_values_samples": len(new_values),
                **{
                    f"{name.replace('-', '_')}_p50_ms": _ms(statistics.median(values))
                    for name, values in stages.items()
                },
                "cached_p50_ms": _ms(statistics.median(cached)),
                "cached_p95_ms": _ms(_percentile(cached, 0.95)),
                "samples": len(totals),
            }
        )
    return {
        "title": "Planning overhead per query (no execution)",
        "note": f"{consumer}, queries {', '.join(q.name for q in qs)}, {repeat} plans each "
        "after one warm-up; one p50 column per planning rule (verify_plan: DuckDB's parse of "
        "the final SQL and its bound plan); p50/p95 plan the text anew every time as a "
        "shape DuckDB's bind check has never seen, 'seen_shape' plans it anew with its shape "
        "already bound once, 'new_values' plans texts of the query with other string "
        "values (dates moved, words changed) as a session does, where the first makes the "
        "query's template (meshsim.query.templates) and the others are filled in from it; "
        "queries without string literals are left out of it, 'cached' "
        "is the same query again (plan cache keyed by consumer, "
        "policy version, table versions and text, checked against the Delta logs)",
        "columns": list(rows[0]),
        "rows": rows,
    }


#: predicates per query in :func:`planning_size` (the node bound, 10,000, allows ~2,000)
PREDICATE_COUNTS = (100, 300, 1000)


def planning_size(
    mesh: Mesh,
    *,
    counts: tuple[int, ...] = PREDICATE_COUNTS,
    repeat: int = 7,
    consumer: str = queries.RESTRICTED_CONSUMER,
) -> dict[str, Any]:
    """Planning a query of ``count`` predicates over a row-filtered table, planned anew by
    every rule each time (a shape DuckDB's bind check has not seen): it must grow linearly.
    The sizes take turns, so a change in the host's speed during the run weighs on each
    alike (the target is their ratio)."""
    from meshsim.query.pipeline import PLAN_RULES, run_rules

    governed = mesh.engine
    texts = {
        count: "SELECT count(*) AS n FROM sales.orders WHERE "
        + " AND ".join(f"o_orderkey <> {i}" for i in range(count))
        for count in counts
    }
    samples: dict[int, list[float]] = {count: [] for count in counts}
    for _ in range(repeat + 1):
        for count, text in texts.items():
            governed.duck.accepted_shapes.clear()
            t0 = time.perf_counter()
            run_rules(governed, governed.attempt(consumer, text), PLAN_RULES)
            samples[count].append(time.perf_counter() - t0)
    rows = []
    for count, text in texts.items():
        median = statistics.median(samples[count][1:])  # after one warm-up (the table's scan)
        rows.append(
            {
                "predicates": count,
                "chars": len(text),
                "p50_ms": _ms(median),
                "us_per_predicate": round(median * 1e6 / count, 2),
            }
        )
    return {
        "title": "Planning time by query size",
        "note": f"{consumer}: SELECT count(*) FROM sales.orders WHERE o_orderkey <> 0 AND ... "
        f"(n predicates), planned by every rule, {repeat} times after a warm-up, the sizes "
        "in turn",
        "columns": list(rows[0]),
        "rows": rows,
    }


def literal_variants(sql: str, count: int) -> list[str]:
    """``count`` texts of ``sql`` with other values in its string literals: a date moved by
    1, 2, ... days, any other string with the number appended; none if it has no string."""
    import datetime as dt
    import re

    literals = sorted(set(re.findall(r"'([^'\\]*)'", sql)))
    if not literals:
        return []
    texts = []
    for i in range(1, count + 1):
        text = sql
        for literal in literals:
            try:
                value = str(dt.date.fromisoformat(literal) + dt.timedelta(days=i))
            except ValueError:
                value = f"{literal}{i}"
            text = text.replace(f"'{literal}'", f"'{value}'")
        texts.append(text)
    return texts


# --- snapshots --------------------------------------------------------------------------------


def _commit_table(path: Path, commits: int) -> None:
    """A table with ``commits`` one-row commits and no checkpoint (deltalake's post-commit
    hook would write one every 100 commits)."""
    import pyarrow as pa
    from deltalake import PostCommitHookProperties, write_deltalake

    hooks = PostCommitHookProperties(create_checkpoint=False, cleanup_expired_logs=False)
    for i in range(commits):
        batch = pa.table({"id": pa.array([i], pa.int64()), "v": pa.array([f"row {i}"])})
        write_deltalake(str(path), batch, mode="append", post_commithook_properties=hooks)


def snapshots(
    *, counts: tuple[int, ...] = COMMIT_COUNTS, repeat: int = 10, console: Console | None = None
) -> dict[str, Any]:
    from meshsim import engine as duck
    from meshsim.storage import delta
    from meshsim.storage.scan import scan_query
    from meshsim.storage.snapshot import SnapshotCache, load_snapshot

    console = console or NullConsole()
    rows = []
    root = Path(tempfile.mkdtemp(prefix="meshsim-bench-snap-"))
    try:
        for count in counts:
            path = root / f"commits_{count}"
            console.note(f"writing a table with {count} commits")
            _commit_table(path, count)
            for checkpointed in (False, True):
                if checkpointed:
                    delta.checkpoint(path, table="bench.t")
                cold = _time(partial(load_snapshot, path, table="bench.t"), repeat)
                cache = SnapshotCache()
                cache.get(path, table="bench.t")
                warm = _time(partial(cache.get, path, table="bench.t"), repeat)
                rows.append(
                    {
                        "case": f"{count} commit(s)" + (", checkpoint" if checkpointed else ""),
                        "files": len(load_snapshot(path, table="bench.t").files),
                        "load_snapshot_ms": _ms(statistics.median(cold)),
                        "cached_get_ms": _ms(statistics.median(warm)),
                        "scan_ms": None,
                    }
                )
        big = root / f"commits_{max(counts)}"
        for label in ("before compaction", "after compaction"):
            if label.startswith("after"):
                delta.compact(big, table="bench.t")
                delta.checkpoint(big, table="bench.t")
            snap = load_snapshot(big, table="bench.t")
            con = duck.connect([str(root)])
            sql = f"SELECT count(*), sum(id) FROM ({scan_query(snap).sql(dialect='duckdb')})"
            scan = _time(partial(_fetch, con, sql), repeat)
            con.close()
            rows.append(
                {
                    "case": f"{max(counts)} small files, {label}",
                    "files": len(snap.files),
                    "load_snapshot_ms": _ms(
                        statistics.median(
                            _time(partial(load_snapshot, big, table="bench.t"), repeat)
                        )
                    ),
                    "cached_get_ms": None,
                    "scan_ms": _ms(statistics.median(scan)),
                }
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "title": "Snapshot resolution versus history and file count",
        "note": f"median of {repeat}; load_snapshot reads the log from scratch, cached_get is "
        "a repeated Mesh-style lookup (latest-version check + cache hit); scan is "
        "count(*) over the snapshot on DuckDB",
        "columns": list(rows[0]),
        "rows": rows,
    }


# --- one-shot CLI -----------------------------------------------------------------------------


def _cli_has(command: str) -> bool:
    from meshsim.cli import _register, app

    _register()
    return any(
        (c.name or (c.callback.__name__ if c.callback else "")) == command
        for c in app.registered_commands
    )


def cli(mesh: Mesh, *, repeat: int = 5) -> dict[str, Any]:
    executable = Path(sys.executable).parent / "meshsim"
    base = [str(executable)] if executable.exists() else [sys.executable, "-m", "meshsim"]
    workspace = str(mesh.workspace.root)
    if _cli_has("sql"):
        args = [
            "sql",
            "--workspace",
            workspace,
            "--as",
            "governance_admin",
            "SELECT r_name FROM customer.region ORDER BY r_regionkey LIMIT 1",
        ]
        note = "meshsim sql on a one-row query"
    else:
        args = ["tables", "--workspace", workspace]
        note = "meshsim tables ('meshsim sql' is not available in this build)"
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        process = subprocess.Popen(
            [*base, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        first = ""
        for line in process.stdout:
            if line.strip():
                first = line
                break
        seconds = time.perf_counter() - started
        _, err = process.communicate()
        if process.returncode != 0 or not first:
            return {
                "title": "One-shot CLI latency",
                "skipped": f"{' '.join(args[:1])} failed: {err.strip()[:300]}",
                "command": " ".join(["meshsim", *args]),
            }
        samples.append(seconds)
    return {
        "title": "One-shot CLI latency (process start to first row)",
        "note": note,
        "command": " ".join(["meshsim", *args]),
        "median_s": round(statistics.median(samples), 4),
        "columns": ["run", "seconds"],
        "rows": [{"run": i + 1, "seconds": round(s, 4)} for i, s in enumerate(samples)],
    }


# --- catalog ----------------------------------------------------------------------------------


SEARCH_TERMS = ("customer", "region", "payment amount", "supplier pricing", "no such words")
_WORDS = (
    "customer",
    "order",
    "invoice",
    "shipment",
    "supplier",
    "inventory",
    "payment",
    "region",
    "campaign",
    "product",
    "warehouse",
    "return",
    "pricing",
    "forecast",
    "contract",
    "ledger",
)


def _synthetic_catalog_spec(base: Any, products: int) -> Any:
    """A mesh of ``products`` products over 20 domains (no PII, so every gate passes)."""
    from meshsim.spec.loader import DomainSpec, MeshSpec, ProductSpec
    from meshsim.spec.models import Column, DomainFile, Policies, Product, Table

    domains = []
    per_domain = max(1, products // 20)
    for d in range(20):
        name = f"domain_{d:02d}"
        specs = []
        for i in range(per_domain):
            word, other = _WORDS[(d + i) % len(_WORDS)], _WORDS[(d * 7 + i * 3) % len(_WORDS)]
            columns = [
                Column(
                    name=f"{word}_id",
                    type="bigint",
                    classification="internal",
                    description=f"Key of the {word}.",
                ),
                Column(
                    name=f"{other}_amount",
                    type="decimal(15,2)",
                    classification="internal",
                    description=f"Amount per {other}, in euros.",
                ),
                Column(
                    name="region_name",
                    type="varchar",
                    classification="public",
                    description="Sales region.",
                ),
            ]
            table = Table(
                name=f"{word}_{i:03d}", description=f"{word} facts by {other}", columns=columns
            )
            product = Product(
                name=f"{word}_{other}_{i:03d}",
                owner=f"team_{d:02d}",
                description=f"{word.title()} data joined with {other} records.",
                tags={},
                tables=[table],
            )
            specs.append(ProductSpec(name, product, base.root / "mesh.yaml"))
        domains.append(
            DomainSpec(DomainFile(name=name, owner_team=f"team_{d:02d}"), tuple(specs), base.root)
        )
    mesh = base.mesh.model_copy(update={"policies": Policies()})
    return MeshSpec(base.root, mesh, tuple(domains), f"synthetic-{products}", {})


def catalog(mesh: Mesh, *, products: int = 1000, repeat: int = 50) -> dict[str, Any]:
    """Search latency over a catalog of ``products`` published products (a scratch one)."""
    import tempfile

    from meshsim.catalog import Catalog
    from meshsim.workspace import Workspace

    spec = _synthetic_catalog_spec(mesh.spec, products)
    with tempfile.TemporaryDirectory(prefix="meshsim-catalog-") as scratch:
        workspace = Workspace(Path(scratch))
        catalog = Catalog(workspace, lambda: spec)
        t0 = time.perf_counter()
        versions = {t.ref: 0 for t in spec.tables()}  # metadata only: no data is written
        published = catalog.publish_all(versions, {ref: 1000 for ref in versions})
        publish_s = time.perf_counter() - t0
        rows = []
        for term in SEARCH_TERMS:
            samples, hits = [], 0
            for _ in range(repeat):
                t0 = time.perf_counter()
                hits = len(catalog.search(term))
                samples.append(time.perf_counter() - t0)
            rows.append(
                {
                    "query": term,
                    "hits": hits,
                    "p50_ms": _ms(statistics.median(samples)),
                    "p95_ms": _ms(_percentile(samples, 0.95)),
                }
            )
        catalog.store.close()
    return {
        "title": f"Catalog search with {len(published):,} products",
        "note": f"{len(published):,} products published in {publish_s:.1f} s; full-text search "
        f"(SQLite FTS5, bm25) over names, descriptions, tags and owners; {repeat} searches "
        "per term, top 20 results",
        "columns": list(rows[0]),
        "rows": rows,
    }


# --- scaling ----------------------------------------------------------------------------------


def scaling(
    workspace_root: Path,
    scales: tuple[float, ...],
    *,
    mesh_dir: Path,
    engines: tuple[str, ...] | None = None,
    console: Console | None = None,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Every engine at every scale, each in a process of its own (:mod:`meshsim.bench.scaling`):
    total time of one run per query and the process's peak resident memory."""
    from meshsim.bench.engines import ENGINES
    from meshsim.bench.harness import prepare_mesh
    from meshsim.bench.scaling import DEFAULT_TIMEOUT_S, run_engine

    console = console or NullConsole()
    rows = []
    for scale in scales:
        workspace = workspace_root / f"sf{scale:g}"
        prepare_mesh(workspace, scale, NullConsole(), mesh_dir).close()
        for name in engines or tuple(ENGINES):
            console.note(f"scaling: sf {scale:g} {name}")
            run = run_engine(workspace, name, timeout_s=timeout_s or DEFAULT_TIMEOUT_S)
            rows.append(
                {
                    "scale": scale,
                    "engine": name,
                    "total_s": run.total_s,
                    "peak_rss_mb": run.peak_rss_mb,
                    "failed": run.failed,
                }
            )
    return {
        "title": "Scaling: total TPC-H time and peak memory (one run per query on a fresh "
        "engine, one process per engine)",
        "note": "peak_rss_mb is the engine process's peak resident memory (ru_maxrss), Python "
        "and the libraries included (about 200 MB with no data read); the restricted engines "
        "run the 8 restricted queries, the others all 22",
        "columns": ["scale", "engine", "total_s", "peak_rss_mb", "failed"],
        "rows": rows,
    }


def layout(mesh: Mesh, *, console: Console | None = None) -> dict[str, Any]:
    from meshsim.bench.layout import layout as measure

    return measure(mesh, console=console)


def run_all(
    mesh: Mesh,
    *,
    scales: tuple[float, ...] = (),
    mesh_sizes: tuple[int, ...] = (),
    workspace_root: Path | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    console = console or NullConsole()
    out: dict[str, Any] = {}
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("planning", lambda: planning(mesh)),
        ("planning_size", lambda: planning_size(mesh)),
        ("snapshot", lambda: snapshots(console=console)),
        ("cli", lambda: cli(mesh)),
        ("catalog", lambda: catalog(mesh)),
        ("layout", lambda: layout(mesh, console=console)),
    ]
    if scales and workspace_root is not None:
        steps.append(
            (
                "scaling",
                lambda: scaling(workspace_root, scales, mesh_dir=mesh.mesh_dir, console=console),
            )
        )
    if mesh_sizes and workspace_root is not None:
        from meshsim.bench.meshscale import mesh_scale

        root = workspace_root / "mesh-scale"
        steps.append(("mesh_scale", lambda: mesh_scale(root, sizes=mesh_sizes, console=console)))
    with console.progress("micro-benchmarks", total=len(steps)) as progress:
        for name, step in steps:
            progress.advance(0, f"micro: {name}")
            out[name] = step()
            progress.advance(1)
    return out
