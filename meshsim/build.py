"""Build a mesh into a workspace: check, generate data, write every domain's Delta tables.

Every check that can refuse the mesh (:func:`meshsim.checks.check_mesh`, the same as
``meshsim validate``: lint, publish gates, sources, policies bound on DuckDB) runs before
anything is written, so a refused build leaves the workspace as it was.

Each table is written from its source (``_plan_*``, one function per kind): generated TPC-H
data, files loaded with DuckDB (:mod:`meshsim.sources.files`), or a derived product's query run
through governed SQL as its domain's consumer (:mod:`meshsim.sources.derived`), derived ones
after the tables they read (the versions this build wrote, before they are published).
Re-running is idempotent: a table whose build stamp (its declared schema and, by kind, the
scale, the files' digest or the versions of the tables it read) and Delta version are
unchanged since the last build is left alone, unless its data files are damaged (missing, cut
short, garbled): it is then rewritten ("repaired").

A build becomes visible all at once. Each table is written in one Delta commit, but queries
read the version pinned in ``workspace.json`` (the published version), and the build moves
every pin in one atomic replacement of that file at the end. A build killed midway leaves
new Delta versions nobody reads; consumers keep the previous build, and the next build
finishes the job (see ``docs/consistency.md``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshsim.checks import check_mesh
from meshsim.console import Console, NullConsole
from meshsim.errors import SpecError, StorageError
from meshsim.pins import publishing
from meshsim.spec.loader import MeshSpec, TableSpec
from meshsim.spec.models import (
    CsvSource,
    JsonSource,
    LocationSource,
    ParquetSource,
    SqlSource,
    Table,
    TpchSource,
)
from meshsim.spec.sources import location_path
from meshsim.workspace import BuildStamp, TableRecord, Workspace, WorkspaceState

if TYPE_CHECKING:
    from meshsim.quality.results import CheckRun
    from meshsim.sources.derived import Deriver

TPCH_TABLES = ("region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem")


@dataclass
class TableBuild:
    ref: str
    action: str  # written | unchanged | repaired | registered
    version: int
    rows: int | None
    seconds: float


@dataclass
class BuildReport:
    workspace: Path
    scale: float
    tables: list[TableBuild] = field(default_factory=list)
    generate_seconds: float = 0.0
    seconds: float = 0.0
    #: audit records of the derived tables' queries, stored once the catalog is published
    audit: list[Any] = field(default_factory=list)
    #: the quality rules of the products this build changed, run before publishing them
    quality: CheckRun | None = None


def _tpchgen() -> str:
    found = shutil.which("tpchgen-cli") or str(Path(sys.executable).parent / "tpchgen-cli")
    if not Path(found).exists():
        raise StorageError(
            "tpchgen-cli is not installed in this environment",
            hint="install meshsim with its dependencies (see README), e.g. 'pip install -e .'",
        )
    return found


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, a function for the child to run before ``exec``: the kernel kills it when the
    build dies, however it dies (a ``kill -9`` runs no handler that could stop it). Elsewhere
    ``subprocess.run`` still kills it on an exception such as Ctrl-C."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import signal

    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork, not in it
    parent = os.getpid()
    set_death_signal = 1  # PR_SET_PDEATHSIG

    def preexec() -> None:
        prctl(set_death_signal, signal.SIGKILL)
        if os.getppid() != parent:  # the build died before the death signal was armed
            os._exit(1)

    return preexec


def generate_tpch(scale: float, out_dir: Path, tables: Sequence[str]) -> dict[str, Path]:
    """Generate TPC-H Parquet for ``tables`` at ``scale`` (cached: reused if already there)."""
    wanted = [t for t in tables if not (out_dir / f"{t}.parquet").is_file()]
    if wanted:
        tmp = out_dir.with_name(out_dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        command = [_tpchgen(), "parquet", "-s", f"{scale:g}", "--output-dir", str(tmp)]
        command += ["--tables", ",".join(wanted), "--quiet", "--no-progress"]
        result = subprocess.run(
            command, capture_output=True, text=True, check=False, preexec_fn=_die_with_parent()
        )
        if result.returncode != 0:
            raise StorageError(
                f"tpchgen-cli failed at scale {scale:g}: {result.stderr.strip()[:500]}"
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        for table in wanted:
            (tmp / f"{table}.parquet").replace(out_dir / f"{table}.parquet")
        shutil.rmtree(tmp, ignore_errors=True)
    return {t: out_dir / f"{t}.parquet" for t in tables}


def _schema_hash(table: TableSpec) -> str:
    """What the table's data depends on in its spec: not its quality rules, which decide
    whether a version is published, never what it holds."""
    rules = {"quality": True, "columns": {"__all__": {"quality"}}}
    declared = table.table.model_dump_json(exclude=rules)  # type: ignore[arg-type]
    return hashlib.sha256(declared.encode()).hexdigest()[:16]


def _conformed_reader(parquet: Path, table: TableSpec) -> Any:
    """Stream a generated file cast to the declared schema (string_view -> string, ...)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from meshsim.spec.types import to_arrow

    source = ds.dataset(parquet, format="parquet")
    names = [c.name for c in table.columns]
    missing = [n for n in names if n not in source.schema.names]
    if missing:
        raise SpecError(
            [
                f"table '{table.ref}': declared columns {missing} are not in the generated data "
                f"(generated: {', '.join(source.schema.names)})"
            ]
        )
    target = pa.schema(
        [pa.field(c.name, to_arrow(c.type), nullable=c.nullable) for c in table.columns]
    )
    batches = (
        batch.select(names).cast(target)
        for batch in source.to_batches(columns=names, batch_size=256 * 1024)
    )
    return pa.RecordBatchReader.from_batches(target, batches)


