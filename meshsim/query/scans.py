"""Governed scans: what one consumer may see of one table version, as a SELECT over storage.

``SELECT <visible columns, masked ones as CAST(mask AS type)> FROM (<raw scan>) AS
"__meshsim_raw" WHERE <row filters>``. Nothing above it ever sees a raw value of a masked
column, a denied column, or a filtered-out row, so masks and filters hold through joins,
grouping, ordering, windows and set operations. It is a plain subquery over ``read_parquet``
(no ORDER BY, no materialisation) so DuckDB still pushes projections and filters down.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp

from meshsim.policy.access import TableAccess
from meshsim.query.filters import RAW_ALIAS
from meshsim.query.masks import mask_expression

if TYPE_CHECKING:
    from meshsim.storage.snapshot import Snapshot

VISIBLE_FLAG = "__meshsim_visible"
#: ``meta`` key marking a raw storage scan in a compiled tree (its value describes it)
RAW_SCAN_META = "meshsim_raw_scan"
#: ``meta`` key holding a raw storage scan's table reference
RAW_SCAN_TABLE = "meshsim_raw_scan_table"


@dataclass(frozen=True)
class GovernedScan:
    """A compiled governed scan; ``select`` must be copied before it is placed in a tree."""

    select: exp.Select
    sql: str  # ``select`` generated once (duckdb dialect), spliced into the final SQL
    files: frozenset[str]
    lookups: tuple[tuple[str, int], ...]  # tables the row filters read, with their versions
    #: the key sets ``sql`` reads (:mod:`meshsim.query.keysets`); ``select`` reads none
    keysets: frozenset[str] = frozenset()

    def explain_sql(self) -> str:
        """The scan as a consumer may see it: masks and filters as they run, each raw storage
        scan (file paths, partition values) replaced by a name saying what it reads."""
        shown = self.select.copy()
        for node in list(shown.find_all(exp.Select)):
            label = node.meta.get(RAW_SCAN_META)
            if label:
                node.replace(exp.select(exp.Star()).from_(exp.to_identifier(label, quoted=True)))
        return shown.sql(dialect="duckdb")


def raw_scan(snapshot: Snapshot, declared: Collection[str] | None = None) -> exp.Select:
    """The columns of a snapshot that the spec ``declared`` (all, without it), unfiltered
    and unmasked (for the governed scan and the policy's own lookups). Columns the spec does
    not declare are never visible, so one of a type meshsim cannot read (a Spark ``void``)
    does not stop the table from being read."""
    from meshsim.storage.scan import scan_query

    names = None
    if declared is not None:
        names = [c.name for c in snapshot.columns if c.name in declared]
        if len(names) == len(snapshot.columns):
            names = None
    select = scan_query(snapshot, names)
    count = len(snapshot.files)
    select.meta[RAW_SCAN_TABLE] = snapshot.table
    select.meta[RAW_SCAN_META] = (
        f"<{snapshot.table} v{snapshot.version}: {count} file{'s' if count != 1 else ''}>"
    )
    return select


def governed_select(
    access: TableAccess,
    snapshot: Snapshot,
    filters: Sequence[exp.Expr],
    *,
    key: bytes,
    attributes: Mapping[str, str],
    gated: bool = True,
) -> exp.Select:
    """The governed scan; with ``filters`` and ``gated`` each value is handed out gated (see
    below), without ``gated`` the filters are a plain WHERE, which DuckDB pushes predicates
    into. The planner asks for it only for a query whose expressions DuckDB could run before
    the filter cannot fail (:mod:`meshsim.query.fallible`); a mask that could fail still gates
    the scan, since a predicate over a masked column is pushed down with the mask in it."""
    from meshsim.query.fallible import mask_can_fail
    from meshsim.storage.scan import arrow_to_sql_type

    present = {c.name: c for c in snapshot.columns}
    visible = exp.column(VISIBLE_FLAG, table=RAW_ALIAS, quoted=True)
    projections: list[tuple[exp.Expr, str]] = []
    for column in access.columns:
        # a column an old version did not have is read (as NULL) for the row filters only
        if not column.visible or column.column not in present or column.column in snapshot.absent:
            continue
        raw = exp.column(column.column, table=RAW_ALIAS, quoted=True)
        if column.state == "masked" and column.mask is not None:
            dtype = arrow_to_sql_type(present[column.column].type)
            value = mask_expression(
                column.mask,
                raw,
                dtype,
                key=key,
                column_ref=f"{access.table}.{column.column}",
                attributes=attributes,
            )
            gated = gated or mask_can_fail(value, dtype.sql(dialect="duckdb"))
        else:
            value = raw
        projections.append((value, column.column))
    source = exp.Subquery(
        this=raw_scan(snapshot, {c.column for c in access.columns}),
        alias=exp.TableAlias(this=exp.to_identifier(RAW_ALIAS, quoted=True)),
    )
    if not filters or not gated:
        plain = exp.select(*(exp.alias_(v, name, quoted=True) for v, name in projections))
        plain = plain.from_(source)
        return plain.where(exp.and_(*(exp.paren(f.copy()) for f in filters))) if filters else plain
    # DuckDB may evaluate the consumer's predicates before the row filter (it pushes them
    # below the semi join an IN-subquery filter becomes), so a predicate that can fail
    # (a cast, strptime) would tell hidden rows apart by failing. Every value leaves the scan
    # as CASE WHEN <visible> THEN value END: whatever runs early sees NULL on hidden rows.
    gate = exp.select(
        exp.Column(this=exp.Star(), table=exp.to_identifier(RAW_ALIAS, quoted=True)),
        exp.alias_(exp.and_(*(exp.paren(f.copy()) for f in filters)), VISIBLE_FLAG, quoted=True),
    ).from_(source)
    gate_source = exp.Subquery(
        this=gate, alias=exp.TableAlias(this=exp.to_identifier(RAW_ALIAS, quoted=True))
    )
    outputs = [
        exp.alias_(exp.Case().when(visible.copy(), v), name, quoted=True) for v, name in projections
    ]
    return exp.select(*outputs).from_(gate_source).where(visible)
