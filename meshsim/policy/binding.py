"""Bind every policy's SQL against the declared schemas, on DuckDB, before any data exists.

A row filter or mask that parses can still fail at the first query: it names a column of a
lookup table that does not exist, or it does not type-check (``c_name + 1 > 0``), or a built-in
mask does not fit its column's type. Each policy is compiled exactly as the query engine
compiles it (:func:`meshsim.query.filters.compile_filter`,
:func:`meshsim.query.masks.mask_expression`), for every consumer it applies to, and run on
empty tables of the declared schema (:func:`meshsim.engine.bind_errors`): what fails here
would fail every query that uses it.
"""

from __future__ import annotations

from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot.errors import SqlglotError

from meshsim.errors import MeshsimError, PolicyError
from meshsim.spec.lint import Problem
from meshsim.spec.loader import MeshSpec, line_of
from meshsim.spec.models import Consumer, RowFilter

if TYPE_CHECKING:
    from sqlglot import exp

#: stands for the per-mesh key in keyed_hash masks: binding needs a key, not the key
_ANY_KEY = bytes(32)


@dataclass(frozen=True)
class _Check:
    label: str  # "row filter 'regional_orders'", as lint names policies
    where: str
    what: str  # "predicate does not run on ... (as eu_marketing_analyst)"
    sql: str


def _table(ref: str) -> exp.Table:
    from sqlglot import exp

    domain, name = ref.split(".")
    return exp.table_(name, db=domain, quoted=True)


def _empty_tables(spec: MeshSpec, refs: Container[str] | None = None) -> list[str]:
    """DDL for one empty table per mesh table (of those in ``refs``, all by default) with its
    declared columns and types."""
    from sqlglot import exp

    from meshsim.spec.types import to_arrow
    from meshsim.storage.scan import arrow_to_sql_type

    tables = [t for t in spec.tables() if refs is None or t.ref in refs]
    statements = []
    for domain in sorted({t.domain for t in tables}):
        schema = exp.Table(this=exp.to_identifier(domain, quoted=True))
        statements.append(exp.Create(kind="SCHEMA", this=schema, exists=True))
    for table in tables:
        if not table.columns:
            continue
        columns = [
            exp.ColumnDef(
                this=exp.to_identifier(c.name, quoted=True),
                kind=arrow_to_sql_type(to_arrow(c.type)),
            )
            for c in table.columns
        ]
        statements.append(
            exp.Create(kind="TABLE", this=exp.Schema(this=_table(table.ref), expressions=columns))
        )
    return [s.sql(dialect="duckdb") for s in statements]


def _empty_scan(ref: str) -> exp.Select:
    from sqlglot import exp

    return exp.select(exp.Star()).from_(_table(ref))


def _raw(ref: str) -> exp.Expr:
    from sqlglot import exp

    from meshsim.query.filters import RAW_ALIAS

    return exp.alias_(_table(ref), RAW_ALIAS, table=True, quoted=True)


def _filter_sql(spec: MeshSpec, row_filter: RowFilter, attributes: Mapping[str, str]) -> str:
    """The compiled predicate over an empty copy of its table; PolicyError if it does not
    compile."""
    from sqlglot import exp

    from meshsim.query.filters import compile_filter

    predicate = compile_filter(row_filter, spec, attributes, _empty_scan)
    query = exp.select(exp.Literal.number(1)).from_(_raw(row_filter.table)).where(predicate)
    return query.sql(dialect="duckdb")


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else message


def _applies_to(spec: MeshSpec, policy: RowFilter) -> list[Consumer | None]:
    from meshsim.policy.access import selects

    chosen = [c for c in spec.mesh.consumers if selects(policy, c)]
    return list(chosen) or [None]  # no consumer yet: bind with no attributes


def _as(consumer: Consumer | None) -> str:
    return f"as {consumer.name}" if consumer else "with no consumer attributes"


def _reads(row_filter: RowFilter) -> set[str]:
    """The filter's table and the mesh tables its predicate looks up."""
    from sqlglot import exp

    from meshsim.errors import PolicyError
    from meshsim.policy.fragments import parse_fragment

    refs = {row_filter.table}
    try:
        tree = parse_fragment(row_filter.predicate, what="row filter")
        refs |= {f"{t.db}.{t.name}".lower() for t in tree.find_all(exp.Table) if t.db}
    except PolicyError:  # reported by the lint
        pass
    return refs


def _reads_unknown_columns(spec: MeshSpec, row_filter: RowFilter) -> bool:
    """Whether the filter's table, or a table its predicate reads, has no columns (a
    registered table whose Delta schema could not be read, reported as such): it cannot be
    bound, and saying so would only repeat that error as a spurious one."""
    tables = [spec.table(ref) for ref in _reads(row_filter)]
    return any(t is not None and not t.columns for t in tables)


