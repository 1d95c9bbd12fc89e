"""Rule 1: resolve every table and column by scope.

Tables: a one-part name must be a CTE visible in its scope (a CTE named like a mesh table
shadows it, as in SQL); anything else must be a two-part ``domain.table`` of the mesh (case
and quoting do not matter). Catalog-qualified names, file paths and system tables are refused.

Columns: after sqlglot's ``qualify`` (full mesh schema, stars left alone) every column must be
qualified by a source of its scope or an enclosing one, or be an ORDER BY reference to an
output name. Whole-row references (``SELECT t FROM x t``), virtual columns (``rowid``,
``filename``) and column-alias lists on mesh tables are refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlglot import exp
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.qualify_columns import qualify_columns, quote_identifiers
from sqlglot.optimizer.qualify_tables import qualify_tables
from sqlglot.optimizer.scope import Scope, traverse_scope
from sqlglot.schema import ensure_schema

from meshsim.errors import QueryError, closest, unknown_name_message
from meshsim.query.travel import (
    ColumnsAt,
    Travel,
    not_at_version,
    restore_travelled,
    time_travel,
    travelled_schema,
)
from meshsim.query.trees import copy_tree, nodes_of
from meshsim.spec.loader import MeshSpec


@dataclass
class TableUse:
    """One reference to a mesh table in the qualified tree."""

    node: exp.Table
    ref: str
    alias: str
    version: int | None = None
    timestamp: datetime | None = None
    columns: set[str] | None = None  # columns named through this reference

    @property
    def pin(self) -> tuple[str, int | None, datetime | None]:
        return (self.ref, self.version, self.timestamp)


@dataclass
class Resolved:
    tree: exp.Query
    uses: list[TableUse]
    #: the qualified tree's scopes, for later rules that walk them (the tree keeps its shape
    #: until bind splices the scans in)
    scopes: list[Scope] = field(default_factory=list)


@lru_cache(maxsize=1024)
def sql_type(spec_type: str) -> str:
    """A spec type as DuckDB spells it, for sqlglot's schemas (which would misread the Delta
    notation: ``struct<`Field One`: int>``)."""
    from meshsim.spec.types import to_arrow
    from meshsim.storage.scan import arrow_to_sql_type

    return arrow_to_sql_type(to_arrow(spec_type)).sql(dialect="duckdb")


def mesh_schema(spec: MeshSpec, refs: Iterable[str] | None = None) -> dict[str, Any]:
    """The declared columns of every mesh table, or of the tables ``refs`` names (so that
    qualifying a predicate over one table costs the same in a mesh of 10 or 10,000)."""
    if refs is None and "mesh_schema" in spec.memo:
        return spec.memo["mesh_schema"]
    tables = spec.tables() if refs is None else [spec.table(ref) for ref in refs]
    schema: dict[str, Any] = {}
    for table in tables:
        if table is not None and table.columns:  # one with none (an unreadable registered
            schema.setdefault(table.domain, {})[table.name] = {  # table) is reported apart
                c.name: sql_type(c.type) for c in table.columns
            }
    if refs is None:
        spec.memo["mesh_schema"] = schema
    return schema


def _spellings(spec: MeshSpec, ref: str) -> dict[str, str]:
    """Each column's lower-case name to its name, in table ``ref``. sqlglot folds identifiers
    to lower case as DuckDB compares them (a table has no two names that differ only by
    case: the spec refuses them); meshsim's policies use the names as declared."""
    table = spec.table(ref)
    return {c.name.lower(): c.name for c in table.columns} if table is not None else {}


def _declared_spellings(spec: MeshSpec, tables: Iterable[exp.Table]) -> dict[str, str]:
    """Each lower-case column name spelled one way in the mesh tables ``tables`` name, to
    that spelling."""
    refs = sorted({f"{t.db}.{t.name}".lower() for t in tables if t.db})
    spelled: dict[str, set[str]] = {}
    for table in map(spec.table, refs):
        for column in table.columns if table is not None else ():
            spelled.setdefault(column.name.lower(), set()).add(column.name)
    return {low: next(iter(names)) for low, names in spelled.items() if len(names) == 1}


