"""Column types as written in spec files, and their Arrow equivalents.

Spec files use SQL type names (``bigint``, ``decimal(15,2)``, ``varchar``, ``date``...). One
table maps them to Arrow so the build can check generated data against the declared schema.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

_SIMPLE = {
    "boolean": "bool_",
    "tinyint": "int8",
    "smallint": "int16",
    "integer": "int32",
    "int": "int32",
    "bigint": "int64",
    "float": "float32",
    "real": "float32",
    "double": "float64",
    "varchar": "string",
    "string": "string",
    "text": "string",
    "date": "date32",
    "blob": "binary",
    "binary": "binary",
}
_DECIMAL = re.compile(r"^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
_TIMESTAMP = {"timestamp": None, "timestamp_ntz": None, "timestamptz": "UTC", "timestamp_tz": "UTC"}

SPEC_TYPES = sorted([*_SIMPLE, *_TIMESTAMP, "decimal(p,s)"])


def normalize_type(text: str) -> str:
    """Canonical spelling of a spec type, or ValueError listing the valid ones.

    >>> normalize_type(" DECIMAL(15, 2) ")
    'decimal(15,2)'
    >>> normalize_type("BigInt")
    'bigint'
    """
    t = re.sub(r"\s+", " ", text.strip().lower())
    if t in _SIMPLE or t in _TIMESTAMP:
        return t
    m = _DECIMAL.match(t)
    if m:
        precision, scale = int(m.group(1)), int(m.group(2))
        if not 1 <= precision <= 38 or scale > precision:
            raise ValueError(
                f"decimal precision must be 1..38 and scale <= precision, got '{text}'"
            )
        return f"decimal({precision},{scale})"
    raise ValueError(f"unknown column type '{text}' (valid: {', '.join(SPEC_TYPES)})")


def to_arrow(spec_type: str) -> pa.DataType:
    """The Arrow type meshsim writes for a spec type."""
    import pyarrow as pa

    t = normalize_type(spec_type)
    if t in _SIMPLE:
        return getattr(pa, _SIMPLE[t])()
    if t in _TIMESTAMP:
        return pa.timestamp("us", tz=_TIMESTAMP[t])
    m = _DECIMAL.match(t)
    assert m is not None
    return pa.decimal128(int(m.group(1)), int(m.group(2)))


def from_arrow(dtype: pa.DataType) -> str:
    """The spec spelling of an Arrow type (for tables registered from an existing location)."""
    import pyarrow as pa

    if pa.types.is_decimal(dtype):
        return f"decimal({dtype.precision},{dtype.scale})"
    if pa.types.is_timestamp(dtype):
        return "timestamptz" if dtype.tz else "timestamp"
    if (
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_string_view(dtype)
    ):
        return "varchar"
    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype):
        return "blob"
    for name, factory in _SIMPLE.items():
        if name in {"int", "real", "string", "text", "binary"}:
            continue
        if getattr(pa, factory)() == dtype:
            return name
    raise ValueError(f"Arrow type {dtype} has no spec equivalent")


def _same_type(a: str, b: str) -> bool:
    """Whether two normalised spellings are one Arrow type (``varchar`` and ``text``...),
    without importing pyarrow."""

    def canonical(t: str) -> str:
        if t in _SIMPLE:
            return _SIMPLE[t]
        return f"timestamp[{_TIMESTAMP[t]}]" if t in _TIMESTAMP else t

    return canonical(a) == canonical(b)


_INT_DIGITS = {"tinyint": 3, "smallint": 5, "integer": 10, "int": 10, "bigint": 19}


def can_hold(declared: str, actual: str) -> bool:
    """Whether every value of spec type ``actual`` converts to ``declared`` without loss: the
    same type, a wider integer or decimal, an integer into a decimal or a double that holds all
    its digits, a float into a double, a date into a timestamp.

    >>> can_hold("bigint", "integer"), can_hold("decimal(18,2)", "decimal(15,2)")
    (True, True)
    >>> can_hold("integer", "bigint"), can_hold("decimal(12,2)", "decimal(15,2)")
    (False, False)
    >>> can_hold("varchar", "string"), can_hold("bigint", "varchar")
    (True, False)
    """
    declared, actual = normalize_type(declared), normalize_type(actual)
    if _same_type(declared, actual):
        return True
    wide, narrow = _DECIMAL.match(declared), _DECIMAL.match(actual)
    if actual in _INT_DIGITS:
        digits = _INT_DIGITS[actual]
        if declared in _INT_DIGITS:
            return _INT_DIGITS[declared] >= digits
        if wide:
            return int(wide.group(1)) - int(wide.group(2)) >= digits
        if declared == "double":
            return digits <= 10
        return declared in ("float", "real") and digits <= 5
    if wide and narrow:
        precision, scale = int(wide.group(1)), int(wide.group(2))
        old_precision, old_scale = int(narrow.group(1)), int(narrow.group(2))
        return scale >= old_scale and precision - scale >= old_precision - old_scale
    if actual in ("float", "real"):
        return declared == "double"
    return actual == "date" and declared in _TIMESTAMP