def _row_filter_checks(
    spec: MeshSpec, skip: Container[str], problems: list[Problem]
) -> Iterator[_Check]:
    mesh_file = spec.root / "mesh.yaml"
    for index, row_filter in enumerate(spec.policies.row_filters):
        label = f"row filter '{row_filter.name}'"
        if (
            label in skip
            or spec.table(row_filter.table) is None
            or _reads_unknown_columns(spec, row_filter)
        ):
            continue
        where = line_of(spec, mesh_file, ("policies", "row_filters", index, "predicate"))
        try:
            consumers = _applies_to(spec, row_filter)
            for consumer in consumers:
                sql = _filter_sql(spec, row_filter, consumer.attributes if consumer else {})
                what = (
                    f"predicate does not run on the declared columns of '{row_filter.table}' "
                    f"({_as(consumer)})"
                )
                yield _Check(label, where, what, sql)
        except (MeshsimError, SqlglotError) as exc:
            text = exc.message if isinstance(exc, MeshsimError) else str(exc)
            message = text if label in text else f"{label}: {text}"
            problems.append(Problem("error", where, message))


def _mask_checks(spec: MeshSpec, skip: Container[str], problems: list[Problem]) -> Iterator[_Check]:
    """One check per (mask, column, consumer) the access rules actually mask, as queries do."""
    from sqlglot import exp

    from meshsim.policy.access import readable_access
    from meshsim.query.filters import RAW_ALIAS
    from meshsim.query.masks import mask_expression
    from meshsim.spec.types import to_arrow
    from meshsim.storage.scan import arrow_to_sql_type

    mesh_file = spec.root / "mesh.yaml"
    index = {m.name: i for i, m in reversed(list(enumerate(spec.policies.masks)))}
    failed: set[tuple[str, str]] = set()
    bound: set[tuple[str, str]] = set()
    try:
        matrix = readable_access(spec)
    except MeshsimError:  # a broken 'when', reported by the lint
        return
    for access in matrix:
        consumer = spec.consumer(access.consumer)
        table = spec.table(access.table)
        assert consumer is not None and table is not None
        for cell in access.columns:
            mask = cell.mask
            column = table.column(cell.column)
            if cell.state != "masked" or mask is None or column is None:
                continue
            label = f"mask '{mask.name}'"
            ref = f"{table.ref}.{column.name}"
            if label in skip or (mask.name, ref) in failed:
                continue
            # only a custom mask reads consumer attributes: the others bind alike for all
            if mask.function != "custom":
                if (mask.name, ref) in bound:
                    continue
                bound.add((mask.name, ref))
            key = "expression" if mask.function == "custom" else "function"
            where = line_of(spec, mesh_file, ("policies", "masks", index[mask.name], key))
            raw = exp.column(column.name, table=RAW_ALIAS, quoted=True)
            try:
                value = mask_expression(
                    mask,
                    raw,
                    arrow_to_sql_type(to_arrow(column.type)),
                    key=_ANY_KEY,
                    column_ref=ref,
                    attributes=consumer.attributes,
                )
            except MeshsimError as exc:
                failed.add((mask.name, ref))
                message = exc.message if label in exc.message else f"{label}: {exc.message}"
                problems.append(Problem("error", where, message))
                continue
            query = exp.select(exp.alias_(value, column.name, quoted=True)).from_(_raw(table.ref))
            noun = "expression" if mask.function == "custom" else mask.function
            what = f"{noun} does not run on column '{ref}' {column.type} (as {consumer.name})"
            yield _Check(label, where, what, query.sql(dialect="duckdb"))


def check_policy_binding(spec: MeshSpec, skip: Container[str] = ()) -> list[Problem]:
    """Every row filter and mask of the spec that does not compile or does not run on empty
    tables of the declared schema, once per policy (and per column for masks). Policies
    named in ``skip`` (labels such as ``row filter 'x'``) already have a reported problem."""
    from meshsim.engine import bind_errors

    problems: list[Problem] = []
    checks: list[_Check] = []
    seen: set[tuple[str, str]] = set()  # the same SQL of one policy binds the same way
    for check in [*_row_filter_checks(spec, skip, problems), *_mask_checks(spec, skip, problems)]:
        if (check.label, check.sql) not in seen:
            seen.add((check.label, check.sql))
            checks.append(check)
    if not checks:
        return problems
    reported: set[tuple[str, str]] = set()
    for check, error in zip(
        checks, bind_errors(_empty_tables(spec), [c.sql for c in checks]), strict=True
    ):
        subject = (check.label, check.what.split(" (as ")[0])
        if error is None or subject in reported:
            continue
        reported.add(subject)
        problems.append(
            Problem("error", check.where, f"{check.label}: {check.what}: {_first_line(error)}")
        )
    return problems


def check_row_filter(spec: MeshSpec, row_filter: RowFilter, attributes: Mapping[str, str]) -> None:
    """Raise PolicyError unless ``row_filter`` compiles and runs on an empty copy of its
    table (for row filters set outside the spec, e.g. when a request is approved)."""
    from meshsim.engine import bind_errors

    sql = _filter_sql(spec, row_filter, attributes)
    [error] = bind_errors(_empty_tables(spec, _reads(row_filter)), [sql])
    if error is not None:
        raise PolicyError(
            f"row filter '{row_filter.predicate}' does not run on the columns of "
            f"'{row_filter.table}': {_first_line(error)}",
            hint="write a boolean expression over the table's columns, with matching types",
        )