def restore_case(
    tree: exp.Expr, spec: MeshSpec, nodes: dict[type[exp.Expr], list[Any]] | None = None
) -> None:
    """Give every column, and every output alias qualify derived from one, its declared
    spelling, so results are named as the table names them (``ByteType``, not ``bytetype``).
    DuckDB compares identifiers case-insensitively, so nothing else changes. A name spelled
    differently in two tables gets its table's spelling where it names a mesh table's
    column (set by :func:`resolve`) and keeps sqlglot's lower case elsewhere. ``nodes``: the
    tree's tables, columns and aliases (:func:`meshsim.query.trees.nodes_of`), if known."""
    if nodes is None:
        nodes = nodes_of(tree, exp.Table, exp.Column, exp.Alias)
    declared = _declared_spellings(spec, nodes[exp.Table])
    for node in nodes[exp.Column]:
        if isinstance(node.this, exp.Identifier):
            name = declared.get(node.this.name.lower())
            if name is not None and name != node.this.name:
                node.set("this", exp.to_identifier(name, quoted=True))
    for node in nodes[exp.Alias]:
        if isinstance(node.this, exp.Column):
            name = node.this.name
            if node.alias != name and node.alias.lower() == name.lower():
                node.set("alias", exp.to_identifier(name, quoted=True))


def _check_tables(tree: exp.Query, spec: MeshSpec, consumer: str | None) -> None:
    """Refuse table names that are neither a CTE in scope nor a mesh table."""

    def refs() -> list[str]:  # for the message only: a lookup by name needs no list
        return sorted(t.ref for t in spec.tables())

    for scope in traverse_scope(tree):
        for _name, source in scope.sources.items():
            if not isinstance(source, exp.Table) or isinstance(source.this, exp.Func):
                continue
            if source.catalog:
                raise QueryError(
                    f"table '{source.sql(dialect='duckdb')}': use domain.table names only "
                    f"(no catalog)",
                    consumer=consumer,
                )
            if not source.db:
                raise QueryError(
                    unknown_name_message(
                        "table",
                        source.name,
                        refs(),
                        hint="name mesh tables as domain.table; 'meshsim tables' lists them",
                    ),
                    consumer=consumer,
                )
            ref = f"{source.db}.{source.name}"
            if spec.table(ref) is None:
                raise QueryError(
                    unknown_name_message("table", ref, refs(), hint="'meshsim tables' lists them"),
                    consumer=consumer,
                )


def _enclosing(scope: Scope, name: str) -> exp.Expr | Scope | None:
    current: Scope | None = scope
    while current is not None:
        if name in current.sources:
            return current.sources[name]
        current = current.parent
    return None


def _pivoted(scope: Scope, alias: str) -> exp.Expr | None:
    """The source (table or subquery) whose PIVOT/UNPIVOT is named ``alias``."""
    current: Scope | None = scope
    while current is not None:
        for source in current.sources.values():
            node = source.expression.parent if isinstance(source, Scope) else source
            if isinstance(node, exp.Expr):
                for pivot in node.args.get("pivots") or ():
                    if pivot.alias == alias:
                        return node
        current = current.parent
    return None


def _is_table_column(source: exp.Expr, column: exp.Column, spec: MeshSpec) -> bool:
    """Whether ``column`` (read from a pivoted ``source``) is a column of the mesh table
    itself (passed through the pivot), not one the pivot made."""
    if not isinstance(source, exp.Table) or not source.db:
        return False
    table = spec.table(f"{source.db}.{source.name}")
    return table is not None and column.name in {c.name for c in table.columns}


def _is_output_ref(column: exp.Column) -> bool:
    """An unqualified ORDER BY name that refers to its query's output columns."""
    if column.table:
        return False
    node: exp.Expr | None = column.parent
    while node is not None:
        if isinstance(node, (exp.Window, exp.Query)):
            return False
        if isinstance(node, exp.Order):
            query = node.parent
            return isinstance(query, exp.Query) and column.name in query.named_selects
        node = node.parent
    return False


