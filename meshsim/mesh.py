"""The ``Mesh`` facade: the one entry point the CLI, notebooks and benchmarks call.

>>> import meshsim
>>> mesh = meshsim.Mesh.build("domains", "/tmp/ws", scale=0.01)      # doctest: +SKIP
>>> analyst = mesh.session("eu_marketing_analyst")  # doctest: +SKIP
>>> analyst.sql("SELECT count(*) FROM customer.customer")  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshsim.console import Console, NullConsole
from meshsim.errors import MeshsimError, QualityGateError, WorkspaceError, unknown_name_message
from meshsim.gcpause import pauses_collector
from meshsim.spec.lazy import ParsedDomains
from meshsim.spec.loader import MeshSpec, load_mesh, load_what_if
from meshsim.spec.watch import SpecFiles
from meshsim.workspace import DEFAULT_MESH, Workspace

if TYPE_CHECKING:
    from meshsim.build import BuildReport
    from meshsim.catalog import Catalog
    from meshsim.catalog.models import ProductDetails, PublishedVersion, Request
    from meshsim.catalog.views import RowCounter
    from meshsim.contracts.live import ServingGate
    from meshsim.contracts.service import ContractDiff, ImportedContract
    from meshsim.doctor import DoctorReport
    from meshsim.engine import EngineLimits
    from meshsim.lineage.events import LineageEmitter
    from meshsim.lineage.render import LineageAnswer
    from meshsim.pins import TableVersion
    from meshsim.platforms.governance import ExportReport
    from meshsim.policy.access import TableAccess
    from meshsim.produce.writes import WriteBatch, WriteResult
    from meshsim.quality.results import CheckRun
    from meshsim.query.result import Explanation, Result
    from meshsim.query.session import GovernedEngine, Session
    from meshsim.reprs import AccessList, Listing
    from meshsim.scaffold import NewProduct
    from meshsim.spec.fswatch import FolderWatch
    from meshsim.spec.lint import Problem
    from meshsim.spec.models import Policies
    from meshsim.statefile import StateView
    from meshsim.storage.snapshot import Snapshot


@dataclass(frozen=True)
class TableInfo:
    ref: str
    domain: str
    product: str
    version: int
    rows: int | None  # None when the log does not record row counts
    files: int
    size_bytes: int
    location: str
    external: bool


def validate(mesh_dir: str | Path = DEFAULT_MESH) -> list[Problem]:
    """Load a mesh folder and run every check a build runs before writing (lint, publish
    gates, sources, policies bound against the declared schemas). Raises SpecError for
    unreadable or invalid files."""
    from meshsim.checks import check_mesh
    from meshsim.sources.registered import with_registered_columns

    return check_mesh(with_registered_columns(load_mesh(mesh_dir)))


def _state_stamp(workspace: Workspace) -> tuple[int, ...] | None:
    """What changes when workspace.json is written (taken before reading it, so that a write
    racing the read shows up as a change)."""
    try:
        info = workspace.state_file.stat()
    except OSError:
        return None
    # the inode too: each write replaces the file, and two writes can share an mtime tick
    return (info.st_mtime_ns, info.st_ino, info.st_size)


class Mesh:
    """A built mesh: its spec, its workspace, and governed access to its tables."""

    def __init__(
        self,
        workspace: Workspace,
        mesh_dir: Path,
        console: Console | None = None,
        limits: EngineLimits | None = None,
        *,
        catalog: Catalog | None = None,
    ):
        self.workspace = workspace
        #: resource bounds of governed queries (timeout, result rows and bytes, threads)
        self.limits = limits
        #: what the last :meth:`build` did, table by table (None until one ran)
        self.last_build: BuildReport | None = None
        self.mesh_dir = mesh_dir
        self.console = console or NullConsole()
        #: the spec of queries (True) and of every other command (False): each with the spec
        #: files it read and its load's number (a cache key). A query's spec reads mesh.yaml and
        #: the domains it uses, as in a fresh process, whatever a listing read into the other;
        #: they share the parses of unchanged domains.
        self._views: dict[bool, tuple[MeshSpec, SpecFiles, int]] = {}
        self._loads = 0
        self._parsed = ParsedDomains()
        self._fswatch: FolderWatch | None = None  # the views' watch of the mesh folder
        self._lock = threading.RLock()
        self._command = threading.local()  # see _one_command
        self._engine: Any = None
        self._snapshots: Any = None
        self._catalog: Any = catalog  # the workspace's own when None (tests pass one with a clock)
        #: per consumer (None: everyone's subscriptions), keyed by spec and catalog revision
        self._policies: dict[
            tuple[bool, str | None], tuple[tuple[int, int], tuple[Request, ...], Policies]
        ] = {}
        self._lineage_events: LineageEmitter | None = None
        self._serving: Any = None

    # --- construction ------------------------------------------------------------------

    @classmethod
    @pauses_collector
    def open(
        cls,
        workspace: str | Path | None = None,
        *,
        mesh_dir: str | Path | None = None,
        console: Console | None = None,
        limits: EngineLimits | None = None,
    ) -> Mesh:
        ws = Workspace.at(workspace)
        ws.check_path()
        # read once (a record per table): the open's checks and the first query share it
        stamped = (_state_stamp(ws), ws.read_view())
        state = stamped[1]
        directory = Path(mesh_dir) if mesh_dir else Path(state.mesh_dir)
        if not (directory / "mesh.yaml").is_file():
            raise WorkspaceError(
                f"workspace '{ws.root}' was built from '{directory}', which has no mesh.yaml",
                hint="pass --mesh DIR, or rebuild with 'meshsim build --mesh DIR'",
            )
        if ws.first_build_unfinished(state):  # not a new, empty catalog in place of the build's
            raise ws.unfinished_build_error()
        mesh = cls(ws, directory.resolve(), console, limits)
        mesh._state_cache = stamped
        mesh.catalog.store.check()  # a lost or damaged catalog stops every command, up front
        return mesh

    @staticmethod
    def doctor(workspace: str | Path | None = None, *, repair: bool = False) -> DoctorReport:
        """Check a workspace (it need not open: this is how a broken one is diagnosed) and,
        with ``repair``, fix what can be fixed without losing anything; see
        :mod:`meshsim.doctor`."""
        from meshsim import doctor

        return doctor.repair(workspace) if repair else doctor.diagnose(workspace)

    # --- scaffolding (meshsim.scaffold): spec files, no workspace ---------------------------

    @staticmethod
    def init(directory: str | Path = DEFAULT_MESH, *, example: str = "minimal") -> Path:
        """Copy an example mesh (``minimal`` or ``retail``) into a new or empty folder."""
        from meshsim.scaffold import init_mesh

        return init_mesh(directory, example)

    @staticmethod
    def new_domain(
        name: str, *, mesh_dir: str | Path = DEFAULT_MESH, owner: str | None = None
    ) -> Path:
        """Add a domain to a mesh folder; returns its ``domain.yaml``."""
        from meshsim.scaffold import new_domain

        return new_domain(mesh_dir, name, owner)

    @staticmethod
    def new_product(
        ref: str, *, from_path: str | Path, mesh_dir: str | Path = DEFAULT_MESH
    ) -> NewProduct:
        """Add ``DOMAIN.PRODUCT`` over a file, folder, glob or Delta table, its columns
        inferred from the data."""
        from meshsim.scaffold import new_product

        return new_product(mesh_dir, ref, from_path)

    @classmethod
    def build(
        cls,
        mesh_dir: str | Path = DEFAULT_MESH,
        workspace: str | Path | None = None,
        *,
        scale: float | None = None,
        console: Console | None = None,
    ) -> Mesh:
        """Build the mesh into ``workspace`` at ``scale``: by default the workspace's current
        scale (1.0 for a new workspace), so a rebuild keeps the producers' writes."""
        ws = Workspace.at(workspace)
        ws.check_path()
        mesh = cls(ws, Path(mesh_dir).resolve(), console)
        current = ws.read_state().scale if ws.exists else None
        if scale is None:
            scale = current if current is not None else 1.0
        elif current is not None and scale != current and mesh._generates_tpch():
            mesh.console.warn(
                f"building at scale {scale:g}, not the workspace's {current:g}: this "
                f"regenerates the TPC-H tables and discards producer writes to them"
            )
        mesh.last_build = mesh._build(scale)
        return mesh

    def _generates_tpch(self) -> bool:
        from meshsim.spec.models import TpchSource

        return any(isinstance(t.table.source, TpchSource) for t in self.spec.tables())

    def _build(self, scale: float) -> BuildReport:
        from meshsim.build import build_mesh
        from meshsim.identity import remember_binding_scan
        from meshsim.pins import publishing
        from meshsim.sources.registered import with_registered_columns

        if not self.catalog.store.create:  # built before: a lost catalog stops it up front
            self.catalog.store.check()
        # a build checks and writes everything: the spec loaded eagerly, every file at once,
        # and the catalog publishes from the same spec (not a second, lazy load)
        files = self._spec_files()
        spec = with_registered_columns(load_mesh(self.mesh_dir, watch=files))
        checks = None
        if not self.catalog.store.create:

            def checks() -> None:
                from meshsim.quality.gate import gate_changed_rules

                self.catalog.refuse_breaking()
                gate_changed_rules(self, spec)

        try:
            report = build_mesh(spec, self.workspace, scale, self.console, before_writing=checks)
        except QualityGateError as exc:
            if not self.catalog.store.create:  # a first build has no catalog to keep them
                self.record_checks(exc.run)
                for record in exc.audit:
                    self.catalog.append_audit(record)
            raise
        self._invalidate()
        with self._lock:  # a query's spec is loaded again: registered tables' columns too
            self._loads += 1
            self._views = {False: (spec, files, self._loads)}
        self.catalog.publish_all()  # the versions workspace.json now pins, rows with them
        for record in report.audit:  # derived tables' queries, run before the catalog existed
            self.catalog.append_audit(record)
        if report.quality is not None:
            self.record_checks(report.quality)
        with publishing(self.workspace):  # read and written again: no publish lost between
            state = self.workspace.read_state()
            if state.catalog_created_at is None:
                created = datetime.now(UTC)
                update = {"catalog_created_at": created}
                self.workspace.write_state(state.model_copy(update=update))
        remember_binding_scan(self.mesh_dir, self.workspace.spec_scan_file)
        return report

    # --- spec ----------------------------------------------------------------------------

    @property
    def spec(self) -> MeshSpec:
        """The mesh spec, reloaded when a spec file it read changes: a query over one table
        stats mesh.yaml and its domain's files, not the whole mesh (:mod:`meshsim.spec.watch`);
        checked once per command inside :meth:`_one_command`, whose lookups share it."""
        return self._current_spec()

    @property
    def identity_spec(self) -> MeshSpec:
        """:attr:`spec` as an identity check must read it: reloaded also when a file only the
        scan for owner bindings read has changed, so that a binding added to any domain's file
        since the last check is in force (a session, a catalog decision, a write)."""
        return self._current_spec(scans=True)

    def _current_spec(self, *, scans: bool = False, query: bool | None = None) -> MeshSpec:
        """``scans``: also reload when a file only the identity check's scan of the whole
        mesh read has changed (a new session's check: it must see every binding). ``query``:
        the query's spec (by default, inside a query's :meth:`_one_command`)."""
        return self._view(scans=scans, query=query)[0]

    def _view(self, *, scans: bool = False, query: bool | None = None) -> tuple[MeshSpec, int]:
        """The current spec of queries or of other commands, with its load's number."""
        command = self._command
        if query is None:
            query = getattr(command, "query", False)
        with self._lock:
            view = self._views.get(query)
            if view is not None and not scans and query in getattr(command, "checked", ()):
                return view[0], view[2]
            if view is None or view[1].changed(scans=scans):
                from meshsim.sources.registered import with_registered_columns

                # lazily: a query over one table parses only its domain's files
                files = self._spec_files()
                index = self.workspace.spec_scan_file if self.workspace.exists else None
                loaded = load_mesh(
                    self.mesh_dir, lazy=True, watch=files, scan_index=index, parsed=self._parsed
                )
                self._loads += 1
                view = (with_registered_columns(loaded), files, self._loads)
                self._views[query] = view
                if query:
                    self._invalidate()  # the engine's spec
            if getattr(command, "depth", 0):
                command.checked.add(query)
            return view[0], view[2]

    def _spec_files(self) -> SpecFiles:
        """A new record of the spec files a load reads, checked through the mesh folder's
        watch (one per Mesh, shared by its views and their reloads: :mod:`meshsim.spec.fswatch`)."""
        from meshsim.spec.fswatch import FolderWatch

        with self._lock:
            if self._fswatch is None:
                self._fswatch = FolderWatch(self.mesh_dir)
            return SpecFiles(watch=self._fswatch)

    @contextmanager
    def _one_command(self, *, query: bool = False) -> Iterator[None]:
        """Check the spec files for changes once in the block (a stat of every file, which
        grows with the mesh), not on each of its lookups; per thread, and nestable. ``query``:
        a governed query, which asks for the query's spec (see ``_views``)."""
        command = self._command
        command.depth = getattr(command, "depth", 0) + 1
        if command.depth == 1:
            command.checked = set()  # the views checked in the block
        outer = getattr(command, "query", False)
        starts_query = query and not outer
        if starts_query:
            command.revision = None  # the catalog's, read once in a query's block
        command.query = query
        try:
            yield
        finally:
            command.depth -= 1
            command.query = outer
            if starts_query:
                command.revision = None
            if not command.depth:
                command.checked = set()

    @property
    def name(self) -> str:
        return self.spec.name

    def _invalidate(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        self._policies = {}

    def close(self) -> None:
        self._invalidate()
        if self._fswatch is not None:
            self._fswatch.close()  # later checks of the spec files stat them
        if self._catalog is not None:
            self._catalog.store.close()

    def __enter__(self) -> Mesh:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- storage ---------------------------------------------------------------------------

    def _state(self) -> StateView:
        """workspace.json, re-read only when it changes (it is consulted on every query);
        each domain's records read when first asked for."""
        stamp = _state_stamp(self.workspace)
        cached = getattr(self, "_state_cache", None)
        if cached is None or cached[0] != stamp or stamp is None:
            cached = (stamp, self.workspace.read_view())
            self._state_cache = cached
        return cached[1]

    def locate(self, ref: str) -> str:
        """The Delta location of a table (its domain's account, or its registered location)."""
        from meshsim.system import AUDIT_TABLE, export_audit

        # the engine checks the spec once per query; here the loaded one is current enough
        view = self._views.get(getattr(self._command, "query", False))
        spec = view[0] if view is not None else self.spec
        if ref.lower() == AUDIT_TABLE and spec.table(AUDIT_TABLE) is None:
            location = self.workspace.governance / "system" / "audit"
            export_audit(self.catalog, location)
            return str(location)
        table = spec.table(ref.lower())
        if table is None:
            raise MeshsimError(
                unknown_name_message("table", ref, [t.ref for t in self.spec.tables()]),
                hint="run 'meshsim tables' to list them",
            )
        record = self._state().tables.get(table.ref)
        if record is None:
            raise WorkspaceError(
                f"table '{table.ref}' is in the spec but not built in '{self.workspace.root}'",
                hint="run 'meshsim build'",
            )
        if record.external:
            return record.location
        # a domain's own tables live in its account: derived, so a moved workspace still works
        return str(self.workspace.table_path(table.domain, table.name))

    def published_version(self, ref: str) -> int | None:
        """The version of ``ref`` consumers read: pinned by the last build or write to
        publish it (None for a table the workspace does not pin, such as the audit log)."""
        record = self._state().tables.get(ref.lower())
        return record.version if record is not None else None

    def publications(self, ref: str) -> list[int]:
        """Every version of ``ref`` ever published, oldest first: what time travel reaches. A
        registered table's versions up to its pin are all its owning engine's (meshsim never
        writes one, so none was rolled back), and time travel reaches each of them."""
        state = self._state()
        record = state.tables.get(ref.lower())
        if record is not None and record.external:
            return list(range(record.version + 1))
        return list(state.publications.get(ref.lower(), ()))

    def snapshot(
        self, ref: str, *, version: int | None = None, timestamp: datetime | None = None
    ) -> Snapshot:
        """A table's published snapshot, or the one a time travel names (never past the
        published version)."""
        from meshsim.pins import published_snapshot

        ref = ref.lower()
        return published_snapshot(
            self._snapshot_cache(),
            self.locate(ref),
            ref,
            self.published_version(ref),
            version,
            timestamp,
            self.publications(ref),
        )

    def _snapshot_cache(self) -> Any:
        """One snapshot cache for the facade and its query engine: each table version's log
        is replayed once, whichever asks first."""
        from meshsim.storage.snapshot import SnapshotCache

        with self._lock:
            if self._snapshots is None:
                self._snapshots = SnapshotCache()
            return self._snapshots

    def history(self, ref: str, limit: int | None = None) -> list[TableVersion]:
        """A table's Delta commits, newest first, each marked ``current`` (what queries read),
        ``earlier`` (published before), ``unpublished`` or ``never``."""
        from meshsim.pins import table_history
        from meshsim.values import optional_limit

        return table_history(self, ref, optional_limit(limit, what="history limit"))

    # --- producers (meshsim.produce.writes; each publishes what it changed) ----------------

    def writes(self, *, by: str | None = None) -> WriteBatch:
        """``with mesh.writes(by=OWNER) as batch:`` several writes, published together."""
        from meshsim.produce.writes import WriteBatch

        return WriteBatch(self, by)

    def write(
        self,
        ref: str,
        data: Any,
        *,
        mode: str = "append",
        by: str | None = None,
        dateformat: str | None = None,
        all_rows: bool = False,
    ) -> WriteResult:
        """Append, overwrite or upsert rows (a file, a folder or an Arrow table) into ``ref``;
        CSV and JSON dates are ISO unless ``dateformat`` (e.g. ``%d/%m/%Y``) is given."""
        from meshsim.produce.writes import run

        arguments = {"mode": mode, "dateformat": dateformat, "all_rows": all_rows}
        return run(self, by, "write", ref, data=data, **arguments)

    def delete(
        self, ref: str, where: str | None, *, by: str | None = None, all_rows: bool = False
    ) -> WriteResult:
        """Delete the rows of ``ref`` matching the SQL condition ``where`` (every row needs
        ``all_rows``; ``where`` None with it deletes them all)."""
        from meshsim.produce.writes import run

        return run(self, by, "delete", ref, where=where, all_rows=all_rows)

    def optimize(
        self, ref: str | None = None, *, zorder: list[str] | None = None
    ) -> list[WriteResult]:
        """Compact one table's small files, or every table's (rows unchanged)."""
        from meshsim.produce.writes import maintain

        return maintain(self, "optimize", ref, zorder=zorder)

    def vacuum(
        self, ref: str | None = None, *, retain_hours: int = 168, dry_run: bool = False
    ) -> list[WriteResult]:
        """Delete files no version within ``retain_hours`` needs (never the published one's)."""
        from meshsim.produce.writes import maintain

        return maintain(self, "vacuum", ref, retain_hours=retain_hours, dry_run=dry_run)

    def domains(self) -> list[dict[str, Any]]:
        return [
            {
                "domain": d.name,
                "owner_team": d.domain.owner_team,
                "description": d.domain.description,
                "contact": d.domain.contact,
                "products": [p.product.name for p in d.products],
                "account": str(self.workspace.account(d.name)),
            }
            for d in self.spec.domains
        ]

    def tables(self, *, as_consumer: str | None = None) -> list[TableInfo]:
        """Built tables with their current version, rows and files. For ``as_consumer``: only
        the tables it may query, with the rows it may read (counted by its governed SQL, as
        :meth:`row_counter` decides)."""
        infos = []
        records = self._state().tables
        count = self.row_counter(as_consumer)
        for table in self.spec.tables():
            record = records.get(table.ref)
            if record is None:
                continue
            if as_consumer is not None and not self.table_access(as_consumer, table.ref).granted:
                continue
            snap = self.snapshot(table.ref)
            infos.append(
                TableInfo(
                    ref=table.ref,
                    domain=table.domain,
                    product=table.product,
                    version=snap.version,
                    rows=snap.num_records if count is None else count(table.ref, snap.version),
                    files=len(snap.files),
                    size_bytes=sum(f.size for f in snap.files),
                    location=snap.location,
                    external=record.external,
                )
            )
        return infos

    # --- governance ------------------------------------------------------------------------

    def access(
        self, consumer: str | None = None, *, policies_file: str | Path | None = None
    ) -> AccessList:
        """Who may query what, column by column, and why: the spec's policies plus the active
        subscriptions, system tables included, resolved exactly as the query engine resolves
        them (:meth:`table_access`), so a listing never decides access a second way. With
        ``policies_file``: the same under an edited policies file, without applying it."""
        from meshsim.policy.access import access_matrix
        from meshsim.reprs import AccessList
        from meshsim.system import with_system_grants, with_system_tables

        with self._one_command():  # the serving gate asks for the spec once per table
            spec = self.spec
            if policies_file is None:
                target, policies = spec, self.effective_policies()
            else:
                target = load_what_if(spec, policies_file)
                proposed = self.catalog.effective_policies(target.policies)
                policies = with_system_grants(target, proposed)
            consumers = [consumer] if consumer else None
            matrix = access_matrix(with_system_tables(target), consumers, policies)
            return AccessList([self._served(access) for access in matrix])

    def access_cells(
        self, consumer: str | None = None, *, limit: int | None = None, offset: int = 0
    ) -> Listing:
        """The cells of :meth:`access` (one per consumer, table and column), a page of ``limit``
        from ``offset`` whose ``total`` counts them all: only the pairs on the page are
        resolved (a page of a 1,000-table mesh's matrix, not the matrix)."""
        from meshsim.catalog.views import access_rows
        from meshsim.policy.access import matrix_page, require_consumer, resolve_access
        from meshsim.reprs import Listing
        from meshsim.system import with_system_tables
        from meshsim.values import bounded_int, optional_limit

        limit, offset = optional_limit(limit), bounded_int(offset, what="offset")
        with self._one_command():
            spec = with_system_tables(self.spec)
            names = [require_consumer(spec, consumer).name] if consumer else spec.consumer_names()
            pairs, skip, total = matrix_page(spec, names, limit, offset)
            policies = self.effective_policies() if pairs else None
            matrix = [self._served(resolve_access(spec, c, t, policies)) for c, t in pairs]
            cells = access_rows(matrix)[skip : None if limit is None else skip + limit]
            return Listing(cells, title="access, column by column", total=total)

    def _served(self, access: TableAccess) -> TableAccess:
        """``access`` as consumers get it: nothing of a withheld product."""
        from meshsim.policy.access import withheld_access

        refusal = self.serving.withheld(access.table)
        return access if refusal is None else withheld_access(access, refusal.product)

    def access_changes(self, policies_file: str | Path, consumer: str | None = None) -> Listing:
        """The cells that would change under an edited mesh.yaml or policies block, without
        applying it; a consumer the edit adds or removes shows as ``absent`` on the other
        side."""
        from meshsim.policy.access import require_consumer
        from meshsim.reprs import AccessList

        proposed = load_what_if(self.spec, policies_file)
        now = consumer is None or self.spec.consumer(consumer) is not None
        then = consumer is None or proposed.consumer(consumer) is not None
        if not (now or then):
            require_consumer(self.spec, consumer or "")
        current = self.access(consumer) if now else AccessList([])
        after = self.access(consumer, policies_file=policies_file) if then else AccessList([])
        return current.changes(after)

    def what_if_problems(self, policies_file: str | Path) -> list[Problem]:
        """What ``meshsim validate`` would report under an edited mesh.yaml or policies block
        that it does not report now (an exposed PII column, a misspelt attribute...), with
        lines in the edited file. Nothing is applied."""
        from meshsim.checks import POLICY_CHECKS, check_mesh

        spec = self.spec
        proposed = load_what_if(spec, policies_file)
        now = {(p.severity, p.message) for p in check_mesh(spec, checks=POLICY_CHECKS)}
        mesh_file = str(spec.root / "mesh.yaml")
        return [
            replace(p, where=p.where.replace(mesh_file, str(policies_file), 1))
            for p in check_mesh(proposed, checks=POLICY_CHECKS)
            if (p.severity, p.message) not in now
        ]

    def table_access(self, consumer: str, ref: str) -> TableAccess:
        """What governed SQL lets ``consumer`` see of ``ref`` now (system tables included,
        under the policies and subscriptions in force): the very answer the query engine
        acts on, so that a listing never decides access a second way."""
        from meshsim.policy.access import resolve_access, withheld_access
        from meshsim.system import with_system_tables

        access = resolve_access(
            with_system_tables(self.spec), consumer, ref, self.effective_policies(consumer)
        )
        refusal = self.serving.withheld(ref)
        return access if refusal is None else withheld_access(access, refusal.product)

    def export_governance(
        self,
        target: str,
        out: str | Path,
        *,
        storage_root: str | None = None,
        locations: dict[str, str] | None = None,
        catalog: str | None = None,
        policy_user: str | None = None,
    ) -> ExportReport:
        """Write the mesh's governance for ``target`` (``lakeformation``, ``unity-catalog`` or
        ``trino``) into the folder ``out``, from the access matrix :meth:`access` acts on.
        Tables live at ``storage_root/<domain>/<table>`` unless ``locations`` gives a domain its
        own root; ``catalog`` names Trino's catalog (the mesh's name by default) and
        ``policy_user`` the Trino user lookups run as (``meshsim_policy``; never a consumer).
        What the target cannot express is in the report and the files, never dropped."""
        from meshsim.platforms.run import export_governance

        return export_governance(
            self,
            target,
            out,
            storage_root=storage_root,
            locations=locations,
            catalog=catalog,
            policy_user=policy_user,
        )

    def lineage(self, ref: str, *, direction: str = "both") -> LineageAnswer:
        """Where the table or column ``ref`` (``DOMAIN.TABLE[.COLUMN]``) comes from
        (``upstream``), what is derived from it (``downstream``), or ``both``: source, column
        and governance edges (:mod:`meshsim.lineage`)."""
        from meshsim.lineage.collect import lineage_answer

        return lineage_answer(self.spec, ref, direction)

    @property
    def lineage_events(self) -> LineageEmitter:
        """This workspace's OpenLineage emitter (``governance/lineage/events.jsonl``, and
        ``OPENLINEAGE_URL`` when set): ``emit_check_run(...)`` for a check run's results."""
        with self._lock:
            if self._lineage_events is None:
                from meshsim.lineage.events import emitter_for

                governance = self.workspace.governance
                self._lineage_events = emitter_for(governance, self.spec.name, self.console.warn)
            return self._lineage_events

    def record_checks(self, run: CheckRun) -> None:
        """Keep a check run's results: in the catalog (``meshsim show``), and as one OpenLineage
        check run per table checked (its rules as ``dataQualityAssertions``)."""
        from meshsim.lineage.events import Assertion

        self.catalog.record_checks(run)
        by_table: dict[tuple[str, int], list[Assertion]] = {}
        for result in run.results:
            by_table.setdefault((result.table, result.version), []).append(
                Assertion(
                    assertion=result.kind,
                    success=result.status == "passed",
                    name=result.rule,
                    severity=result.severity,
                    actual=None if result.failing_rows is None else str(result.failing_rows),
                )
            )
        for (ref, version), assertions in by_table.items():
            table = self.spec.table(ref)
            if table is not None:
                self.lineage_events.emit_check_run(table, version, assertions)

    # --- catalog -------------------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        """The central catalog: published products, subscriptions, decisions and the audit."""
        with self._lock:
            if self._catalog is None:
                from meshsim.catalog import Catalog

                self._catalog = Catalog(
                    self.workspace,
                    lambda: self.spec,
                    built=lambda: self._state().tables,
                    identity_spec=lambda: self.identity_spec,
                )
            return self._catalog

    def products(
        self, *, as_consumer: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Published products (a page of ``limit`` from ``offset``, its ``total`` the count of
        all); row counts as :meth:`row_counter` decides for ``as_consumer``."""
        from meshsim.reprs import Listing

        with self._one_command():
            counter = self.row_counter(as_consumer)
            rows = self.catalog.products(as_consumer, count=counter, limit=limit, offset=offset)
        paged = limit is not None or offset > 0
        total = self.catalog.product_count() if paged else len(rows)
        return Listing(rows, title="published products", total=total)

    def search(self, text: str, *, limit: int | None = 20, offset: int = 0) -> Listing:
        """Full-text search over products, tables and columns, best match first (a page of
        ``limit`` hits from ``offset``, its ``total`` the count of all hits)."""
        from meshsim.reprs import Listing

        hits = self.catalog.search(text, limit=limit, offset=offset)
        paged = limit is not None or offset > 0
        total = self.catalog.search_count(text) if paged else len(hits)
        return Listing(hits, title=f"search: {text}", total=total)

    def show(
        self,
        product: str,
        *,
        as_consumer: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> ProductDetails:
        """One product in detail, for ``as_consumer`` with its column access and row counts
        (refused for a consumer while the product is withheld: :attr:`serving`), and its
        rules' latest results on the published versions as it may see them; with ``limit``
        or ``offset``, a page of each of its lists (their counts in ``totals``)."""
        from meshsim.quality.gate import shown_results

        # one product, as a query reads one: the query's spec, which checks only the files it
        # read, not every file a listing of the whole mesh loaded before
        with self._one_command(query=True):
            if as_consumer is not None:
                refusal = self.serving.refusal(product)
                if refusal is not None:
                    raise refusal
            counter = self.row_counter(as_consumer)
            details = self.catalog.show(
                product, as_consumer, count=counter, limit=limit, offset=offset
            )
            quality = shown_results(self, details.product, as_consumer)
            if not details.totals:
                return replace(details, quality=quality)
            end = None if limit is None else offset + limit
            totals = {**details.totals, "quality": len(quality)}
            return replace(details, quality=quality[offset:end], totals=totals)

    # --- data contracts (meshsim.contracts) -------------------------------------------------

    def export_contract(self, product: str) -> str:
        """The product as an ODCS v3 YAML data contract (``meshsim contract export``)."""
        from meshsim.contracts.service import export_contract

        return export_contract(self, product)

    @staticmethod
    def import_contract(
        file: str | Path, *, domain: str, mesh_dir: str | Path = DEFAULT_MESH
    ) -> ImportedContract:
        """Create or update a product file of ``domain`` from an ODCS v3 contract; every key
        meshsim cannot represent is refused, nothing is dropped."""
        from meshsim.contracts.service import import_contract

        return import_contract(Path(mesh_dir), Path(file), domain)

    def contract_diff(
        self, product: str, *, base: str | None = None, target: str | None = None
    ) -> ContractDiff:
        """The changes between two versions of a product, each breaking or not: ``base`` by
        default the latest published version, ``target`` the spec; either may be a
        published version (``3``), a contract version (``1.2.0``), ``spec`` or a file."""
        from meshsim.contracts.service import diff_contract

        return diff_contract(self, product, base, target)

    def publish(self, product: str) -> PublishedVersion:
        """Publish ``product`` from its tables' published versions, gated by the catalog's
        rules and by the product's quality rules (:mod:`meshsim.quality.gate`)."""
        from meshsim.quality import gate

        return gate.publish(self, product)

    def check(
        self,
        product: str | None = None,
        *,
        as_consumer: str | None = None,
        versions: dict[str, int] | None = None,
    ) -> CheckRun:
        """Run the quality rules of ``product`` (all products when None) on its published
        table versions, or on ``versions`` (table -> Delta version); results are stored in
        the catalog, and sample keys hide what ``as_consumer`` may not see."""
        from meshsim.quality import gate

        return gate.check(self, product, as_consumer=as_consumer, versions=versions)

    def row_counter(self, consumer: str | None) -> RowCounter | None:
        """The row counts a listing may show ``consumer``: what it could count itself with
        governed SQL (its row filters applied, at the published version; audited as its own
        queries), and none for a table it has no grant on. ``None`` without a consumer: the
        operator's view, the published totals that ``tables`` also shows."""
        from meshsim.catalog.views import governed_counter

        if consumer is None:
            return None
        session = self.session(consumer)

        def granted(ref: str) -> bool:
            return self.spec.table(ref) is not None and self.table_access(consumer, ref).granted

        return governed_counter(session.sql, granted)

    def _catalog_revision(self) -> int:
        """The catalog's revision; read once in a query's block (:meth:`_one_command`): the
        query's policies and the serving gate of each table it reads ask for it, and a query
        sees the catalog of one moment. A query does not change the catalog (its audit
        record bumps no revision); other commands read it each time, as they may."""
        command = self._command
        if not getattr(command, "depth", 0) or not getattr(command, "query", False):
            return self.catalog.revision()
        if getattr(command, "revision", None) is None:
            command.revision = self.catalog.revision()
        return command.revision

    def effective_policies(self, consumer: str | None = None) -> Policies:
        """The spec's policies plus active subscriptions (``consumer``'s only, when given: all
        a query as that consumer needs); one object per catalog revision, so the query
        engine's compiled-policy cache stays warm until something changes."""
        spec, version = self._view()
        key = (version, self._catalog_revision())
        slot = (getattr(self._command, "query", False), consumer)
        with self._lock:
            cached = self._policies.get(slot)
            if cached is not None and cached[0] == key:
                return cached[2]
            active = self.catalog.active_requests(consumer)
            if cached is not None and cached[0][0] == key[0] and cached[1] == active:
                # another consumer's request changed the catalog, not these subscriptions:
                # the same object, so every cache keyed by it stays warm
                self._policies[slot] = (key, active, cached[2])
                return cached[2]
            from meshsim.system import with_system_grants

            merged = self.catalog.effective_policies(spec.policies, active=active)
            policies = with_system_grants(spec, merged)
            self._policies[slot] = (key, active, policies)
            return policies

    @property
    def serving(self) -> ServingGate:
        """Which products consumers may be served now: one withheld while its files hold
        unpublished breaking changes (:mod:`meshsim.contracts.live`); queries, ``access``,
        ``show`` and :meth:`table_access` all ask it."""
        with self._lock:
            if self._serving is None:
                from meshsim.contracts.live import ServingGate

                def key() -> tuple[int, int]:
                    # the policies' key (spec loaded, catalog revision): not a second check
                    # of the spec files per table
                    # (reloads the spec when a file it read changed)
                    return (self._view()[1], self._catalog_revision())

                self._serving = ServingGate(lambda: self.spec, key, self.catalog.store.read)
            return self._serving

    # --- governed SQL -----------------------------------------------------------------------

    @property
    def engine(self) -> GovernedEngine:
        spec = self._current_spec(query=True)
        with self._lock:
            if self._engine is None:
                from meshsim.query.plan_store import PLAN_FOLDER, PlanStore
                from meshsim.query.session import GovernedEngine
                from meshsim.system import with_system_tables

                roots = {str(self.workspace.accounts), str(self.workspace.governance / "system")}
                files = self._views[True][1]  # the spec files the engine's spec reads

                def root_of(ref: str) -> str | None:  # a registered table's own location
                    record = self._state().tables.get(ref)
                    return record.location if record is not None and record.external else None

                self._engine = GovernedEngine(
                    with_system_tables(spec),
                    locate=self.locate,
                    mesh_key=self.workspace.mesh_key(),
                    allowed_paths=sorted(roots),
                    root_of=root_of,
                    audit=_CatalogAudit(self.catalog),
                    policies=self.effective_policies,
                    snapshots=self._snapshot_cache(),
                    limits=self.limits,
                    published=self.published_version,
                    publications=self.publications,
                    serves=self.serving.require_served,
                    plan_store=PlanStore(
                        self.workspace.governance / PLAN_FOLDER,
                        mesh_key=self.workspace.mesh_key(),
                        spec_stamp=files.stamp(),
                        domain_stamp=lambda name: files.domain_stamp(self.mesh_dir / name),
                    ),
                )
            return self._engine

    @pauses_collector
    def session(self, consumer: str, engine: str = "duckdb") -> ConsumerSession:
        """Run SQL as ``consumer``, under its policies and subscriptions, on ``engine``
        ("duckdb", or "spark" with the ``meshsim[spark]`` extra: the same verified plan);
        refused when the mesh binds ``consumer`` to other OS users than the one running this
        process."""
        self._current_spec(scans=True, query=True)  # a binding added to any file since
        return ConsumerSession(self, self.engine.session(consumer, engine))

    def warm_up(self, consumers: Sequence[str] = ()) -> None:
        """Open the query engine and load every table's current snapshot now rather than on
        the first query (a notebook's "connect" step; the benchmark's untimed preparation);
        for each of ``consumers``, also compile and check the governed scans of the tables it
        may read (:meth:`GovernedEngine.warm`)."""
        engine = self.engine
        engine.connection  # noqa: B018 - opening it is the point
        for table in self.spec.tables():
            engine.planner.snapshot(table.ref)
        for consumer in consumers:
            self.session(consumer)  # refused as for a query: unknown, or another OS user
            # with the policies a query reads (a query's block has its own view of them):
            # scans compiled with any other would be compiled again by the first query
            with self._one_command(query=True):
                engine.warm(consumer)

    def sql(self, consumer: str, text: str, params: Any = None) -> Result:
        with self._one_command(query=True):  # the session's spec is the query's (one look)
            return self.session(consumer).sql(text, params)

    def explain(self, consumer: str, text: str) -> Explanation:
        with self._one_command(query=True):
            return self.session(consumer).explain(text)

    def audit(
        self,
        *,
        as_consumer: str | None = None,
        consumer: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Audit records, newest first (``limit`` after the newest ``offset``), as
        ``as_consumer`` may see them: its own (the queries it
        ran, the decisions on its requests). The whole log, or ``consumer``'s records, only if
        it may read the audit table with SQL (a governance admin)."""
        from meshsim.errors import CatalogError
        from meshsim.identity import authenticate
        from meshsim.policy.access import require_consumer
        from meshsim.system import AUDIT_TABLE

        spec = self.identity_spec

        def readers() -> str:
            names = [c for c in spec.consumer_names() if self.table_access(c, AUDIT_TABLE).granted]
            return ", ".join(names) or "none in this mesh"

        if as_consumer is None:
            raise CatalogError(
                "the audit log holds every consumer's queries and decisions: say who is asking",
                hint=f"meshsim audit --as CONSUMER (its own records); the whole log needs a "
                f"governance admin ({readers()})",
            )
        require_consumer(spec, as_consumer)
        authenticate(spec, as_consumer)
        if consumer is not None:
            require_consumer(spec, consumer)
        if not self.table_access(as_consumer, AUDIT_TABLE).granted:
            if consumer not in (None, as_consumer):
                raise CatalogError(
                    f"consumer '{as_consumer}' may read only its own audit records, not those "
                    f"of '{consumer}'; the whole log needs a governance admin ({readers()})",
                    hint=f"meshsim audit --as {as_consumer}",
                )
            consumer = as_consumer
        return self.catalog.audit(limit=limit, consumer=consumer, offset=offset)


class _CatalogAudit:
    """The query engine's audit sink, writing into the catalog's transactional store."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def append(self, record: Any) -> None:
        from meshsim.errors import CatalogError

        try:
            self.catalog.append_audit(record)
        except CatalogError as exc:
            raise CatalogError(
                f"the query was refused because its audit record cannot be written: {exc.message}",
                hint=exc.hint,
            ) from exc


class ConsumerSession:
    """A consumer's governed session; a refusal says why when the catalog knows (a revoked,
    expired, rejected or pending request) and what to do next."""

    def __init__(self, mesh: Mesh, session: Session) -> None:
        self.mesh = mesh
        self.consumer = session.consumer
        self.runs_on = session.runs_on

    @property
    def _session(self) -> Session:
        # the engine of now: a spec edit replaces it (classifications, attributes), and a
        # session held from before must not keep querying through the old one
        return self.mesh.engine.session(self.consumer, self.runs_on)

    def __repr__(self) -> str:
        return f"<meshsim session as {self.consumer}>"

    def sql(self, text: str, params: Any = None) -> Result:
        """``params`` binds ``?`` / ``$1`` (a list) or ``$name`` (a dict), as in DuckDB."""
        # one look at the spec files per query: the engine, the policies and the serving gate
        # (per table) each ask for the spec, a stat of every spec file each time
        with self.mesh._one_command(query=True):
            return self._enrich(self._session.sql, text, params)

    def explain(self, text: str, params: Any = None) -> Explanation:
        with self.mesh._one_command(query=True):
            return self._enrich(self._session.explain, text, params)

    def _enrich(self, call: Any, text: str, params: Any = None) -> Any:
        from meshsim.errors import AccessDenied
        from meshsim.system import AUDIT_TABLE

        try:
            return call(text, params)
        except AccessDenied as exc:
            if exc.table == AUDIT_TABLE:
                raise AccessDenied(
                    f"consumer '{self.consumer}' may not read the audit log '{AUDIT_TABLE}': only "
                    f"governance admins (admin: true in mesh.yaml) may",
                    consumer=exc.consumer,
                    table=exc.table,
                    hint="a governance admin can query it; list your own records with "
                    "'meshsim audit --as CONSUMER'",
                ) from None
            why = exc.table and self.mesh.catalog.explain_refusal(self.consumer, exc.table)
            if not why:
                raise
            raise AccessDenied(
                f"{exc.message}; {why}",
                consumer=exc.consumer,
                table=exc.table,
                column=exc.column,
                policy=exc.policy,
                hint=exc.hint,
            ) from None
