"""The lineage of a whole mesh, from its spec: every table's source, every derived product's
column edges (:mod:`meshsim.lineage.columns`) and the governance its domain's consumer reads
through.

Governance edges come from the one access answer (:func:`meshsim.policy.access.resolve_access`)
under the spec's policies: a build derives as the domain's consumer under ``mesh.yaml`` alone
(catalog subscriptions do not count, see :mod:`meshsim.sources.derived`), so those are the
masks and row filters the derived data went through.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from meshsim.errors import MeshsimError, unknown_name_message
from meshsim.lineage.model import ColumnEdge, ColumnRef, GovernanceEdge, Lineage, SourceEdge
from meshsim.spec.loader import MeshSpec, TableSpec
from meshsim.spec.models import (
    CsvSource,
    JsonSource,
    LocationSource,
    ParquetSource,
    SqlSource,
    TpchSource,
)

if TYPE_CHECKING:
    from meshsim.lineage.render import LineageAnswer


def mesh_lineage(spec: MeshSpec) -> Lineage:
    """Every source, column and governance edge of ``spec``."""
    from meshsim.sources.derived import build_order

    sources, columns, governance = [], [], []
    for table in build_order(spec):  # derived products after what they read
        edge = source_edge(spec, table)
        if edge is not None:
            sources.append(edge)
        if isinstance(table.table.source, SqlSource):
            edges = table_column_edges(spec, table)
            columns += edges
            governance += governance_edges(spec, table, edges)
    return Lineage(sources=tuple(sources), columns=tuple(columns), governance=tuple(governance))


def table_column_edges(spec: MeshSpec, table: TableSpec) -> list[ColumnEdge]:
    from meshsim.lineage.columns import column_edges

    return column_edges(spec, table)


def source_edge(spec: MeshSpec, table: TableSpec) -> SourceEdge | None:
    """Where ``table``'s rows come from, unless it is derived (its column edges say) or has
    no source (an empty table producers write)."""
    from meshsim.sources.files import source_pattern
    from meshsim.spec.sources import location_path

    source = table.table.source
    if isinstance(source, TpchSource):
        return SourceEdge(kind="tpch", source=f"tpchgen-cli {source.tpch}", target=table.ref)
    if isinstance(source, LocationSource):
        where = str(location_path(spec, source))
        return SourceEdge(kind="location", source=where, target=table.ref)
    for kind, model in (("csv", CsvSource), ("parquet", ParquetSource), ("json", JsonSource)):
        if isinstance(source, model):
            return SourceEdge(kind=kind, source=source_pattern(source), target=table.ref)
    return None


def governance_edges(
    spec: MeshSpec, table: TableSpec, edges: Iterable[ColumnEdge]
) -> list[GovernanceEdge]:
    """The masks on the input columns and the row filters on the input tables that the
    domain's consumer read ``table``'s inputs through."""
    from meshsim.policy.access import resolve_access
    from meshsim.sources.derived import owner_consumer

    consumer = owner_consumer(table)
    if spec.consumer(consumer) is None:  # a validate error; the build refuses it
        return []
    found: list[GovernanceEdge] = []
    edges = list(edges)
    for ref in dict.fromkeys(e.source.table for e in edges):
        access = resolve_access(spec, consumer, ref)
        for row_filter in access.row_filters:
            found.append(
                GovernanceEdge(
                    source=ColumnRef(table=ref),
                    target=ColumnRef(table=table.ref),
                    kind="row_filter",
                    policy=row_filter.name,
                    consumer=consumer,
                    detail=" ".join(row_filter.predicate.split()),
                )
            )
        for edge in (e for e in edges if e.source.table == ref):
            column = access.column(edge.source.column or "")
            if column is not None and column.state == "masked" and column.mask is not None:
                found.append(
                    GovernanceEdge(
                        source=edge.source,
                        target=edge.target,
                        kind="mask",
                        policy=column.mask.name,
                        consumer=consumer,
                        detail=column.mask.function,
                    )
                )
    return found


def parse_focus(spec: MeshSpec, text: str) -> ColumnRef:
    """``DOMAIN.TABLE`` or ``DOMAIN.TABLE.COLUMN`` as a column reference of ``spec``; an
    unknown table or column is named with the closest ones."""
    tables = [t.ref for t in spec.tables()]
    parts = text.split(".", 2)
    table = spec.table(".".join(parts[:2]).lower()) if len(parts) >= 2 else None
    if table is None:
        raise MeshsimError(
            unknown_name_message("table", ".".join(parts[:2]), tables, "name it DOMAIN.TABLE"),
            hint="run 'meshsim tables' to list them; a column is DOMAIN.TABLE.COLUMN",
        )
    if len(parts) == 2:
        return ColumnRef(table=table.ref)
    declared = table.column(parts[2]) or next(
        (c for c in table.columns if c.name.lower() == parts[2].lower()), None
    )
    if declared is None:
        raise MeshsimError(
            unknown_name_message(
                "column", parts[2], [c.name for c in table.columns], f"in table '{table.ref}'"
            ),
            hint=f"run 'meshsim show {table.domain}.{table.product}' to list its columns",
        )
    return ColumnRef(table=table.ref, column=declared.name)


def downstream_tables(spec: MeshSpec, columns: Iterable[str]) -> list[str]:
    """The derived products' tables that read any of ``columns`` (``DOMAIN.TABLE.COLUMN`` or
    a whole ``DOMAIN.TABLE``), directly or through other derived products: what a change of
    them would break."""
    lineage = mesh_lineage(spec)
    reached: set[str] = set()
    for text in columns:
        reached |= set(lineage.downstream(parse_focus(spec, text)).targets())
    return sorted(reached)


def lineage_answer(spec: MeshSpec, text: str, direction: str = "both") -> LineageAnswer:
    """The lineage up- or downstream (or both) of ``DOMAIN.TABLE[.COLUMN]``."""
    from meshsim.lineage.render import DIRECTIONS, LineageAnswer

    if direction not in DIRECTIONS:
        raise MeshsimError(
            f"lineage direction '{direction}' is not one of {', '.join(DIRECTIONS)}",
            hint="pass --upstream or --downstream, or neither for both",
        )
    focus = parse_focus(spec, text)
    lineage = mesh_lineage(spec)
    up = lineage.upstream(focus) if direction != "downstream" else Lineage()
    down = lineage.downstream(focus) if direction != "upstream" else Lineage()
    merged = Lineage(
        sources=up.sources,
        columns=tuple(dict.fromkeys((*up.columns, *down.columns))),
        governance=tuple(dict.fromkeys((*up.governance, *down.governance))),
    )
    return LineageAnswer(focus=focus, direction=direction, lineage=merged)  # type: ignore[arg-type]