def _name_series_columns(tree: exp.Expr) -> None:
    """``range(...)`` / ``generate_series(...)`` in FROM have one column, which DuckDB names
    after the function, or after the alias when it has one; sqlglot's qualify does not know
    it, so ``*`` over one could not be expanded. Write that name as the column alias."""
    for table in tree.find_all(exp.Table):
        series = table.this
        if not isinstance(series, exp.GenerateSeries):
            continue
        alias = table.args.get("alias")
        if (alias is not None and alias.columns) or not _has_star(table.parent_select):
            continue  # DuckDB also binds a.range when aliased a: name it only for a *
        name = "range" if series.args.get("is_end_exclusive") else "generate_series"
        relation = alias.this if alias is not None and alias.this else exp.to_identifier(name)
        column = exp.to_identifier(relation.name, quoted=True)  # DuckDB: named as aliased
        table.set("alias", exp.TableAlias(this=relation.copy(), columns=[column]))


def _has_star(select: exp.Select | None) -> bool:
    return select is not None and any(
        isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star))
        for p in select.expressions
    )


def _check_laterals(laterals: Iterable[exp.Lateral], consumer: str | None) -> None:
    """A LATERAL's alias is not visible inside its own subquery, but sqlglot qualifies an
    unqualified column there with it when the subquery outputs that name (``LATERAL (SELECT
    c_acctbal) AS t`` becomes ``t.c_acctbal``), while DuckDB binds it to an outer relation: refuse
    the ambiguity instead of guessing which one is meant."""
    for lateral in laterals:
        alias = lateral.alias
        if not alias:
            continue
        for column in lateral.this.find_all(exp.Column):
            if column.table == alias:
                raise QueryError(
                    f"inside LATERAL (...) AS {alias}, '{column.name}' must be qualified with "
                    f"the alias of the table it comes from ('{alias}' is the LATERAL itself)",
                    consumer=consumer,
                )


def _check_stars_expanded(selects: Iterable[exp.Select], consumer: str | None) -> None:
    """With the consumer's schema every ``*`` expands to named columns. One that did not
    expands over a source with duplicate column names, whose width DuckDB may multiply at
    each level (``SELECT * FROM a AS l, a AS r`` doubles it): refuse it, so the width of every
    relation is bounded by the query text."""
    for select in selects:
        for projection in select.expressions:
            star = projection if isinstance(projection, exp.Star) else None
            if isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
                star = projection.this
            if star is not None:
                raise QueryError(
                    "'*' cannot be expanded here: a relation it reads has two columns with "
                    "the same name; give the columns distinct names (SELECT a.x AS a_x, ...)",
                    consumer=consumer,
                )


_UNRESOLVED = re.compile(
    r"Column '(?P<column>[^']+)' could not be resolved(?: for table: '(?P<table>[^']+)')?"
    r"(?:\. Line: (?P<line>\d+), Col: (?P<col>\d+))?|Unknown column: (?P<unknown>\S+)"
)


def _unresolved(
    error: OptimizeError,
    tree: exp.Query,
    spec: MeshSpec,
    schema: Any,
    consumer: str | None,
    text: str | None,
    travels: dict[str, Travel],
) -> QueryError:
    """sqlglot's unresolved-column error as meshsim's: the name, the closest column the
    consumer can see (only visible ones: ``schema`` is its visible schema, or the full one
    when diagnosing, whose message is never shown), and where it is in the text."""
    match = _UNRESOLVED.search(str(error))
    if match is None:
        return QueryError(f"cannot resolve the query: {error}", consumer=consumer)
    name = match.group("column") or match.group("unknown") or ""
    if not match.group("table"):
        then = not_at_version(name, travels, consumer)
        if then is not None:
            return then
    choices = sorted(_columns_in_query(tree, spec, schema))
    table = match.group("table")
    if table:
        message = f"'{table}.{name}': '{table}' is not a table, alias or CTE the query reads"
    elif name in choices:
        message = (
            f"column '{name}' is ambiguous: more than one relation the query reads has it; "
            f"qualify it with a table alias (a.{name})"
        )
    else:
        message = f"column '{name}' does not exist in the tables the query reads"
        guess = closest(name, choices)
        if guess:
            message += f"; did you mean '{guess}'?"
    line, col = match.group("line"), match.group("col")
    if line and col and text:
        from meshsim.query.validate import point_at

        start = max(int(col) - len(name), 0)
        message += f" (line {line}, column {start + 1})" + point_at(
            text, int(line), start, len(name)
        )
    return QueryError(message, consumer=consumer, hint="DESCRIBE domain.table lists its columns")


