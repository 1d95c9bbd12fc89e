"""The TPC-H harness: cold and warm runs per engine and query, medians, answer checks,
geometric means and the issue's targets.

One call, :func:`run_benchmark`, does everything the ``meshsim bench`` command and
``benchmarks/run.py`` do: build (or reuse) the example mesh at the scale factor, run the
queries on every engine, check every answer, run the micro-benchmarks, write the report.

Timing rules:

- **cold**: a fresh engine (``prepare()`` untimed: connect, register tables), the operating
  system's page cache dropped when this process may (``/proc/sys/vm/drop_caches``, root only;
  the report says whether it could), then the first run of the query. ``runs`` samples.
  meshsim keeps verified plans in the workspace (:mod:`meshsim.query.plan_store`), as a
  user's next session would find them: a cold run of a text the workspace ran before (the
  first cold sample of a new workspace plans it) is not planned again.
- **fresh**: right after each cold sample, another fresh engine's first run of the query,
  the page cache kept (the files the cold run read are in it): what a user's new session
  pays for its first query on a machine that read the data before, where a cold sample is
  mostly the disk's time.
- **warm**: one prepared engine per engine for all queries; one untimed run, then ``runs``
  timed runs.
- The median of the samples is what the report compares.

Answers: the first cold answer of every engine is compared with the reference engine's
(raw DuckDB for full-access engines, the hand-written twin for the restricted consumer). A
wrong answer is kept out of every timing and ratio and reported at the top of the report; an
engine that cannot run a query is reported as ``unsupported`` (a peer) or ``failed`` (ours).
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshsim.bench import answers, queries
from meshsim.bench.engines import (
    DEFAULT_ENGINES,
    ENGINES,
    FULL_ACCESS,
    RESTRICTED,
    Engine,
    engine_info,
)
from meshsim.console import Console, NullConsole

if TYPE_CHECKING:
    import pyarrow as pa

    from meshsim.mesh import Mesh

DROP_CACHES = Path("/proc/sys/vm/drop_caches")
#: A query whose first run takes longer than this is not repeated (one sample, flagged).
SLOW_SECONDS = 120.0


@dataclass
class QueryRun:
    """Every measurement of one engine on one query."""

    engine: str
    query: str
    status: str = "ok"  # ok | wrong | unsupported | failed
    answer: str = ""  # match | tolerance | reference | the mismatch detail
    error: str = ""
    rows: int | None = None
    cold: list[float] = field(default_factory=list)
    warm: list[float] = field(default_factory=list)
    #: a fresh engine's first run with the OS page cache kept (a new session's first query)
    fresh: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def median(self, mode: str) -> float | None:
        samples = {"cold": self.cold, "fresh": self.fresh}.get(mode, self.warm)
        return statistics.median(samples) if self.ok and samples else None


@dataclass
class Ratio:
    """Geometric mean of per-query median ratios ``engine / baseline`` over common queries."""

    engine: str
    baseline: str
    mode: str
    geomean: float | None
    queries: int
    per_query: dict[str, float]


@dataclass
class Target:
    name: str
    goal: str
    value: float | None
    met: bool | None  # None: not measured
    note: str = ""


@dataclass
class BenchConfig:
    scale: float = 1.0
    runs: int = 3
    engines: tuple[str, ...] = DEFAULT_ENGINES
    queries: tuple[str, ...] = queries.ALL
    cold: bool = True
    micro: bool = True
    smoke: bool = False  # correctness only: one run, no cold runs, no micro-benchmarks
    scaling: tuple[float, ...] = ()  # scale factors of the scaling micro-benchmark
    mesh_sizes: tuple[int, ...] = ()  # table counts of the mesh-scale micro-benchmark


@dataclass
class BenchResult:
    config: BenchConfig
    machine: dict[str, Any]
    started: str
    seconds: float = 0.0
    build_seconds: float = 0.0
    page_cache_dropped: bool = False
    runs: list[QueryRun] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    micro: dict[str, Any] = field(default_factory=dict)

    @property
    def problems(self) -> list[QueryRun]:
        """Wrong answers and failures of our own engines: what the report shouts about."""
        return [
            r
            for r in self.runs
            if r.status == "wrong" or (r.status == "failed" and engine_info(r.engine).ours)
        ]

    def run_of(self, engine: str, query: str) -> QueryRun | None:
        return next((r for r in self.runs if r.engine == engine and r.query == query), None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --- machine ----------------------------------------------------------------------------------


def machine_description() -> dict[str, Any]:
    """CPU model, cores, memory, OS and the versions of every engine compared."""
    from importlib import metadata

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = None
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = round(int(line.split()[1]) / 1024 / 1024, 1)
    versions: dict[str, str | None] = {}
    for package in ("meshsim", "duckdb", "deltalake", "polars", "pyarrow", "sqlglot"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions,
    }


# --- running ----------------------------------------------------------------------------------


def drop_page_cache() -> bool:
    """Drop the OS page cache if this process may; whether it did."""
    try:
        os.sync()
        DROP_CACHES.write_text("3\n")
        return True
    except OSError:
        return False


def _error_text(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{type(exc).__name__}: {first[:300]}"


class _Runner:
    def __init__(self, mesh: Mesh, config: BenchConfig, result: BenchResult, progress: Any):
        self.mesh, self.config, self.result, self.progress = mesh, config, result, progress
        self.reference: dict[tuple[str, str], list[tuple[str, ...]]] = {}

    def fresh(self, name: str) -> Engine:
        engine = ENGINES[name](self.mesh)
        engine.prepare()
        return engine

    def first_run(self, name: str, sql: str) -> tuple[float, pa.Table]:
        """A fresh engine's first run of ``sql`` (its preparation untimed)."""
        engine = self.fresh(name)
        try:
            return self.timed(engine, sql)
        finally:
            engine.close()

    def timed(self, engine: Engine, sql: str) -> tuple[float, pa.Table]:
        started = time.perf_counter()
        table = engine.run(sql)
        return time.perf_counter() - started, table

    def check(self, run: QueryRun, table: pa.Table, reference_engine: str | None) -> None:
        rows = answers.normalise(table)
        run.rows = table.num_rows
        if reference_engine is None:
            self.reference[(run.engine, run.query)] = rows
            run.answer = "reference"
            return
        want = self.reference.get((reference_engine, run.query))
        if want is None:
            run.answer = f"unchecked ({reference_engine} has no answer)"
            return
        comparison = answers.compare_rows(rows, want)
        run.answer = comparison.status if comparison.ok else comparison.detail
        if not comparison.ok:
            run.status = "wrong"

    def engine(self, name: str, qs: list[queries.Query], reference_engine: str | None) -> None:
        ours = engine_info(name).ours
        runs = 1 if self.config.smoke else self.config.runs
        warm_engine: Engine | None = None
        try:
            for query in qs:
                self.progress.advance(0, f"{name} {query.name}")
                run = QueryRun(name, query.name)
                self.result.runs.append(run)
                try:
                    if warm_engine is None:
                        warm_engine = self.fresh(name)
                    if self.config.cold and not self.config.smoke:
                        for i in range(runs):
                            self.result.page_cache_dropped = drop_page_cache()
                            seconds, table = self.first_run(name, query.sql)
                            if i == 0:
                                self.check(run, table, reference_engine)
                                if not run.ok:
                                    break
                            run.cold.append(seconds)
                            if seconds > SLOW_SECONDS:
                                break
                            # the files the cold run read are in the page cache now
                            run.fresh.append(self.first_run(name, query.sql)[0])
                    if run.ok:
                        seconds, table = self.timed(warm_engine, query.sql)  # warm-up
                        if not run.answer:
                            self.check(run, table, reference_engine)
                        for _ in range(runs if run.ok and seconds <= SLOW_SECONDS else 0):
                            run.warm.append(self.timed(warm_engine, query.sql)[0])
                except Exception as exc:  # noqa: BLE001 - every engine error is a result
                    run.status = "failed" if ours else "unsupported"
                    run.error = _error_text(exc)
                    run.cold, run.warm, run.fresh = [], [], []
                if run.status == "wrong":
                    run.cold, run.warm, run.fresh = [], [], []
                self.progress.advance(1)
        finally:
            if warm_engine is not None:
                warm_engine.close()