def build_mesh(
    spec: MeshSpec,
    workspace: Workspace,
    scale: float,
    console: Console | None = None,
    *,
    before_writing: Callable[[], None] | None = None,
) -> BuildReport:
    """Build every table of ``spec`` into ``workspace`` and publish them in one step, after
    every check (``before_writing``: the caller's own, such as the catalog's refusal of a
    breaking change) passed."""
    from meshsim.storage import delta

    console = console or NullConsole()
    started = time.perf_counter()
    if scale <= 0:
        raise SpecError([f"scale factor must be positive, got {scale:g}"])
    errors = [p for p in check_mesh(spec, workspace.root) if p.severity == "error"]
    if errors:
        raise SpecError([str(p) for p in errors], hint="fix them, then run 'meshsim validate'")
    if before_writing is not None:
        before_writing()
    report = BuildReport(workspace.root, scale)
    previous = workspace.read_state() if workspace.exists else None
    published: dict[str, TableRecord] = dict(previous.tables) if previous else {}
    # what this build will publish; tables an interrupted build wrote are reused, not rewritten
    records = {**published, **(previous.pending if previous else {})}

    def save(built_at: datetime | None = None) -> None:
        """Record the tables written so far as pending, or (``built_at``) publish them all."""
        state = WorkspaceState(
            mesh_dir=str(spec.root.resolve()),
            mesh_name=spec.name,
            scale=scale,
            spec_fingerprint=spec.fingerprint,
            tables=records,
            built_at=built_at or (previous.built_at if previous else None),
            catalog_created_at=previous.catalog_created_at if previous else None,
        )
        with publishing(workspace):
            now = workspace.read_state().tables if workspace.exists else {}
            # a table this build left alone but a producer wrote meanwhile keeps that write
            kept = {r: t for r, t in now.items() if records.get(r) == published.get(r) != t}
            if built_at is None:
                pending = {r: t for r, t in records.items() if published.get(r) != t}
                update = {"tables": {**published, **kept}, "pending": pending}
                state = (previous or state).model_copy(update=update)
            else:
                state = state.model_copy(update={"tables": {**records, **kept}})
            workspace.write_state(state)

    workspace.mesh_key(create=previous is None)
    from meshsim.lineage.events import emitter_for

    lineage_events = emitter_for(workspace.governance, spec.name, console.warn)

    from meshsim.sources.derived import build_order

    tables = build_order(spec)
    tpch_needed = sorted(
        {t.table.source.tpch for t in tables if isinstance(t.table.source, TpchSource)}
    )
    with (
        console.progress("building mesh", total=len(tables) + 1) as progress,
        _deriver(spec, workspace, report, records) as deriver,
    ):
        gen_started = time.perf_counter()
        progress.advance(0, f"generating TPC-H sf {scale:g}")
        files = generate_tpch(scale, workspace.staging(scale), tpch_needed) if tpch_needed else {}
        report.generate_seconds = time.perf_counter() - gen_started
        progress.advance(1)
        for table in tables:
            progress.advance(0, f"writing {table.ref}")
            t0 = time.perf_counter()
            source = table.table.source
            if isinstance(source, LocationSource):  # checked by check_mesh
                location = location_path(spec, source)
                version = delta.latest_version(location, table=table.ref)
                records[table.ref] = TableRecord(
                    location=str(location), external=True, version=version
                )
                report.tables.append(TableBuild(table.ref, "registered", version, None, 0.0))
            else:
                path = workspace.table_path(table.domain, table.name)
                built = records.get(table.ref)
                planned = _plan(spec, table, scale, files, built, deriver)
                stamp = planned.stamp
                current = delta.latest_version(path) if delta.exists(path) else None
                damaged = current is not None and _damaged(path, table.ref)
                if damaged and not _rewritable(path, table.ref):
                    _move_aside(path)
                    current = None
                if (
                    current is not None
                    and not damaged
                    and built is not None
                    and built.stamp == stamp
                    and built.version == current
                ):
                    report.tables.append(
                        TableBuild(table.ref, "unchanged", current, built.rows, 0.0)
                    )
                    progress.advance(1)
                    continue
                with _run_events(lineage_events, spec, table, deriver) as run:
                    data, stamp = planned.load()
                    version, rows = _write_table(
                        delta, table, path, data, exists=current is not None
                    )
                    run.versions[table.ref] = version
                records[table.ref] = TableRecord(
                    location=str(path),
                    external=False,
                    version=version,
                    stamp=stamp,
                    rows=rows,
                    built_at=datetime.now(UTC),
                )
                action = "repaired" if damaged else "written"
                report.tables.append(
                    TableBuild(table.ref, action, version, rows, time.perf_counter() - t0)
                )
                save()
            progress.advance(1)
    _quality_gate(spec, workspace, report, records, published)
    save(built_at=datetime.now(UTC))  # every pin at once, never one table at a time
    report.seconds = time.perf_counter() - started
    return report