def _columns_in_query(tree: exp.Query, spec: MeshSpec, schema: Any) -> set[str]:
    """Column names the query's relations offer: mesh tables' columns in ``schema`` and the
    output names of its subqueries and CTEs."""
    names: set[str] = set()
    full = mesh_schema(spec) if schema is None else None
    for table in tree.find_all(exp.Table):
        if not table.db:
            continue
        if full is not None:
            names |= set(full.get(table.db, {}).get(table.name, {}))
            continue
        try:
            names |= set(schema.column_names(table))
        except Exception:  # noqa: BLE001 - a name the schema does not know offers nothing
            continue
    for query in tree.find_all(exp.Subquery, exp.CTE):
        inner = query.this
        if isinstance(inner, exp.Query):
            names |= {n for n in inner.named_selects if n}
    return names


def resolve(
    tree: exp.Query,
    spec: MeshSpec,
    *,
    consumer: str | None = None,
    schema: Any = None,
    text: str | None = None,
    columns_at: ColumnsAt | None = None,
) -> Resolved:
    """Qualify a copy of ``tree`` and list every mesh table reference with its columns.

    With ``schema`` (the consumer's VISIBLE columns per table) stars are expanded to visible
    columns only; without it, the full mesh schema is used and stars are left alone (used to
    diagnose which hidden column a query names). ``text`` is the text the tree was parsed
    from, to point at an unresolved column. With ``columns_at`` and ``schema``, a
    time-travelled table offers the columns its version had.
    """
    tree = copy_tree(tree)
    for pivot in tree.find_all(exp.Pivot):  # DuckDB keeps the case of the names PIVOT makes
        for name in pivot.args.get("columns") or ():
            name.meta["case_sensitive"] = True
    # as qualify() normalizes first; _qualify then skips that step (a second walk)
    tree = normalize_identifiers(tree, dialect="duckdb", store_original_column_identifiers=True)
    _check_tables(tree, spec, consumer)
    _name_series_columns(tree)
    travels: dict[str, Travel] = {}
    if schema is not None and columns_at is not None:
        schema, travels = travelled_schema(tree, schema, columns_at, consumer)
    try:
        tree, scopes = _qualify(
            tree, schema if schema is not None else mesh_schema(spec), schema is not None
        )
    except OptimizeError as exc:
        raise _unresolved(exc, tree, spec, schema, consumer, text, travels) from None
    if travels:
        restore_travelled(tree, travels)
    # the tree keeps its shape from here on: one walk finds what every check below reads
    nodes = nodes_of(
        tree, exp.Table, exp.Column, exp.Alias, exp.Select, exp.Lateral, exp.TableColumn
    )
    _check_laterals(nodes[exp.Lateral], consumer)
    if schema is not None:
        _check_stars_expanded(nodes[exp.Select], consumer)
    uses: dict[int, TableUse] = {}
    checked: set[int] = set()
    spellings: dict[str, dict[str, str]] = {}
    for scope in scopes:
        for alias, source in scope.sources.items():
            if isinstance(source, exp.Table) and not isinstance(source.this, exp.Func):
                if id(source) not in uses:
                    version, timestamp = time_travel(source, consumer)
                    table_alias = source.args.get("alias")
                    if table_alias is not None and table_alias.columns:
                        raise QueryError(
                            f"column alias lists on mesh tables are not allowed "
                            f"({source.sql(dialect='duckdb')}); alias columns in the SELECT",
                            consumer=consumer,
                        )
                    uses[id(source)] = TableUse(
                        source, f"{source.db}.{source.name}", alias, version, timestamp, set()
                    )
        for column in scope.columns:
            checked.add(id(column))
            if isinstance(column.this, exp.Star):
                continue
            pivoting = column.find_ancestor(exp.Pivot)
            owner: Any
            if pivoting is not None:  # an input of PIVOT/UNPIVOT: a column of what it pivots
                owner = pivoting.parent
            elif not column.table:
                if _is_output_ref(column):
                    continue
                raise QueryError(
                    f"'{column.name}' does not name a column; whole-row references and virtual "
                    f"columns are not allowed",
                    consumer=consumer,
                )
            else:
                owner = _enclosing(scope, column.table) or _pivoted(scope, column.table)
                if owner is None:
                    raise QueryError(
                        f"cannot resolve '{column.sql(dialect='duckdb')}'", consumer=consumer
                    )
                pivoted = isinstance(owner, exp.Expr) and owner.args.get("pivots")
                if pivoted and not _is_table_column(owner, column, spec):
                    continue  # a column PIVOT/UNPIVOT made, from what it read
            if isinstance(owner, exp.Table) and id(owner) in uses:
                use = uses[id(owner)]
                assert use.columns is not None
                if use.ref not in spellings:
                    spellings[use.ref] = _spellings(spec, use.ref)
                declared = spellings[use.ref].get(column.name.lower(), column.name)
                use.columns.add(declared)
                if declared != column.name:
                    column.set("this", exp.to_identifier(declared, quoted=True))
    for node in nodes[exp.TableColumn]:
        raise QueryError(
            f"whole-row reference '{node.sql(dialect='duckdb')}' is not allowed; name the "
            f"columns you need",
            consumer=consumer,
        )
    for column in nodes[exp.Column]:
        if id(column) in checked or isinstance(column.this, exp.Star) or _is_output_ref(column):
            continue
        raise QueryError(
            f"cannot resolve '{column.sql(dialect='duckdb')}' to a column of a table in scope",
            consumer=consumer,
        )
    restore_case(tree, spec, nodes)
    return Resolved(tree, list(uses.values()), scopes)