#: how runs are timed (benchmarks/README.md): warm, cold (a fresh engine after the OS page
#: cache is dropped) and fresh (a fresh engine with the page cache kept)
MODES = ("warm", "cold", "fresh")


def timed_modes(config: BenchConfig) -> tuple[str, ...]:
    return ("warm",) if config.smoke or not config.cold else MODES


def _geomean(values: list[float]) -> float | None:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def ratio(result: BenchResult, engine: str, baseline: str, mode: str) -> Ratio:
    per_query = {}
    for run in result.runs:
        if run.engine != engine:
            continue
        base = result.run_of(baseline, run.query)
        a, b = run.median(mode), base.median(mode) if base else None
        if a and b:
            per_query[run.query] = a / b
    return Ratio(
        engine, baseline, mode, _geomean(list(per_query.values())), len(per_query), per_query
    )


def compute_ratios(result: BenchResult) -> None:
    pairs = [("meshsim", "duckdb"), ("meshsim_restricted", "duckdb_twin")]
    pairs += [("meshsim", peer) for peer in ("polars", "deltars", "duckdb_dataset")]
    pairs += [(peer, "duckdb") for peer in ("polars", "deltars", "duckdb_dataset")]
    names = {r.engine for r in result.runs}
    modes = timed_modes(result.config)
    result.ratios = [
        ratio(result, a, b, mode) for a, b in pairs if a in names and b in names for mode in modes
    ]