def _damaged(path: Path, ref: str) -> bool:
    """Whether the generated table at ``path`` cannot be read as its log says: a log that does
    not load, or a data file missing, cut short or garbled. Such a table is rewritten."""
    from meshsim.storage.files import check_files
    from meshsim.storage.snapshot import load_snapshot

    try:
        return bool(check_files(load_snapshot(path, table=ref)))
    except StorageError:
        return True


def _rewritable(path: Path, ref: str) -> bool:
    """Whether deltalake can overwrite the table (it needs a log it can load)."""
    from meshsim.storage import delta

    try:
        delta.open_table(path, table=ref)
    except StorageError:
        return False
    return True


def _move_aside(path: Path) -> None:
    """Keep a generated table whose log cannot be loaded beside it, and start it anew."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path.rename(path.with_name(f"{path.name}.damaged-{stamp}"))


def _write_table(
    delta: Any, table: TableSpec, path: Path, data: Any, exists: bool
) -> tuple[int, int | None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with _in_declared_order(table, data) as rows:
        version = delta.write(
            path,
            rows,
            mode="overwrite" if exists else "create",
            partition_by=table.table.partition_by or None,
            column_mapping=table.table.column_mapping,
            description=table.table.description or None,
            table=table.ref,
            # every written table takes the declared schema of this build (a generated one
            # too: a column dropped from the spec otherwise fails the cast after others wrote)
            schema_mode="overwrite" if exists else None,
        )
    from meshsim.storage.snapshot import load_snapshot

    return version, load_snapshot(path, table=table.ref).num_records


def write_order(table: Table) -> list[str]:
    """The columns a build sorts ``table``'s rows by: its ``sort_by``, then its primary key."""
    return [*table.sort_by, *(k for k in table.primary_key if k not in table.sort_by)]


