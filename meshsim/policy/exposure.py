"""Which consumers get a column's raw values: the one answer the lint and the publish gate share.

A column reaches a consumer raw when a grant covers it and no mask does, or when the mask that
covers it gives the value back: a custom expression such as ``{column}``,
``upper({column})`` or ``CASE WHEN consumer.team = 'x' THEN {column} ELSE '*' END`` for a
consumer of team ``x``. A custom mask is judged by running it, with each consumer's attributes,
on probe values of the column's type (on a DuckDB connection that reads no file): a mask that
returns any probe unchanged, ignoring case and surrounding spaces, is no protection for that
consumer. Probing cannot see a reversible transformation (``reverse({column})``); the built-in
functions (``redact``, ``nullify``, ``keyed_hash``, ``show_last``, ``year_only``) are
protection by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from meshsim.errors import MeshsimError
from meshsim.spec.loader import MeshSpec, TableSpec
from meshsim.spec.models import Column, Mask

if TYPE_CHECKING:
    from sqlglot import exp

    from meshsim.policy.access import TableAccess

_PROBE = "__meshsim_probe"
_STRINGS = ("Customer#000000042", "alice@example.com", "+41 79 555 01 23", "12 Main St", "x")
_PROBES: dict[str, tuple[str, ...]] = {
    "string": _STRINGS,
    "integer": ("1", "42", "-7", "99"),
    "number": ("1.5", "-7.25", "42"),
    "date": ("1990-05-17", "2024-12-31"),
    "timestamp": ("1990-05-17 08:30:00", "2024-12-31 23:59:59"),
    "boolean": ("true", "false"),
}


@dataclass(frozen=True)
class RawCell:
    """``consumer`` reads the raw values of ``table.column``: through ``rule`` (a grant),
    unmasked or under ``mask``, a custom mask that returns them."""

    consumer: str
    table: str
    column: str
    rule: str
    mask: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.table}.{self.column}"

    @property
    def why(self) -> str:
        if self.mask is None:
            return f" ({self.rule})"
        return f": mask '{self.mask}' returns the raw value (custom expression)"


def raw_cells(
    spec: MeshSpec,
    matrix: Iterable[TableAccess],
    selected: Callable[[TableSpec, Column], bool],
) -> list[RawCell]:
    """The cells of ``matrix`` whose column ``selected`` picks and whose raw values reach the
    consumer, in matrix order."""
    candidates: list[tuple[RawCell, str | None]] = []
    attributes = {c.name: c.attributes for c in spec.mesh.consumers}
    for access in matrix:
        table = spec.table(access.table)
        if table is None:
            continue
        for cell in access.columns:
            column = table.column(cell.column)
            if column is None or not selected(table, column) or cell.state == "denied":
                continue
            if cell.state == "full":
                candidates.append(
                    (RawCell(access.consumer, access.table, cell.column, cell.rule), None)
                )
            elif cell.mask is not None and cell.mask.function == "custom":
                probe = _probe_sql(cell.mask, column, attributes.get(access.consumer, {}))
                raw = RawCell(access.consumer, access.table, cell.column, cell.rule, cell.mask.name)
                candidates.append((raw, probe))
    probes = sorted({sql for _, sql in candidates if sql is not None})
    answers = dict(zip(probes, _run(probes), strict=True))
    return [cell for cell, sql in candidates if sql is None or answers[sql] is True]


def _run(statements: list[str]) -> list[object]:
    if not statements:
        return []
    from meshsim.engine import scalar_answers

    return scalar_answers(statements)


def _kind(spec_type: str) -> str | None:
    import pyarrow as pa

    from meshsim.spec.types import to_arrow

    try:
        dtype = to_arrow(spec_type)
    except (ValueError, MeshsimError):
        return None
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "string"
    if pa.types.is_integer(dtype):
        return "integer"
    if pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "number"
    if pa.types.is_date(dtype):
        return "date"
    if pa.types.is_timestamp(dtype):
        return "timestamp"
    if pa.types.is_boolean(dtype):
        return "boolean"
    return None


def _probe_sql(mask: Mask, column: Column, attributes: Mapping[str, str]) -> str | None:
    """A query answering whether ``mask`` returns any probe value unchanged for a consumer
    with ``attributes``; None when the mask does not compile (the binding check reports it)."""
    from sqlglot import exp

    from meshsim.query.masks import mask_expression
    from meshsim.spec.types import to_arrow
    from meshsim.storage.scan import arrow_to_sql_type

    kind = _kind(column.type)
    try:
        dtype = arrow_to_sql_type(to_arrow(column.type))
        masked = mask_expression(
            mask,
            exp.column(_PROBE, quoted=True),
            dtype,
            key=bytes(32),
            column_ref=column.name,
            attributes=attributes,
        )
    except (MeshsimError, ValueError):
        return None
    if kind is None:  # no probe values for the type: only the plain identity is recognised
        return "SELECT true" if _is_identity(masked) else None
    values = exp.Values(
        expressions=[
            exp.Tuple(expressions=[exp.cast(exp.Literal.string(v), dtype.copy())])
            for v in _PROBES[kind]
        ],
        alias=exp.TableAlias(
            this=exp.to_identifier("p"), columns=[exp.to_identifier(_PROBE, quoted=True)]
        ),
    )
    probe = exp.column(_PROBE, quoted=True)

    def folded(value: exp.Expr) -> exp.Expr:
        return exp.Lower(this=exp.Trim(this=exp.cast(value, "VARCHAR")))

    same = exp.EQ(this=folded(masked), expression=folded(probe))
    query = exp.select(exp.Coalesce(this=exp.func("bool_or", same), expressions=[exp.false()]))
    return query.from_(values).sql(dialect="duckdb")


def _is_identity(tree: exp.Expr) -> bool:
    from sqlglot import exp

    while isinstance(tree, exp.Cast | exp.Paren):
        tree = tree.this
    return isinstance(tree, exp.Column) and tree.name == _PROBE
