"""Derived products: tables defined by a query over other mesh tables (``source: {sql: ...}``).

The owning domain builds a derived table *as a consumer*: the consumer of ``mesh.yaml`` named
after the domain (a domain ``marketing`` derives as the consumer ``marketing``). Its query
runs through governed SQL (:class:`meshsim.query.session.GovernedEngine`) under the policies
of ``mesh.yaml``, so the domain derives only from what it may read, with its masks and row
filters applied, and the result is materialised in the domain's own account. Catalog
subscriptions do not count at build: a build must not depend on a decision a later revoke
would undo without the derived data following.

A derived table is rebuilt when its query or declared schema changes or when any table it read
(``BuildStamp.inputs``: each input table and the version the last build read) is at another
version; otherwise it is left alone. Derived tables that read each other are built in
dependency order; a cycle is a validate error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meshsim.errors import MeshsimError, PolicyError, SpecError, unknown_name_message
from meshsim.query.audit import MemoryAuditSink
from meshsim.spec.loader import MeshSpec, TableSpec
from meshsim.spec.models import SqlSource
from meshsim.spec.types import can_hold, from_arrow, to_arrow

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class DerivedFinding:
    """A problem of one derived table (``column``: index of a declared column, or None)."""

    table: TableSpec
    message: str
    column: int | None = None


def owner_consumer(table: TableSpec) -> str:
    """The consumer a derived table is built as: the one named after its domain."""
    return table.domain


def referenced_tables(sql: str) -> list[str]:
    """The mesh tables (``domain.table``) a query names, sorted, each once.

    >>> referenced_tables("WITH x AS (SELECT * FROM sales.orders) SELECT * FROM x, a.b")
    ['a.b', 'sales.orders']
    """
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, dialect="duckdb")
    if not isinstance(tree, exp.Query):
        raise ValueError("it is not a query (one SELECT, with WITH, UNION... if needed)")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    found = set()
    for node in tree.find_all(exp.Table):
        if not node.db and node.name in ctes:
            continue
        found.add(f"{node.db}.{node.name}".lower() if node.db else node.name.lower())
    return sorted(found)


def derived_tables(spec: MeshSpec) -> list[TableSpec]:
    return [t for t in spec.tables() if isinstance(t.table.source, SqlSource)]


def derived_inputs(table: TableSpec) -> list[str]:
    """The tables a derived table's query names (none for another source, or a query that
    does not parse: :func:`check_derived` reports it)."""
    if not isinstance(table.table.source, SqlSource):
        return []
    try:
        return referenced_tables(table.table.source.sql)
    except Exception:  # noqa: BLE001 - sqlglot's errors and ours, reported by check_derived
        return []


def build_order(spec: MeshSpec) -> list[TableSpec]:
    """Every table, derived ones after the tables they read (raises SpecError on a cycle)."""
    tables = spec.tables()
    derived = {t.ref: t for t in derived_tables(spec)}
    ordered = [t for t in tables if t.ref not in derived]
    done: set[str] = set()

    def visit(ref: str, path: tuple[str, ...]) -> None:
        if ref in done:
            return
        if ref in path:
            cycle = " -> ".join((*path[path.index(ref) :], ref))
            raise SpecError([f"derived tables read each other in a cycle: {cycle}"])
        for dependency in derived_inputs(derived[ref]):
            if dependency in derived:
                visit(dependency, (*path, ref))
        done.add(ref)
        ordered.append(derived[ref])

    for ref in derived:
        visit(ref, ())
    return ordered


def check_derived(spec: MeshSpec) -> Iterator[DerivedFinding]:
    """Every problem of every derived table that the spec alone shows: a query that does not
    parse, unknown tables, no owner consumer, no grant on an input, no columns, a cycle."""
    from meshsim.policy.access import resolve_access

    refs = [t.ref for t in spec.tables()]
    for table in derived_tables(spec):
        assert isinstance(table.table.source, SqlSource)
        consumer = owner_consumer(table)
        try:
            inputs = referenced_tables(table.table.source.sql)
        except Exception as exc:  # noqa: BLE001 - sqlglot's errors, said in one line
            first = next((line for line in str(exc).splitlines() if line.strip()), "")
            yield DerivedFinding(
                table, f"derived table '{table.ref}': the query does not parse: {first}"
            )
            continue
        if not table.columns:
            yield DerivedFinding(
                table,
                f"derived table '{table.ref}' declares no columns; declare the columns its "
                f"query returns (with classifications: policies and the publish gate need them)",
            )
        if spec.consumer(consumer) is None:
            yield DerivedFinding(
                table,
                f"derived table '{table.ref}' is built by domain '{table.domain}' acting as the "
                f"consumer '{consumer}', which mesh.yaml does not define; add a consumer named "
                f"'{consumer}' and grant it the tables the query reads",
            )
            continue
        for ref in inputs:
            if "." not in ref or ref not in refs:
                yield DerivedFinding(
                    table,
                    f"derived table '{table.ref}': "
                    + unknown_name_message("table", ref, refs, "name tables as domain.table"),
                )
                continue
            if ref == table.ref:
                yield DerivedFinding(table, f"derived table '{table.ref}' reads itself")
                continue
            try:
                granted = resolve_access(spec, consumer, ref).granted
            except PolicyError:  # a policy that does not parse: the lint reports it, with its line
                continue
            if not granted:
                yield DerivedFinding(
                    table,
                    f"derived table '{table.ref}' reads '{ref}', but its domain's consumer "
                    f"'{consumer}' has no grant on it; add a grant of '{ref}' (or its product) "
                    f"to consumer '{consumer}' in mesh.yaml",
                )
    try:
        build_order(spec)
    except SpecError as exc:
        in_cycle = derived_tables(spec)[0]
        yield DerivedFinding(in_cycle, exc.problems[0])


def conform(table: TableSpec, data: pa.Table) -> pa.Table:
    """The query's result as the declared schema; every column that does not fit is named."""
    import pyarrow as pa

    problems = []
    for column in table.columns:
        if column.name not in data.column_names:
            problems.append(
                f"derived table '{table.ref}': declared column '{column.name}' is not in the "
                f"query's result (it returns: {', '.join(data.column_names)})"
            )
            continue
        try:
            actual = from_arrow(data.schema.field(column.name).type)
            holds = can_hold(column.type, actual)
        except ValueError:
            actual, holds = str(data.schema.field(column.name).type), False
        if not holds:
            problems.append(
                f"derived table '{table.ref}': column '{column.name}' is declared "
                f"{column.type}, which cannot hold the query's {actual} values; declare {actual}"
            )
        elif not column.nullable and data.column(column.name).null_count:
            problems.append(
                f"derived table '{table.ref}': column '{column.name}' is declared nullable: "
                f"false but the query returns NULLs in it"
            )
    extra = [n for n in data.column_names if table.column(n) is None]
    if extra:
        problems.append(
            f"derived table '{table.ref}': the query returns columns {', '.join(extra)} that "
            f"are not declared; declare them or leave them out of the SELECT"
        )
    if problems:
        raise SpecError(problems, hint="fix the query or the declared columns, then build again")
    schema = pa.schema(
        [pa.field(c.name, to_arrow(c.type), nullable=c.nullable) for c in table.columns]
    )
    return pa.Table.from_arrays(
        [data.column(c.name).cast(to_arrow(c.type)) for c in table.columns], schema=schema
    )


