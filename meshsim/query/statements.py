"""Rule statement: DuckDB's inspection statements, answered from the consumer's own view.

Each one becomes an ordinary governed query, so every later rule (validate, resolve,
authorise, bind, verify-plan) applies to it exactly as to a SELECT:

* ``DESCRIBE <table or query>`` / ``SUMMARIZE <table or query>``: the governed query
  (``SELECT * FROM <table>`` for a table), which DuckDB then describes or summarises: visible
  columns only, masked columns with their masked values and types, row-filtered rows;
* ``SHOW TABLES`` / ``SHOW ALL TABLES`` and ``information_schema.tables`` /
  ``information_schema.columns``: a ``VALUES`` relation of the tables and columns the
  consumer may read, from the same access function that authorises its queries;
* ``EXPLAIN <query>``: the query is planned (not run) and the answer is meshsim's
  explanation of it, as rows (:func:`meshsim.query.result.explain_rows`).

The statement to wrap around the verified SQL is the attempt's ``wrapper``; the wrapper is
meshsim's constant text, never the consumer's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeGuard

from sqlglot import exp

from meshsim.errors import QueryError

if TYPE_CHECKING:
    from meshsim.policy.access import TableAccess
    from meshsim.query.pipeline import Attempt
    from meshsim.query.session import GovernedEngine
    from meshsim.query.validate import QueryBounds
    from meshsim.spec.loader import MeshSpec

#: Statements that wrap a governed query; DuckDB computes them over the verified SQL.
WRAPPERS = ("DESCRIBE", "SUMMARIZE")
EXPLAIN = "EXPLAIN"
CATALOG = "meshsim"
INFORMATION_SCHEMA = "information_schema"

SUPPORTED = (
    "SELECT, WITH, VALUES, set operations, FROM-first queries, PIVOT/UNPIVOT clauses, "
    "DESCRIBE, SUMMARIZE, SHOW TABLES, SHOW ALL TABLES, EXPLAIN"
)


@dataclass(frozen=True)
class VisibleColumn:
    name: str
    type: str  # DuckDB's name of the type the consumer reads (a masked column's mask type)


@dataclass(frozen=True)
class VisibleTable:
    domain: str
    name: str
    columns: tuple[VisibleColumn, ...]

    @property
    def ref(self) -> str:
        return f"{self.domain}.{self.name}"


def visible_tables(
    spec: MeshSpec, access: Callable[[str], TableAccess], type_name: Callable[[str], str]
) -> list[VisibleTable]:
    """The tables the consumer may read, each with its visible columns in scan order: the
    same ``access`` that authorises its queries, so the listing and the queries agree."""
    from meshsim.spec.types import to_arrow
    from meshsim.storage.scan import arrow_to_sql_type

    tables = []
    for table in sorted(spec.tables(), key=lambda t: t.ref):
        table_access = access(table.ref)
        if not table_access.granted:
            continue
        declared = {c.name: c.type for c in table.columns}
        columns = tuple(
            VisibleColumn(
                name,
                type_name(arrow_to_sql_type(to_arrow(declared[name])).sql(dialect="duckdb")),
            )
            for name in table_access.visible_columns
            if name in declared
        )
        tables.append(VisibleTable(table.domain, table.name, columns))
    return tables


def inspect(engine: GovernedEngine, attempt: Attempt) -> None:
    """Rule statement: turn an inspection statement into the governed query that answers it,
    and substitute the consumer's ``information_schema`` for the catalog's."""
    statement = attempt.statement
    assert statement is not None
    listing = _Listing(engine, attempt)
    # parse unwrapped EXPLAIN (its wrapper is set); positions refer to the text parsed last
    wrapper, source = attempt.wrapper, attempt.source_text or attempt.parsed_text or attempt.text
    query_text = source
    if isinstance(statement, exp.Describe | exp.Summarize):
        kind = "DESCRIBE" if isinstance(statement, exp.Describe) else "SUMMARIZE"
        if isinstance(statement, exp.Describe) and any(
            statement.args.get(k) for k in ("style", "expressions", "partition", "format")
        ):
            raise _unsupported(f"this form of {kind}", attempt.consumer)
        statement = _describable(statement.this, kind, attempt.consumer)
        wrapper, query_text = wrapper or kind, _after_keyword(source)
    elif isinstance(statement, exp.Show):
        statement = _show(str(statement.this).upper(), statement, listing, attempt.consumer)
    attempt.statement = _substitute_information_schema(statement, listing)
    attempt.wrapper = wrapper
    attempt.source_text, attempt.query_text = source, query_text


def _after_keyword(text: str) -> str:
    """The query after a leading DESCRIBE / SUMMARIZE keyword."""
    from sqlglot.dialects.duckdb import DuckDB

    tokens = DuckDB().tokenize(text)
    return text[tokens[1].start :] if len(tokens) > 1 else text


def is_explain(statement: exp.Expr) -> TypeGuard[exp.Command]:
    return isinstance(statement, exp.Command) and str(statement.this).upper() == EXPLAIN


def explained_query(inner: str, consumer: str | None, bounds: QueryBounds) -> exp.Expr:
    """The statement EXPLAIN explains, parsed within the same bounds as any query."""
    from meshsim.query.validate import parse_statement

    if inner.lstrip().upper().startswith(("ANALYZE", "ANALYSE", "(")):
        raise _unsupported("EXPLAIN ANALYZE (or an EXPLAIN option)", consumer)
    if not inner.strip():
        raise incomplete(EXPLAIN, "a query", consumer)
    statement = parse_statement(inner, consumer=consumer, bounds=bounds)
    if is_explain(statement):
        raise _unsupported("EXPLAIN EXPLAIN", consumer)
    return statement


def _describable(target: exp.Expr, wrapper: str, consumer: str) -> exp.Expr:
    if isinstance(target, exp.Table):
        return exp.select(exp.Star()).from_(target)
    if isinstance(target, exp.Query | exp.Values):
        return target
    if isinstance(target, exp.Schema):  # sqlglot's reading of DESCRIBE f(x)
        raise QueryError(
            f"{wrapper} of a table function or column list ({target.this.name}(...)) is not "
            f"supported by meshsim; {wrapper} a mesh table or a query",
            consumer=consumer,
            hint=f"{wrapper} domain.table, or {wrapper} SELECT ...",
        )
    raise _unsupported(f"{wrapper} of {target.key.upper()}", consumer)


def _show(what: str, node: exp.Show, listing: _Listing, consumer: str) -> exp.Expr:
    if any(v for k, v in node.args.items() if k != "this"):
        raise _unsupported(f"this form of SHOW {what}", consumer)
    tables = listing.tables()
    if what == "TABLES":
        rows = [(t.ref,) for t in tables]
        return _relation(rows, [("name", "VARCHAR")]).order_by("name")
    if what == "ALL TABLES":
        all_rows = [
            (
                CATALOG,
                t.domain,
                t.name,
                [c.name for c in t.columns],
                [c.type for c in t.columns],
                False,
            )
            for t in tables
        ]
        columns = [
            ("database", "VARCHAR"),
            ("schema", "VARCHAR"),
            ("name", "VARCHAR"),
            ("column_names", "VARCHAR[]"),
            ("column_types", "VARCHAR[]"),
            ("temporary", "BOOLEAN"),
        ]
        return _relation(all_rows, columns).order_by("schema", "name")
    raise _unsupported(f"SHOW {what}", consumer)


def _relation(rows: list[tuple], columns: list[tuple[str, str]]) -> exp.Select:
    """``SELECT * FROM (VALUES ...) AS meshsim_listing(columns)``, typed; a relation with no
    rows is one row of typed NULLs filtered out."""
    names = [name for name, _ in columns]

    def row(values: tuple) -> exp.Tuple:
        return exp.Tuple(
            expressions=[
                exp.cast(exp.convert(value), exp.DataType.build(kind, dialect="duckdb"))
                for value, (_, kind) in zip(values, columns, strict=True)
            ]
        )

    source = rows or [tuple(None for _ in columns)]
    values = exp.values([row(values) for values in source], "meshsim_listing", names)
    select = exp.select(*(exp.column(n, quoted=True) for n in names)).from_(values)
    return select.where(exp.false()) if not rows else select


class _Listing:
    """The consumer's visible tables, computed once per attempt and only when asked for."""

    def __init__(self, engine: GovernedEngine, attempt: Attempt) -> None:
        self.engine, self.attempt = engine, attempt
        self._tables: list[VisibleTable] | None = None

    def tables(self) -> list[VisibleTable]:
        if self._tables is None:
            from meshsim import engine as duck

            self.attempt.whole_view = True  # its plan is reused under the same policies only
            planner = self.engine.planner
            assert self.attempt.policies is not None
            access = planner.access_for(
                self.attempt.consumer, self.attempt.fingerprint, self.attempt.policies
            )
            self._tables = visible_tables(
                planner.spec, access, lambda t: duck.type_name(self.engine.connection, t)
            )
        return self._tables