@contextmanager
def _in_declared_order(table: TableSpec, data: Any) -> Iterator[Any]:
    """``data`` sorted by the table's ``sort_by`` columns, then its primary key (so that a
    build writes the same files each time), or as it comes when it declares no order."""
    columns = write_order(table.table)
    if not table.table.sort_by:
        yield data
        return
    import tempfile

    from meshsim import engine

    with tempfile.TemporaryDirectory(prefix="meshsim-sort-") as spill:
        yield engine.sorted_rows(data, columns, spill_dir=spill)


# --- what each kind of source writes ---------------------------------------------------------


@dataclass
class _Planned:
    """A table to write: the stamp that leaves it alone when the last build's matches, and
    how to produce its rows (and the stamp to record: a derived table's names what it read)."""

    stamp: BuildStamp
    load: Callable[[], tuple[Any, BuildStamp]]


def _plan(
    spec: MeshSpec,
    table: TableSpec,
    scale: float,
    files: dict[str, Path],
    built: TableRecord | None,
    deriver: Deriver,
) -> _Planned:
    source = table.table.source
    if isinstance(source, TpchSource):
        return _plan_tpch(table, scale, files[source.tpch])
    if isinstance(source, CsvSource | ParquetSource | JsonSource):
        return _plan_files(spec, table)
    if isinstance(source, SqlSource):
        return _plan_derived(table, built, deriver)
    return _plan_empty(table)


def _plan_tpch(table: TableSpec, scale: float, parquet: Path) -> _Planned:
    stamp = BuildStamp(scale=scale, schema_hash=_schema_hash(table))
    return _Planned(stamp, lambda: (_conformed_reader(parquet, table), stamp))


def _plan_files(spec: MeshSpec, table: TableSpec) -> _Planned:
    """CSV, Parquet or JSON files, loaded again when any of them changed."""
    from meshsim.sources.files import files_digest, inspect, resolve_files, source_pattern

    source = table.table.source
    assert isinstance(source, CsvSource | ParquetSource | JsonSource)
    found, _ = resolve_files(spec.root, source_pattern(source))
    stamp = BuildStamp(schema_hash=_schema_hash(table), files=files_digest(found))

    def load() -> tuple[Any, BuildStamp]:
        inspection = inspect(spec.root, table.table, table.ref)
        errors = [f.message for f in inspection.findings if f.severity == "error"]
        if errors:  # the files changed since the checks ran
            raise SpecError(errors, hint="fix the files, then run 'meshsim validate'")
        return inspection.data, BuildStamp(
            schema_hash=stamp.schema_hash, files=files_digest(inspection.files)
        )

    return _Planned(stamp, load)


def _plan_derived(table: TableSpec, built: TableRecord | None, deriver: Deriver) -> _Planned:
    """A derived table, run again when its query, its columns or any table it read changed."""
    schema_hash = _schema_hash(table)
    read = built.stamp.inputs if built is not None and built.stamp is not None else {}
    current = {ref: deriver.version_of(ref) for ref in read}
    stamp = BuildStamp(schema_hash=schema_hash, inputs=current)

    def load() -> tuple[Any, BuildStamp]:
        data, inputs = deriver.derive(table)
        return data, BuildStamp(schema_hash=schema_hash, inputs=inputs)

    return _Planned(stamp, load)


def _plan_empty(table: TableSpec) -> _Planned:
    import pyarrow as pa

    from meshsim.spec.types import to_arrow

    stamp = BuildStamp(schema_hash=_schema_hash(table))
    data = pa.table({c.name: pa.array([], type=to_arrow(c.type)) for c in table.columns})
    return _Planned(stamp, lambda: (data, stamp))