class Deriver:
    """Runs derived tables' queries during a build: one governed engine over the versions this
    build publishes (the ones it just wrote, not yet visible to consumers), policies of
    mesh.yaml."""

    def __init__(
        self,
        spec: MeshSpec,
        *,
        locate: Callable[[str], str],
        mesh_key: Callable[[], bytes],
        allowed_paths: list[str],
        versions: Callable[[str], int | None],
    ) -> None:
        self.spec = spec
        self.locate = locate
        #: ``ref -> version`` this build publishes for each table (None: the latest)
        self.versions = versions
        self.mesh_key = mesh_key
        self.allowed_paths = allowed_paths
        self._engine: Any = None
        #: the audit records of the derivations, for the catalog once the build published it
        #: (a first build runs before the catalog exists)
        self.audit = MemoryAuditSink()

    def _governed(self):
        from meshsim.engine import EngineLimits
        from meshsim.query.session import GovernedEngine

        if self._engine is None:
            self._engine = GovernedEngine(
                self.spec,
                locate=self.locate,
                mesh_key=self.mesh_key(),
                allowed_paths=self.allowed_paths,
                audit=self.audit,
                # a build is not an interactive query: its derivations grow with the scale
                # factor (the interactive 30 s stopped sf10's); Ctrl-C still interrupts it
                limits=EngineLimits(timeout_s=None),
                published=self.versions,
            )
        return self._engine

    def version_of(self, ref: str) -> int:
        """The version of ``ref`` a derivation reads now (-1: the table is not there)."""
        from meshsim.storage import delta

        version = self.versions(ref)
        if version is not None:
            return version
        location = self.locate(ref)
        return delta.latest_version(location) if delta.exists(location) else -1

    def derive(self, table: TableSpec) -> tuple[pa.Table, dict[str, int]]:
        """The conformed result of ``table``'s query and the versions of the tables it read;
        refused (AccessDenied naming the grant) when its domain may not read them."""
        source = table.table.source
        assert isinstance(source, SqlSource)
        consumer = owner_consumer(table)
        try:
            result = self._governed().session(consumer).sql(source.sql)
        except MeshsimError as exc:
            raise _prefixed(exc, table, consumer) from None
        inputs = {ref: version for ref, version in result.tables}
        return conform(table, result.arrow()), inputs

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None


def _prefixed(exc: MeshsimError, table: TableSpec, consumer: str) -> MeshsimError:
    """``exc`` with its message saying which derived table's build it stopped."""
    from meshsim.errors import AccessDenied

    exc.message = f"derived table '{table.ref}' (built as consumer '{consumer}'): {exc.message}"
    if isinstance(exc, AccessDenied):  # a request's approval does not count at build
        exc.hint = (
            f"grant it to consumer '{consumer}' in mesh.yaml, or change the query; catalog "
            f"subscriptions do not count when a build derives a table"
        )
    exc.args = (exc.message,)
    return exc