def _find(result: BenchResult, engine: str, baseline: str, mode: str = "warm") -> Ratio | None:
    return next(
        (r for r in result.ratios if (r.engine, r.baseline, r.mode) == (engine, baseline, mode)),
        None,
    )


def compute_targets(result: BenchResult) -> None:
    targets = []
    for engine, baseline, label in (
        ("meshsim", "duckdb", "2/1: meshsim admin vs raw DuckDB"),
        ("meshsim_restricted", "duckdb_twin", "3: meshsim restricted vs hand-written twin"),
    ):
        for mode in MODES:
            r = _find(result, engine, baseline, mode)
            value = r.geomean if r else None
            targets.append(
                Target(
                    f"{label} ({mode})",
                    "geomean ratio <= 1.05",
                    value,
                    None if value is None else value <= 1.05,
                    f"{r.queries} queries" if r else "not run",
                )
            )
    for peer, number in (("polars", 4), ("deltars", 5), ("duckdb_dataset", 6)):
        for mode in MODES:
            r = _find(result, "meshsim", peer, mode)
            value = r.geomean if r else None
            targets.append(
                Target(
                    f"meshsim faster than {number} ({peer}, {mode})",
                    "geomean ratio meshsim/peer < 1",
                    value,
                    None if value is None else value < 1,
                    f"{r.queries} queries" if r else "not run",
                )
            )
    planning = result.micro.get("planning", {}).get("rows", [])
    at100 = next((p for p in planning if p.get("policies") == 100), None)
    p95 = at100.get("p95_ms") if at100 else None
    cached = at100.get("cached_p95_ms") if at100 else None
    targets.append(
        Target(
            "planning p95 at 100 policies, new text (a shape never seen)",
            "< 2 ms",
            p95,
            None if p95 is None else p95 < 2,
            result.micro.get("planning", {}).get("note", ""),
        )
    )
    values = at100.get("new_values_p95_ms") if at100 else None
    targets.append(
        Target(
            "planning p95 at 100 policies, new text of a known query (other values)",
            "< 2 ms",
            values,
            None if values is None else values < 2,
            "texts that differ from one planned before only in string values (another date, "
            "another segment), as a dashboard sends them; the first of each query makes its "
            "template and is counted",
        )
    )
    seen = at100.get("seen_shape_p95_ms") if at100 else None
    targets.append(
        Target(
            "planning p95 at 100 policies, new text of a shape bound before",
            "< 2 ms",
            seen,
            None if seen is None else seen < 2,
            "the text planned anew, but DuckDB's bind check already accepted its shape "
            "(a text that differs only in literals); the row above is a shape never seen",
        )
    )
    targets.append(
        Target(
            "planning p95 at 100 policies, through the plan cache",
            "< 0.3 ms",
            cached,
            None if cached is None else cached < 0.3,
            "the same text again in the same session",
        )
    )
    sizes = result.micro.get("planning_size", {}).get("rows", [])
    per = None
    if len(sizes) > 1 and sizes[0]["us_per_predicate"]:
        per = round(sizes[-1]["us_per_predicate"] / sizes[0]["us_per_predicate"], 3)
    targets.append(
        Target(
            "planning grows linearly with query size",
            "time per predicate, largest / smallest <= 1.2",
            per,
            None if per is None else per <= 1.2,
            f"{sizes[-1]['predicates']:,} vs {sizes[0]['predicates']:,} predicates"
            if len(sizes) > 1
            else "not run",
        )
    )
    cli = result.micro.get("cli", {})
    median = cli.get("median_s")
    targets.append(
        Target(
            "one-shot CLI, start to first row",
            "< 1 s",
            median,
            None if median is None else median < 1,
            cli.get("command", ""),
        )
    )
    targets += [Target(*t) for t in result.micro.get("mesh_scale", {}).get("targets", [])]
    result.targets = targets