_INFORMATION_COLUMNS = {
    "tables": [
        ("table_catalog", "VARCHAR"),
        ("table_schema", "VARCHAR"),
        ("table_name", "VARCHAR"),
        ("table_type", "VARCHAR"),
        ("is_insertable_into", "VARCHAR"),
    ],
    "columns": [
        ("table_catalog", "VARCHAR"),
        ("table_schema", "VARCHAR"),
        ("table_name", "VARCHAR"),
        ("column_name", "VARCHAR"),
        ("ordinal_position", "INTEGER"),
        ("column_default", "VARCHAR"),
        ("is_nullable", "VARCHAR"),
        ("data_type", "VARCHAR"),
    ],
    "schemata": [("catalog_name", "VARCHAR"), ("schema_name", "VARCHAR")],
}


def _information_rows(view: str, tables: list[VisibleTable]) -> list[tuple]:
    if view == "tables":
        return [(CATALOG, t.domain, t.name, "BASE TABLE", "NO") for t in tables]
    if view == "columns":
        return [
            (CATALOG, t.domain, t.name, c.name, position, None, "YES", c.type)
            for t in tables
            for position, c in enumerate(t.columns, start=1)
        ]
    return [(CATALOG, domain) for domain in sorted({t.domain for t in tables})]


def _substitute_information_schema(statement: exp.Expr, listing: _Listing) -> exp.Expr:
    """Each ``information_schema.<view>`` reference becomes the consumer's own listing."""
    for table in list(statement.find_all(exp.Table)):
        if table.db.lower() != INFORMATION_SCHEMA or table.catalog:
            continue
        view = table.name.lower()
        if view not in _INFORMATION_COLUMNS:
            views = ", ".join(f"information_schema.{v}" for v in _INFORMATION_COLUMNS)
            raise QueryError(
                f"information_schema.{table.name} is not supported by meshsim (supported: {views})",
                consumer=listing.attempt.consumer,
            )
        if table.args.get("when") is not None or table.args.get("sample") is not None:
            raise _unsupported(
                "time travel or sampling of information_schema", listing.attempt.consumer
            )
        relation = _relation(_information_rows(view, listing.tables()), _INFORMATION_COLUMNS[view])
        alias = table.alias or table.name
        table.replace(
            exp.Subquery(this=relation, alias=exp.TableAlias(this=exp.to_identifier(alias)))
        )
    return statement


def incomplete(keyword: str, needs: str, consumer: str | None) -> QueryError:
    """``DESCRIBE`` / ``SUMMARIZE`` / ``EXPLAIN`` with nothing after it."""
    example = f"{keyword} SELECT ..."
    if needs != "a query":
        example = f"{keyword} domain.table or {example}"
    return QueryError(f"{keyword} needs {needs}", consumer=consumer, hint=f"write {example}")


def _unsupported(what: str, consumer: str | None) -> QueryError:
    return QueryError(
        f"{what} is not supported by meshsim (supported: {SUPPORTED})", consumer=consumer
    )