def _quality_gate(
    spec: MeshSpec,
    workspace: Workspace,
    report: BuildReport,
    records: dict[str, TableRecord],
    published: dict[str, TableRecord],
) -> None:
    """Run the rules of every product this build changes on the versions it is about to
    publish; a blocking result publishes nothing (every pin stays where it was)."""
    from meshsim.errors import QualityGateError
    from meshsim.quality.gate import product_of, reader, refuse, run_gate
    from meshsim.query.audit import MemoryAuditSink

    changed = [
        ref
        for ref, record in records.items()
        if published.get(ref) != record and spec.table(ref) is not None
    ]
    products = list({p.ref: p for p in (product_of(spec, r) for r in changed)}.values())
    if not products:
        return
    audit = MemoryAuditSink()
    made = reader(
        spec,
        locate=_locator(spec, workspace),
        version=lambda ref: records[ref].version if ref in records else None,
        mesh_key=workspace.mesh_key,
        allowed_paths=_allowed_paths(spec, workspace),
        audit=audit,
    )
    report.quality = run_gate(made, products, "build", changed=changed)
    report.audit.extend(audit.records)
    if not published:
        first = report.quality.blocking[0] if report.quality.blocking else None
        where = spec.product(first.product) if first is not None else None
        hint = (
            f"fix the data or the rule in {where.path if where else 'the product file'}, then "
            f"run 'meshsim build' again"
        )
        outcome = "nothing was published: this is the first build, so no table is visible yet"
    else:
        hint, outcome = (
            None,
            "nothing this build wrote was published (the previous version stays current)",
        )
    try:
        candidates = {ref: records[ref].version for ref in changed}
        refuse(report.quality, outcome, hint, candidates, spec)
    except QualityGateError as exc:
        exc.audit = list(report.audit)
        raise


def _locator(spec: MeshSpec, workspace: Workspace) -> Callable[[str], str]:
    """Where a build reads a table: its domain's account, or its registered location."""

    def locate(ref: str) -> str:
        table = spec.table(ref)
        if table is None:
            raise SpecError([f"table '{ref}' is not in the mesh"])
        if isinstance(table.table.source, LocationSource):
            return str(location_path(spec, table.table.source))
        return str(workspace.table_path(table.domain, table.name))

    return locate


def _allowed_paths(spec: MeshSpec, workspace: Workspace) -> list[str]:
    """The folders a build's DuckDB may read: the accounts and registered tables."""
    external = [
        str(location_path(spec, t.table.source))
        for t in spec.tables()
        if isinstance(t.table.source, LocationSource)
    ]
    return [str(workspace.accounts), *external]


@contextmanager
def _run_events(emitter: Any, spec: MeshSpec, table: TableSpec, deriver: Deriver) -> Iterator[Any]:
    """The OpenLineage run of a derived product's build (START, COMPLETE or FAIL); other
    sources' writes are not runs of a job (their source edges are in ``meshsim lineage``)."""
    if not isinstance(table.table.source, SqlSource):
        yield _NoRun()
        return
    from meshsim.lineage.events import derived_build_run

    with derived_build_run(emitter, spec, table, deriver.version_of) as run:
        yield run


@dataclass
class _NoRun:
    versions: dict[str, int] = field(default_factory=dict)


@contextmanager
def _deriver(
    spec: MeshSpec, workspace: Workspace, report: BuildReport, records: dict[str, TableRecord]
) -> Iterator[Deriver]:
    """The engine derived tables are built with (opened on first use, closed at the end),
    reading each table at the version this build records for it (``records``, filled as the
    build goes): what it will publish, not yet visible to consumers."""
    from meshsim.sources.derived import Deriver

    deriver = Deriver(
        spec,
        locate=_locator(spec, workspace),
        mesh_key=workspace.mesh_key,
        allowed_paths=_allowed_paths(spec, workspace),
        versions=lambda ref: records[ref].version if ref in records else None,
    )
    try:
        yield deriver
    finally:
        report.audit.extend(deriver.audit.records)
        deriver.close()