def plan(config: BenchConfig) -> list[tuple[str, list[queries.Query], str | None]]:
    """(engine, queries, reference engine) in run order; references run first."""
    chosen = list(config.queries)
    out: list[tuple[str, list[queries.Query], str | None]] = []
    full = queries.tpch(chosen)
    restricted = queries.restricted(chosen)
    for name in FULL_ACCESS:
        if name in config.engines:
            reference = None if name == "duckdb" or "duckdb" not in config.engines else "duckdb"
            out.append((name, full, reference))
    for name in RESTRICTED:
        if name in config.engines and restricted:
            reference = (
                None
                if name == "duckdb_twin" or "duckdb_twin" not in config.engines
                else "duckdb_twin"
            )
            out.append((name, restricted, reference))
    return out


def prepare_mesh(
    workspace: str | Path, scale: float, console: Console, mesh_dir: str | Path | None = None
) -> Mesh:
    """The example mesh built at ``scale`` in ``workspace`` (reused when already built)."""
    from meshsim.mesh import Mesh
    from meshsim.workspace import DEFAULT_MESH

    return Mesh.build(mesh_dir or DEFAULT_MESH, workspace, scale=scale, console=console)


def run_tpch(
    mesh: Mesh,
    config: BenchConfig,
    console: Console | None = None,
    *,
    workspace_root: Path | None = None,
) -> BenchResult:
    """Run the TPC-H comparison (and, unless disabled, the micro-benchmarks) on ``mesh``;
    the scaling micro-benchmark builds its meshes under ``workspace_root/sf<scale>``."""
    console = console or NullConsole()
    result = BenchResult(config, machine_description(), datetime.now(UTC).isoformat())
    started = time.perf_counter()
    steps = plan(config)
    total = sum(len(qs) for _, qs, _ in steps)
    with console.progress("TPC-H", total=total) as progress:
        runner = _Runner(mesh, config, result, progress)
        for name, qs, reference in steps:
            runner.engine(name, qs, reference)
    if config.micro and not config.smoke:
        from meshsim.bench import micro

        result.micro = micro.run_all(
            mesh,
            scales=config.scaling,
            mesh_sizes=config.mesh_sizes,
            workspace_root=workspace_root,
            console=console,
        )
    compute_ratios(result)
    compute_targets(result)
    result.seconds = time.perf_counter() - started
    return result


