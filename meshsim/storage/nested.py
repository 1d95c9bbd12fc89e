"""Column mapping inside nested columns: map a struct, list or map column that a Parquet
file stores under physical names (name mode) or field ids (id mode) to its logical type.

With column mapping, every struct field at every level (inside lists and maps too) carries
its own ``delta.columnMapping.physicalName`` and ``delta.columnMapping.id`` (deltalake puts
them in the Arrow field metadata of the logical type), and the files use those names and ids
throughout. DuckDB casts a struct by field name, so the scan cannot just CAST; it reads each
file's layout of the column from its footer (:func:`layout`, hashable, so files of one layout
share one ``read_parquet``) and renames with DuckDB's ``remap_struct(value, NULL::type,
mapping, defaults)`` (:func:`remap`): one vectorised function that renames (and casts) the
fields in place, keeps NULL structs NULL, and fills the fields a file does not store (added
later) from typed NULL defaults. Its last three arguments are constants, which
:mod:`meshsim.query.crosscheck` checks.

>>> import pyarrow as pa
>>> field = pa.field("a", pa.int32(), metadata={PHYSICAL_NAME: b"col-1"})
>>> logical, stored = pa.struct([field]), pa.struct([("col-1", pa.int32())])
>>> layout(logical, stored, by_id=False, column="s")
('struct', (('a', 'col-1', None),))
>>> found = layout(logical, stored, by_id=False, column="s")
>>> print(remap(exp.column("s"), logical, found).sql(dialect="duckdb"))
REMAP_STRUCT(s, CAST(NULL AS STRUCT("a" INT)), {'a': 'col-1'}, NULL)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlglot import exp

if TYPE_CHECKING:
    import pyarrow as pa

PHYSICAL_NAME = b"delta.columnMapping.physicalName"
MAPPING_ID = b"delta.columnMapping.id"
PARQUET_FIELD_ID = b"PARQUET:field_id"
#: DuckDB's scalar function meshsim's scans use for it (allowed only in meshsim's scans).
REMAP_FUNCTION = "remap_struct"

#: How one file stores one nested column, as nested tuples: ``None`` (no struct below: read
#: as stored), ``("struct", ((logical name, stored name or None if absent, child), ...))``,
#: ``("list", element)`` or ``("map", key, value)``.
Layout = tuple[Any, ...] | None
#: The file stores none of the column's fields: the column reads as NULL.
MISSING: Layout = ("missing",)


class LayoutMismatch(Exception):
    """A file stores a nested column in a shape its Delta type does not have."""


def has_struct(dtype: pa.DataType) -> bool:
    """Whether ``dtype`` is or holds a struct (the only nested part with field names)."""
    import pyarrow as pa

    if pa.types.is_struct(dtype):
        return True
    if _is_list(dtype):
        return has_struct(dtype.value_type)
    if pa.types.is_map(dtype):
        return has_struct(dtype.key_type) or has_struct(dtype.item_type)
    return False


def _is_list(dtype: pa.DataType) -> bool:
    import pyarrow as pa

    return (
        pa.types.is_list(dtype)
        or pa.types.is_large_list(dtype)
        or pa.types.is_list_view(dtype)
        or pa.types.is_large_list_view(dtype)
    )


def _field_id(field: pa.Field, key: bytes) -> int | None:
    raw = (field.metadata or {}).get(key)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def layout(logical: pa.DataType, stored: pa.DataType, *, by_id: bool, column: str) -> Layout:
    """How ``stored`` (a file's type of the column) holds ``logical``: struct fields matched by
    physical name, or (``by_id``) by Parquet field id. :data:`MISSING` if no field matches."""
    found = _layout(logical, stored, by_id, column)
    return MISSING if found == MISSING else found


def _layout(logical: pa.DataType, stored: pa.DataType, by_id: bool, where: str) -> Layout:
    import pyarrow as pa

    if not has_struct(logical):
        return None
    if pa.types.is_struct(logical):
        if not pa.types.is_struct(stored):
            raise LayoutMismatch(f"stores '{where}' as {stored}, not as a struct")
        if by_id:
            ids = {_field_id(f, PARQUET_FIELD_ID): f for f in stored}
            ids.pop(None, None)
            if not ids:
                raise LayoutMismatch(
                    f"has no Parquet field ids inside '{where}', which a table in column "
                    f"mapping id mode needs to map its fields"
                )
        children = []
        for f in logical:
            path = f"{where}.{f.name}"
            if by_id:
                match = ids.get(_field_id(f, MAPPING_ID))
            else:
                physical = (f.metadata or {}).get(PHYSICAL_NAME, f.name.encode()).decode()
                index = stored.get_field_index(physical)
                match = stored.field(index) if index >= 0 else None
            child = _layout(f.type, match.type, by_id, path) if match is not None else MISSING
            name = match.name if match is not None and child != MISSING else None
            children.append((f.name, name, None if child == MISSING else child))
        if all(name is None for _, name, _ in children):
            return MISSING
        return ("struct", tuple(children))
    if _is_list(logical):
        if not _is_list(stored):
            raise LayoutMismatch(f"stores '{where}' as {stored}, not as a list")
        element = _layout(logical.value_type, stored.value_type, by_id, f"{where}[]")
        return MISSING if element == MISSING else ("list", element)
    if not pa.types.is_map(stored):
        raise LayoutMismatch(f"stores '{where}' as {stored}, not as a map")
    key = _layout(logical.key_type, stored.key_type, by_id, f"{where}.key")
    value = _layout(logical.item_type, stored.item_type, by_id, f"{where}.value")
    if MISSING in (key, value):
        part = "keys" if key == MISSING else "values"
        raise LayoutMismatch(f"stores none of the fields of the {part} of '{where}'")
    return ("map", key, value)


def remap(value: exp.Expr, logical: pa.DataType, found: Layout) -> exp.Expr:
    """``value`` (stored as ``found`` says) as the logical type: a ``remap_struct`` call."""
    from meshsim.storage.scan import arrow_to_sql_type

    assert found is not None and found != MISSING
    mapping, defaults = _mapping(logical, found), _defaults(logical, found)
    return exp.Anonymous(
        this=REMAP_FUNCTION,
        expressions=[
            value,
            exp.cast(exp.null(), arrow_to_sql_type(logical)),
            mapping,
            defaults if defaults is not None else exp.null(),
        ],
    )


def _entry(name: str, child: exp.Expr | None) -> exp.PropertyEQ:
    return exp.PropertyEQ(this=exp.to_identifier(name, quoted=True), expression=child)


def _source(stored: str, logical: pa.DataType, found: Layout) -> exp.Expr:
    """A mapping entry: the stored name, or ``ROW(stored name, mapping of its fields)``."""
    if found is None:
        return exp.Literal.string(stored)
    return exp.Anonymous(
        this="ROW", expressions=[exp.Literal.string(stored), _mapping(logical, found)]
    )


def _mapping(logical: pa.DataType, found: Layout) -> exp.Struct:
    assert found is not None
    if found[0] == "struct":
        entries = [
            _entry(name, _source(stored, logical.field(name).type, child))
            for name, stored, child in found[1]
            if stored is not None
        ]
    elif found[0] == "list":
        entries = [_entry("list", _source("list", logical.value_type, found[1]))]
    else:
        entries = [
            _entry("key", _source("key", logical.key_type, found[1])),
            _entry("value", _source("value", logical.item_type, found[2])),
        ]
    return exp.Struct(expressions=entries)


def _defaults(logical: pa.DataType, found: Layout) -> exp.Struct | None:
    """Typed NULLs for the fields the file does not store, nested as the mapping is."""
    from meshsim.storage.scan import arrow_to_sql_type

    if found is None:
        return None
    entries = []
    if found[0] == "struct":
        for name, stored, child in found[1]:
            dtype = logical.field(name).type
            if stored is None:
                entries.append(_entry(name, exp.cast(exp.null(), arrow_to_sql_type(dtype))))
            elif (inner := _defaults(dtype, child)) is not None:
                entries.append(_entry(name, inner))
    elif found[0] == "list":
        if (inner := _defaults(logical.value_type, found[1])) is not None:
            entries.append(_entry("list", inner))
    else:
        for name, dtype, child in (
            ("key", logical.key_type, found[1]),
            ("value", logical.item_type, found[2]),
        ):
            if (inner := _defaults(dtype, child)) is not None:
                entries.append(_entry(name, inner))
    return exp.Struct(expressions=entries) if entries else None
