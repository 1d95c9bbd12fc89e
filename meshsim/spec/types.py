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