def _qualify(tree: exp.Query, schema: Any, expand_stars: bool) -> tuple[exp.Query, list[Scope]]:
    """sqlglot's ``qualify`` (duckdb dialect, columns validated, identifiers quoted) after
    its first step, normalizing identifiers, which :func:`resolve` has done already; and the
    qualified tree's scopes, which its validation step walks and resolve walks again."""
    schema = ensure_schema(schema, dialect="duckdb")
    tree = qualify_tables(tree, dialect="duckdb")
    tree = qualify_columns(tree, schema, expand_alias_refs=True, expand_stars=expand_stars)
    tree = quote_identifiers(tree, dialect="duckdb", identify=True)
    scopes = traverse_scope(tree)
    _validate_columns(scopes)
    return tree, scopes


def _validate_columns(scopes: list[Scope]) -> None:
    """sqlglot's ``validate_qualify_columns`` over scopes already built (the same checks,
    in the same order, with the same messages: :func:`_unresolved` reads them)."""
    unqualified: list[exp.Column] = []
    for scope in scopes:
        if not isinstance(scope.expression, exp.Select):
            continue
        if scope.external_columns and not scope.is_correlated_subquery and not scope.pivots:
            column = scope.external_columns[0]
            for_table = f" for table: '{column.table}'" if column.table else ""
            message = f"Column '{column.name}' could not be resolved{for_table}."
            line, col = column.this.meta_get("line"), column.this.meta_get("col")
            if line and col:
                message += f" Line: {line}, Col: {col}"
            raise OptimizeError(message)
        unqualified.extend(scope.unqualified_columns)
    if unqualified:
        first = unqualified[0]
        message = f"Ambiguous column '{first.name}'"
        line, col = first.this.meta_get("line"), first.this.meta_get("col")
        if line and col:
            message += f" (Line: {line}, Col: {col})"
        raise OptimizeError(message)
