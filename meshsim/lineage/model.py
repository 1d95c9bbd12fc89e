"""The lineage graph of a mesh, as one typed model: where each table's rows come from (source
edges), which input columns each derived column is computed from and how (column edges), and
which masks and row filters the building domain's governance put between them (governance
edges). :meth:`Lineage.upstream` and :meth:`Lineage.downstream` answer "where does this come
from" and "what breaks if I change this" as sub-graphs of the same model.

A column reference with no column (``ColumnRef(table="sales.orders")``) stands for the
table's rows: a filter-only edge reaches every row of its target, a row filter removes rows
of its source, and changing such a target changes every column of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict

#: how an output column is computed from an input column (``filter``: the input column is read
#: only in WHERE, JOIN, GROUP BY, HAVING or QUALIFY conditions, so it decides which rows there
#: are, not any value)
TransformKind = Literal["direct", "expression", "aggregate", "filter"]
TRANSFORM_KINDS: tuple[TransformKind, ...] = ("direct", "expression", "aggregate", "filter")
SourceKind = Literal["tpch", "csv", "parquet", "json", "location", "sql"]
GovernanceKind = Literal["mask", "row_filter"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnRef(_Frozen):
    """``table.column``, or the table's rows when ``column`` is None."""

    table: str
    column: str | None = None

    def __str__(self) -> str:
        return self.table if self.column is None else f"{self.table}.{self.column}"

    def feeds_on(self, target: ColumnRef) -> bool:
        """Whether an edge into ``target`` is upstream of ``self``: one into its column, or
        into its table's rows (a filter decides every column's values)."""
        return self.table == target.table and (
            self.column is None or target.column is None or self.column == target.column
        )

    def changes(self, source: ColumnRef) -> bool:
        """Whether a change of ``self`` changes an edge's ``source``: the same column, or any
        column when ``self`` is the table's rows (a column alone does not change a row filter
        on its table)."""
        return self.table == source.table and self.column in (None, source.column)


class SourceEdge(_Frozen):
    """Where a table's rows come from: generated, loaded files, a registered location, or
    (``sql``) a derived product's query."""

    kind: SourceKind
    source: str
    target: str


class ColumnEdge(_Frozen):
    source: ColumnRef
    target: ColumnRef
    kind: TransformKind


class GovernanceEdge(_Frozen):
    """A mask or row filter applied to ``source`` when ``consumer`` (the building domain) read
    it to build ``target``: the derived values are masked, or derived from filtered rows."""

    source: ColumnRef
    target: ColumnRef
    kind: GovernanceKind
    policy: str
    consumer: str
    detail: str


Edge = SourceEdge | ColumnEdge | GovernanceEdge


class Lineage(_Frozen):
    """Edges of a mesh's lineage (or of the part of it an up- or downstream question reaches)."""

    sources: tuple[SourceEdge, ...] = ()
    columns: tuple[ColumnEdge, ...] = ()
    governance: tuple[GovernanceEdge, ...] = ()

    def upstream(self, focus: ColumnRef) -> Lineage:
        """Everything ``focus`` is computed from, transitively, with the governance on the way
        and the sources of every table reached."""
        reached = _reach(focus, self.columns, self.governance, forward=False)
        columns = [e for e in self.columns if any(n.feeds_on(e.target) for n in reached)]
        governance = [e for e in self.governance if any(n.feeds_on(e.target) for n in reached)]
        tables = {focus.table} | {e.source.table for e in columns}
        return Lineage(
            sources=tuple(e for e in self.sources if e.target in tables),
            columns=tuple(columns),
            governance=tuple(governance),
        )

    def downstream(self, focus: ColumnRef) -> Lineage:
        """Everything computed from ``focus``, transitively: what a change of it reaches."""
        reached = _reach(focus, self.columns, self.governance, forward=True)
        columns = [e for e in self.columns if any(n.changes(e.source) for n in reached)]
        governance = [e for e in self.governance if any(n.changes(e.source) for n in reached)]
        return Lineage(columns=tuple(columns), governance=tuple(governance))

    def tables(self) -> list[str]:
        """Every table an edge names, sorted."""
        names = {e.target for e in self.sources}
        flows: list[ColumnEdge | GovernanceEdge] = [*self.columns, *self.governance]
        for edge in flows:
            names |= {edge.source.table, edge.target.table}
        return sorted(names)

    def targets(self) -> list[str]:
        """The tables computed by an edge here (derived products), sorted."""
        return sorted({e.target.table for e in self.columns})


def _reach(
    focus: ColumnRef,
    columns: Iterable[ColumnEdge],
    governance: Iterable[GovernanceEdge],
    *,
    forward: bool,
) -> set[ColumnRef]:
    """The column references reached from ``focus`` along the edges, ``focus`` included."""
    edges: list[ColumnEdge | GovernanceEdge] = [*columns, *governance]
    reached = {focus}
    frontier = [focus]
    while frontier:
        node = frontier.pop()
        for edge in edges:
            if forward:
                meets, far = node.changes(edge.source), edge.target
            else:
                meets, far = node.feeds_on(edge.target), edge.source
            if meets and far not in reached:
                reached.add(far)
                frontier.append(far)
    return reached