def default_scaling(scale: float) -> tuple[float, ...]:
    """The scales of the scaling micro-benchmark: 0.1, 1 and 10 up to ``scale``, and ``scale``.

    >>> default_scaling(1)
    (0.1, 1.0)
    """
    return tuple(sorted({s for s in (0.1, 1.0, 10.0) if s <= scale} | {float(scale)}))


def run_benchmark(
    *,
    scale: float = 1.0,
    runs: int = 3,
    out: str | Path = "benchmarks/results/latest",
    workspace: str | Path = "meshsim-bench",
    engines: list[str] | None = None,
    query_names: list[str] | None = None,
    micro: bool = True,
    cold: bool = True,
    smoke: bool = False,
    scaling: tuple[float, ...] | None = None,
    mesh_sizes: tuple[int, ...] | None = None,
    mesh_dir: str | Path | None = None,
    console: Console | None = None,
) -> tuple[BenchResult, dict[str, Path]]:
    """Build (or reuse) the example mesh at ``scale`` under ``workspace/sf<scale>``, run the
    benchmark and write the report to ``out``; returns the result and the written files."""
    from meshsim.bench import meshscale, report
    from meshsim.bench.engines import check_engines

    console = console or NullConsole()
    config = BenchConfig(
        scale=scale,
        runs=max(1, runs),
        engines=tuple(check_engines(engines) if engines else DEFAULT_ENGINES),
        queries=tuple(q.name for q in queries.tpch(query_names)),
        cold=cold,
        micro=micro and not smoke,
        smoke=smoke,
        scaling=default_scaling(scale) if scaling is None else tuple(scaling),
        mesh_sizes=meshscale.SIZES if mesh_sizes is None else tuple(mesh_sizes),
    )
    started = time.perf_counter()
    mesh = prepare_mesh(Path(workspace) / f"sf{scale:g}", scale, console, mesh_dir)
    build_seconds = time.perf_counter() - started
    result = run_tpch(mesh, config, console, workspace_root=Path(workspace))
    result.build_seconds = build_seconds
    files = report.write(result, Path(out))
    for line in iter_problems(result):
        console.warn(line)
    return result, files


def iter_problems(result: BenchResult) -> Iterator[str]:
    for run in result.problems:
        what = "WRONG ANSWER" if run.status == "wrong" else "FAILED"
        yield f"{what}: {run.engine} {run.query}: {run.answer or run.error}"


def run_mesh_scale(
    *,
    out: str | Path = "benchmarks/results/latest",
    workspace: str | Path = "meshsim-bench",
    sizes: tuple[int, ...] | None = None,
    consumers: int | None = None,
    console: Console | None = None,
    subscriptions_per_table: int | None = None,
    startup_samples: int | None = None,
) -> tuple[BenchResult, dict[str, Path]]:
    """The mesh-scale micro-benchmark alone (no TPC-H), its meshes generated under
    ``workspace/mesh-scale``; the report is written to ``out`` like the whole benchmark's."""
    from meshsim.bench import meshscale, report

    console = console or NullConsole()
    config = BenchConfig(
        engines=(), queries=(), cold=False, mesh_sizes=tuple(sizes or meshscale.SIZES)
    )
    result = BenchResult(config, machine_description(), datetime.now(UTC).isoformat())
    started = time.perf_counter()
    result.micro = {
        "mesh_scale": meshscale.mesh_scale(
            Path(workspace) / "mesh-scale",
            sizes=config.mesh_sizes,
            consumers=consumers or meshscale.CONSUMERS,
            subscriptions_per_table=subscriptions_per_table or meshscale.SUBSCRIPTIONS_PER_TABLE,
            startup_samples=startup_samples or meshscale.PAIRED_SAMPLES,
            console=console,
        )
    }
    result.targets = [Target(*t) for t in result.micro["mesh_scale"]["targets"]]
    result.seconds = time.perf_counter() - started
    return result, report.write(result, Path(out))
