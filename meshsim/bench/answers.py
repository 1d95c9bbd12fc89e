"""Answer checking: every engine's result is compared with a reference engine's, loudly.

Results are normalised before comparison: columns are taken by position (engines name derived
columns differently), every number (integer, decimal or float) is written with two decimals
(half-up), dates in ISO form, NULL as ``NULL``, and rows are sorted. When two normalised
results differ only because one engine rounded a value that sits on a half-cent differently,
they still match if every number is within 0.01; that is reported as ``tolerance``.

>>> import pyarrow as pa
>>> a = pa.table({"x": [2, 1], "y": [0.125, 3.0]})
>>> b = pa.table({"k": [1, 2], "v": [3, 0.13]})
>>> compare(a, b).status
'match'
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

CENT = Decimal("0.01")


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float | Decimal):
        try:
            number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
            return str(number.quantize(CENT, rounding=ROUND_HALF_UP))
        except InvalidOperation:  # nan, inf
            return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def normalise(table: pa.Table) -> list[tuple[str, ...]]:
    """The rows of ``table`` as sorted tuples of normalised strings."""
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return sorted(zip(*(map(_cell, c) for c in columns), strict=True)) if columns else []


def _close(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return abs(Decimal(a) - Decimal(b)) <= CENT
    except InvalidOperation:
        return False


@dataclass(frozen=True)
class Comparison:
    status: str  # match | tolerance | wrong
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "wrong"


def compare_rows(got: list[tuple[str, ...]], want: list[tuple[str, ...]]) -> Comparison:
    if got == want:
        return Comparison("match")
    if len(got) != len(want):
        return Comparison("wrong", f"{len(got)} rows, expected {len(want)}")
    if got and len(got[0]) != len(want[0]):
        return Comparison("wrong", f"{len(got[0])} columns, expected {len(want[0])}")
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if not all(_close(a, b) for a, b in zip(g, w, strict=True)):
            return Comparison("wrong", f"row {i} (sorted) is {list(g)}, expected {list(w)}")
    return Comparison("tolerance", "some values differ by at most 0.01 after rounding")


def compare(got: pa.Table, want: pa.Table) -> Comparison:
    """Compare two results after normalisation; see the module docstring."""
    return compare_rows(normalise(got), normalise(want))
