"""The governance pipeline, as ordered pure rules over the consumer's syntax tree:

1. :func:`meshsim.query.validate.parse_query` - one read-only, allowlisted query;
2. :func:`meshsim.query.names.resolve` - qualify every table and column by scope;
3. :func:`authorize` - deny by default: every table needs a grant, every column it names
   (anywhere in the query) must be visible;
4. :func:`bind` - replace every mesh table reference by its governed scan over storage,
   pinned to one version per (table, time travel) per query.

No rule mutates the caller's tree; :class:`Planner` caches compiled scans keyed by consumer,
policy fingerprint and table versions (never by SQL text).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlglot import exp

from meshsim.errors import AccessDenied, QueryError
from meshsim.policy.access import TableAccess, require_consumer, resolve_access
from meshsim.query.filters import compile_filter
from meshsim.query.names import Resolved, TableUse, resolve
from meshsim.query.scans import GovernedScan, governed_select, raw_scan
from meshsim.query.validate import check_syntax
from meshsim.spec.loader import MeshSpec
from meshsim.spec.models import Policies, RowFilter

if TYPE_CHECKING:
    from meshsim.storage.snapshot import Snapshot


SCAN_MARK = "__meshsim_scan_"


@dataclass(frozen=True)
class TablePlan:
    """What one query reads of one table version, and the policies that applied."""

    ref: str
    version: int
    access: TableAccess
    columns: tuple[str, ...]

    def describe(self) -> dict[str, object]:
        return {
            "table": self.ref,
            "version": self.version,
            "grants": list(self.access.grants),
            "columns": {c.column: {"state": c.state, "rule": c.rule} for c in self.access.columns},
            "row_filters": [f.name for f in self.access.row_filters],
        }

    @property
    def policies(self) -> list[str]:
        names = [f"grant:{g}" for g in self.access.grants]
        names += [f"mask:{c.mask.name}({c.column})" for c in self.access.columns
                  if c.state == "masked" and c.mask is not None]
        names += [f"row_filter:{f.name}" for f in self.access.row_filters]
        return names


@dataclass
class Plan:
    sql: str
    tree: exp.Query
    tables: list[TablePlan]
    files: frozenset[str]
    ctes: frozenset[str]
    lookups: dict[str, int] = field(default_factory=dict)


def product_of(spec: MeshSpec, ref: str) -> str:
    table = spec.table(ref)
    return f"{table.domain}.{table.product}" if table else ref


def authorize(
    resolved: Resolved, spec: MeshSpec, consumer: str, access: Callable[[str], TableAccess]
) -> None:
    """Refuse a table without a grant and any ungranted column named anywhere."""
    for use in resolved.uses:
        table_access = access(use.ref)
        product = product_of(spec, use.ref)
        hint = f"meshsim request --as {consumer} {product}"
        if not table_access.granted:
            raise AccessDenied(
                f"consumer '{consumer}' has no grant on table '{use.ref}' (product "
                f"'{product}')",
                consumer=consumer, table=use.ref, hint=hint)
        for name in sorted(use.columns or ()):
            column = table_access.column(name)
            if column is None or not column.visible:
                raise AccessDenied(
                    f"consumer '{consumer}' may not read column '{name}' of '{use.ref}': no "
                    f"grant covers it (a grant on product '{product}' including column "
                    f"'{use.ref}.{name}' is needed)",
                    consumer=consumer, table=use.ref, column=name, hint=hint)


@lru_cache(maxsize=1024)
def _lookup_refs(predicate: str) -> frozenset[str]:
    import sqlglot

    try:
        tree = sqlglot.parse_one(predicate, read="duckdb")
    except Exception:  # noqa: BLE001 - compile_filter reports the error
        return frozenset()
    return frozenset(f"{t.db}.{t.name}".lower() for t in tree.find_all(exp.Table) if t.db)


def policies_fingerprint(policies: Policies) -> str:
    return hashlib.sha256(policies.model_dump_json().encode()).hexdigest()[:16]


class Planner:
    """Plans governed queries for one mesh; thread-safe caches of snapshots and scans."""

    def __init__(
        self,
        spec: MeshSpec,
        *,
        locate: Callable[[str], str],
        mesh_key: bytes,
        policies: Callable[[], Policies] | None = None,
        max_scans: int = 512,
    ) -> None:
        from meshsim.storage.snapshot import SnapshotCache

        self.spec = spec
        self.locate = locate
        self.mesh_key = bytes(mesh_key)
        self._policies = policies or (lambda: spec.policies)
        self.snapshots = SnapshotCache()
        self._scans: OrderedDict[tuple, GovernedScan] = OrderedDict()
        self._max_scans = max_scans
        self._lock = threading.Lock()
        self._fingerprints: dict[int, tuple[Policies, str]] = {}
        self._nonce = secrets.token_hex(4)
        self._schemas: dict[tuple[str, str], dict] = {}

    # -- inputs -------------------------------------------------------------------------------

    def current_policies(self) -> tuple[Policies, str]:
        policies = self._policies()
        cached = self._fingerprints.get(id(policies))
        if cached is None or cached[0] is not policies:
            cached = (policies, policies_fingerprint(policies))
            with self._lock:
                if len(self._fingerprints) > 64:
                    self._fingerprints.clear()
                self._fingerprints[id(policies)] = cached
        return cached[0], cached[1]

    def snapshot(self, ref: str, version: int | None = None,
                 timestamp: datetime | None = None) -> Snapshot:
        if timestamp is not None and timestamp.tzinfo is None:
            timestamp = timestamp.replace(tzinfo=UTC)
        return self.snapshots.get(self.locate(ref), table=ref, version=version,
                                  timestamp=timestamp)

    # -- pipeline -----------------------------------------------------------------------------

    def plan(self, tree: exp.Query, consumer: str) -> Plan:
        """Rules 2-4 on a validated tree; raises AccessDenied / QueryError / PolicyError."""
        policies, fingerprint = self.current_policies()
        if any(SCAN_MARK in str(n.this).lower()
               for n in tree.find_all(exp.Identifier, exp.Literal)):
            raise QueryError(f"names starting with '{SCAN_MARK}' are reserved",
                             consumer=consumer)
        require_consumer(self.spec, consumer)
        accesses: dict[str, TableAccess] = {}

        def access(ref: str) -> TableAccess:
            if ref not in accesses:
                accesses[ref] = resolve_access(self.spec, consumer, ref, policies)
            return accesses[ref]

        visible = self._visible_schema(consumer, fingerprint, access)
        try:
            resolved = resolve(tree, self.spec, consumer=consumer, schema=visible)
        except QueryError as first:
            # Diagnose: does the query name a column the consumer may not see?
            try:
                diagnosis = resolve(tree, self.spec, consumer=consumer)
            except QueryError:
                raise first from None
            authorize(diagnosis, self.spec, consumer, access)
            raise first from None
        check_syntax(resolved.tree, consumer=consumer, what="the query")
        authorize(resolved, self.spec, consumer, access)
        return self.bind(resolved, consumer, access, fingerprint)

    def _visible_schema(self, consumer: str, fingerprint: str,
                        access: Callable[[str], TableAccess]) -> dict:
        """Per table, the consumer's visible columns (all columns of an ungranted table, so
        that it resolves and is then refused by name)."""
        key = (consumer, fingerprint)
        cached = self._schemas.get(key)
        if cached is None:
            cached = {}
            for table in self.spec.tables():
                table_access = access(table.ref)
                visible = set(table_access.visible_columns) if table_access.granted else None
                cached.setdefault(table.domain, {})[table.name] = {
                    c.name: c.type for c in table.columns if visible is None or c.name in visible
                }
            with self._lock:
                if len(self._schemas) > 256:
                    self._schemas.clear()
                self._schemas[key] = cached
        return cached

    def bind(self, resolved: Resolved, consumer: str, access: Callable[[str], TableAccess],
             fingerprint: str) -> Plan:
        out = resolved.tree  # already a private copy made by resolve()
        pinned: dict[tuple, Snapshot] = {}
        latest: dict[str, Snapshot] = {}
        files: set[str] = set()
        splices: dict[str, str] = {}
        lookups: dict[str, int] = {}
        tables: dict[tuple[str, int], TablePlan] = {}
        attributes = dict(require_consumer(self.spec, consumer).attributes)

        def latest_snapshot(ref: str) -> Snapshot:
            if ref not in latest:
                latest[ref] = self.snapshot(ref)
            return latest[ref]

        for use in resolved.uses:
            if use.pin not in pinned:
                pinned[use.pin] = (self.snapshot(use.ref, use.version, use.timestamp)
                                   if use.version is not None or use.timestamp is not None
                                   else latest_snapshot(use.ref))
            snapshot = pinned[use.pin]
            table_access = access(use.ref)
            scan = self._governed_scan(consumer, fingerprint, table_access, snapshot, attributes,
                                       latest_snapshot)
            files |= scan.files
            lookups.update(dict(scan.lookups))
            key = (use.ref, snapshot.version)
            previous = tables.get(key)
            columns = set(previous.columns) if previous else set()
            columns |= use.columns or set()
            tables[key] = TablePlan(use.ref, snapshot.version, table_access,
                                    tuple(sorted(columns)))
            placeholder = f"{SCAN_MARK}{self._nonce}_{len(splices)}"
            splices[placeholder] = scan.sql
            use.node.replace(exp.Table(
                this=exp.to_identifier(placeholder, quoted=True),
                alias=exp.TableAlias(this=exp.to_identifier(use.alias, quoted=True))))
        ctes = frozenset(cte.alias_or_name for cte in out.find_all(exp.CTE))
        # Generating each cached scan again per query costs more than the whole rest of
        # planning, so scans are generated once and spliced in place of a placeholder table
        # name. Consumer text may not contain the marker (checked in plan()), and the final
        # SQL is re-parsed by DuckDB in crosscheck.
        sql = out.sql(dialect="duckdb")
        for placeholder, text in splices.items():
            token = f'"{placeholder}"'
            if sql.count(token) != 1:
                raise QueryError("internal error binding a governed scan; nothing was run",
                                 consumer=consumer)
            sql = sql.replace(token, f"({text})")
        return Plan(sql, out, list(tables.values()), frozenset(files), ctes, lookups)

    def _governed_scan(self, consumer: str, fingerprint: str, table_access: TableAccess,
                       snapshot: Snapshot, attributes: dict[str, str],
                       latest_snapshot: Callable[[str], Snapshot]) -> GovernedScan:
        filters: tuple[RowFilter, ...] = table_access.row_filters
        lookup_refs = sorted({r for f in filters for r in _lookup_refs(f.predicate)})
        lookup_pins = tuple((r, latest_snapshot(r).version) for r in lookup_refs
                            if self.spec.table(r) is not None)
        key = (consumer, fingerprint, table_access.table, snapshot.location, snapshot.version,
               lookup_pins)
        with self._lock:
            cached = self._scans.get(key)
            if cached is not None:
                self._scans.move_to_end(key)
                return cached
        lookup_files: set[str] = set()

        def lookup(ref: str) -> exp.Select:
            snap = latest_snapshot(ref)
            lookup_files.update(f.path for f in snap.files)
            return raw_scan(snap)

        compiled = [compile_filter(f, self.spec, attributes, lookup) for f in filters]
        select = governed_select(table_access, snapshot, compiled, key=self.mesh_key,
                                 attributes=attributes)
        scan = GovernedScan(select, select.sql(dialect="duckdb"), frozenset({f.path for f in snapshot.files} | lookup_files),
                            lookup_pins)
        with self._lock:
            self._scans[key] = scan
            while len(self._scans) > self._max_scans:
                self._scans.popitem(last=False)
        return scan

    def clear(self) -> None:
        with self._lock:
            self._scans.clear()
        self.snapshots.clear()

