"""Column lineage of one derived product's query, with sqlglot's ``lineage`` over the query
qualified with the mesh schema (every column bound to its table, ``*`` expanded).

Each output column's path through CTEs and subqueries down to the mesh tables' columns is
classified by the strongest step on it: ``aggregate`` (an aggregate function, windowed or
not) over ``expression`` (any other computation, a cast included) over ``direct`` (the column
itself, perhaps renamed). An input column the query reads that reaches no output column is
read only by conditions (WHERE, JOIN ... ON, GROUP BY, HAVING, QUALIFY): a ``filter`` edge
into the product's rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from meshsim.errors import SpecError
from meshsim.lineage.model import ColumnEdge, ColumnRef, TransformKind
from meshsim.spec.loader import MeshSpec, TableSpec
from meshsim.spec.models import SqlSource

if TYPE_CHECKING:
    from sqlglot import exp

_STRENGTH: dict[TransformKind, int] = {"direct": 0, "expression": 1, "aggregate": 2}


def column_edges(spec: MeshSpec, table: TableSpec) -> list[ColumnEdge]:
    """The column edges into derived ``table``: each declared output column's inputs and how
    it is computed from them, then the filter-only inputs (into the table's rows)."""
    import sqlglot
    from sqlglot.errors import SqlglotError
    from sqlglot.lineage import lineage
    from sqlglot.optimizer.pushdown_projections import pushdown_projections
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import build_scope

    source = table.table.source
    assert isinstance(source, SqlSource)
    schema = _schema(spec)
    try:
        tree = sqlglot.parse_one(source.sql, dialect="duckdb")
        qualified = qualify(
            tree, schema=schema, dialect="duckdb", validate_qualify_columns=False, identify=False
        )
        # unused projections of CTEs and subqueries read nothing: without them, every input
        # column left that reaches no output is read by a condition
        qualified = pushdown_projections(qualified)
        scope = build_scope(qualified)
        outputs = lineage(None, qualified, schema=schema, dialect="duckdb", scope=scope)
    except SqlglotError as exc:
        first = next((line for line in str(exc).splitlines() if line.strip()), "")
        raise SpecError(
            [f"derived table '{table.ref}': cannot compute its column lineage: {first}"],
            hint="run 'meshsim validate'",
        ) from None
    edges: dict[tuple[ColumnRef, ColumnRef], TransformKind] = {}
    for name, node in outputs.items():
        declared = table.column(name) or _declared(table, name)
        target = ColumnRef(table=table.ref, column=declared.name if declared else name)
        for input_column, kind in _inputs(spec, node):
            key = (input_column, target)
            if key not in edges or _STRENGTH[kind] > _STRENGTH[edges[key]]:
                edges[key] = kind
    feeding = {source for source, _ in edges}
    rows = ColumnRef(table=table.ref)
    for read in sorted(_read_columns(spec, scope), key=str):
        if read not in feeding:
            edges[(read, rows)] = "filter"
    # sqlglot walks a column's inputs in no fixed order: the declared columns' order, then
    # the inputs' names, so that every answer and event reads the same on every run
    position = {c.name: i for i, c in enumerate(table.columns)}

    def order(key: tuple[ColumnRef, ColumnRef]) -> tuple[int, str]:
        source, target = key
        at = position.get(target.column or "", len(position))
        return (at, str(source))

    return [ColumnEdge(source=s, target=t, kind=edges[(s, t)]) for s, t in sorted(edges, key=order)]


def _schema(spec: MeshSpec) -> dict[str, object]:
    """``{domain: {table: {column: type}}}``; types play no part in lineage, only names."""
    schema: dict[str, Any] = {}
    for table in spec.tables():
        columns = {c.name: "UNKNOWN" for c in table.columns}
        schema.setdefault(table.domain, {})[table.name] = columns
    return schema


def _declared(table: TableSpec, name: str) -> Any:
    """The declared column sqlglot's normalised (lower-case) ``name`` stands for."""
    return next((c for c in table.columns if c.name.lower() == name.lower()), None)


def _mesh_column(spec: MeshSpec, source: exp.Table, column: str) -> ColumnRef | None:
    """The mesh column a qualified column of ``source`` is (None: not a mesh table)."""
    mesh_table = spec.table(f"{source.db}.{source.name}".lower()) if source.db else None
    if mesh_table is None:
        return None
    declared = _declared(mesh_table, column)
    return ColumnRef(table=mesh_table.ref, column=declared.name if declared else column)


def _inputs(spec: MeshSpec, root: Any) -> list[tuple[ColumnRef, TransformKind]]:
    """The mesh columns at the leaves under a lineage node, each with the strongest step on
    its path."""
    from sqlglot import exp

    found: list[tuple[ColumnRef, TransformKind]] = []

    def walk(node: Any, kind: TransformKind, seen: frozenset[int]) -> None:
        if id(node) in seen:
            return
        if isinstance(node.expression, exp.Table):
            alias = node.expression.alias_or_name
            column = node.name[len(alias) + 1 :] if node.name.startswith(f"{alias}.") else node.name
            ref = _mesh_column(spec, node.expression, column)
            if ref is not None and column != "*":
                found.append((ref, kind))
            return
        step = _step(node.expression)
        strongest = step if _STRENGTH[step] > _STRENGTH[kind] else kind
        for child in node.downstream:
            walk(child, strongest, seen | {id(node)})

    walk(root, "direct", frozenset())
    return found


def _step(expression: exp.Expr) -> TransformKind:
    """How one select expression computes its value from the columns it names."""
    from sqlglot import exp

    value = expression.this if isinstance(expression, exp.Alias) else expression
    if isinstance(value, exp.Column):
        return "direct"
    if any(_in_this_query(n, expression) for n in value.find_all(exp.AggFunc)):
        return "aggregate"
    return "expression"


def _in_this_query(node: exp.Expr, top: exp.Expr) -> bool:
    """Whether ``node`` belongs to ``top``'s query rather than to a subquery inside it (a
    scalar subquery's aggregate is its own step on its own path)."""
    from sqlglot import exp

    parent: exp.Expr | None = node
    while parent is not None and parent is not top:
        if isinstance(parent, exp.Query):
            return False
        parent = parent.parent
    return True


def _read_columns(spec: MeshSpec, scope: Any) -> set[ColumnRef]:
    """Every mesh column the query reads, in any clause of any scope."""
    from sqlglot import exp

    read = set()
    for each in scope.traverse():
        for column in each.columns:
            source = each.sources.get(column.table)
            if isinstance(source, exp.Table):
                ref = _mesh_column(spec, source, column.name)
                if ref is not None:
                    read.add(ref)
    return read
