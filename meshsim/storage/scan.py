"""Bind a :class:`Snapshot` to DuckDB as a sqlglot syntax tree.

The relation reads the snapshot's Parquet files with ``read_parquet``, one call per distinct
combination of partition values, and projects logical column names with their Delta types:

- data columns are read by physical name and cast to the Delta type (a no-op cast when the
  file already has it, which DuckDB folds away, so filters still reach the Parquet reader);
- partition columns, which Delta does not store in the files, are typed constants, so a filter
  on them folds to ``false`` and DuckDB drops the whole branch;
- a column that no file of a branch holds (added later by schema evolution) is a typed NULL;
  within a branch ``union_by_name`` fills NULL for the files that lack it;
- a snapshot without files is a typed, empty relation.

>>> import pyarrow as pa
>>> arrow_to_sql_type(pa.decimal128(15, 2)).sql(dialect="duckdb")
'DECIMAL(15, 2)'
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from meshsim.errors import StorageError
from meshsim.storage import nested

if TYPE_CHECKING:
    import pyarrow as pa
    from pyroaring import FrozenBitMap64

    from meshsim.storage.snapshot import Column, DataFile, Snapshot

#: Characters DuckDB treats as glob syntax in a ``read_parquet`` path.
GLOB_CHARACTERS = frozenset("*?[")
#: DuckDB's virtual column of a row's 0-based index in its file (``read_parquet`` option).
FILE_ROW_NUMBER = "file_row_number"


def arrow_to_sql_type(dtype: pa.DataType) -> exp.DataType:
    """The DuckDB type for an Arrow type of a Delta column (structs, lists and maps of the
    supported types included), or a StorageError naming the type and the unsupported part.

    >>> import pyarrow as pa
    >>> arrow_to_sql_type(pa.timestamp("us", tz="UTC")).sql(dialect="duckdb")
    'TIMESTAMPTZ'
    >>> arrow_to_sql_type(pa.string_view()).sql(dialect="duckdb")
    'TEXT'
    >>> arrow_to_sql_type(pa.map_(pa.string(), pa.list_(pa.int32()))).sql(dialect="duckdb")
    'MAP(TEXT, INT[])'
    """
    sql_type = _sql_type(dtype)
    if isinstance(sql_type, exp.DataType):
        return sql_type
    part = "" if sql_type == dtype else f" (its part {sql_type})"
    raise StorageError(
        f"Arrow type {dtype}{part} has no DuckDB equivalent in meshsim's scan (supported: "
        f"booleans, integers, floats, decimals, dates, timestamps, strings, binary, and "
        f"structs, lists and maps of them; not supported: unsigned integers, float16, time, "
        f"duration, interval, null, dictionary, union, fixed-size binary and fixed-size lists)",
        hint="store the column as one of the supported types",
    )


def _sql_type(dtype: pa.DataType) -> exp.DataType | pa.DataType:
    """The DuckDB type, or the (innermost) Arrow type that has none."""
    import pyarrow as pa

    t = exp.DataType.Type
    simple = {
        pa.bool_(): t.BOOLEAN,
        pa.int8(): t.TINYINT,
        pa.int16(): t.SMALLINT,
        pa.int32(): t.INT,
        pa.int64(): t.BIGINT,
        pa.float32(): t.FLOAT,
        pa.float64(): t.DOUBLE,
        pa.date32(): t.DATE,
        pa.string(): t.VARCHAR,
        pa.large_string(): t.VARCHAR,
        pa.string_view(): t.VARCHAR,
        pa.binary(): t.VARBINARY,
        pa.large_binary(): t.VARBINARY,
        pa.binary_view(): t.VARBINARY,
    }
    if dtype in simple:
        return exp.DataType.build(simple[dtype])
    if pa.types.is_decimal(dtype):
        return exp.DataType.build(f"DECIMAL({dtype.precision}, {dtype.scale})", dialect="duckdb")
    if pa.types.is_timestamp(dtype):
        return exp.DataType.build(t.TIMESTAMPTZ if dtype.tz else t.TIMESTAMP)
    if pa.types.is_struct(dtype):
        kind, names = t.STRUCT, [dtype.field(i).name for i in range(dtype.num_fields)]
        parts = [dtype.field(i).type for i in range(dtype.num_fields)]
    elif pa.types.is_map(dtype):
        kind, names, parts = t.MAP, [], [dtype.key_type, dtype.item_type]
    elif (
        pa.types.is_list(dtype)
        or pa.types.is_large_list(dtype)
        or pa.types.is_list_view(dtype)
        or pa.types.is_large_list_view(dtype)
    ):
        kind, names, parts = t.ARRAY, [], [dtype.value_type]
    else:
        return dtype
    members: list[exp.Expr] = []
    for part in parts:
        inner = _sql_type(part)
        if not isinstance(inner, exp.DataType):
            return inner
        members.append(inner)
    if names:  # struct members are named, quoted: field names may be any text
        members = [
            exp.ColumnDef(this=exp.to_identifier(name, quoted=True), kind=member)
            for name, member in zip(names, members, strict=True)
        ]
    return exp.DataType(this=kind, expressions=members, nested=True)


def scan_files(snapshot: Snapshot) -> tuple[str, ...]:
    """Every file path the scan of ``snapshot`` reads, in the order it lists them."""
    return tuple(f.path for f in snapshot.files)


def _constant(value: Any, column: Column, sql_type: exp.DataType) -> exp.Expr:
    """``value`` as a typed SQL constant (strings cast to the type, so DuckDB parses it)."""
    if value is None:
        literal: exp.Expr = exp.null()
    elif isinstance(value, bool):
        literal = exp.Boolean(this=value)
    elif isinstance(value, int):
        literal = exp.Literal.number(value)
    elif isinstance(value, float | Decimal | str):
        literal = exp.Literal.string(str(value) if not isinstance(value, float) else repr(value))
    elif isinstance(value, datetime | date):
        literal = exp.Literal.string(value.isoformat())
    else:
        raise StorageError(
            f"partition column '{column.name}' holds {value!r} ({type(value).__name__}), which "
            f"meshsim cannot write as a constant",
        )
    return exp.cast(literal, sql_type)


#: Above this many files in one partition, footers are not read to simplify the scan.
FOOTER_LIMIT = 64


@functools.lru_cache(maxsize=4096)
def _parquet_schema(path: str) -> pa.Schema:
    """A Parquet file's schema from its footer (files are immutable in Delta)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _UnreadableFile(path, f"is not a readable Parquet file ({reason})") from None


def _parquet_field_ids(path: str) -> dict[int, str]:
    """Parquet field id -> top-level column name, for the columns of a file that have one."""
    ids = {}
    for field in _parquet_schema(path):
        raw = (field.metadata or {}).get(b"PARQUET:field_id")
        if raw is not None:
            ids[int(raw)] = field.name
    return ids


def _parquet_types(path: str) -> tuple[tuple[str, str | None], ...]:
    """(column, DuckDB type) per top-level column of a Parquet file's footer, in file order;
    the type only where DuckDB reads it exactly as that type."""
    import pyarrow as pa

    def exact(dtype: pa.DataType) -> str | None:
        # types whose Parquet encoding DuckDB reads back as exactly this SQL type; anything
        # else (timestamps of other units, nested...) keeps its CAST
        simple = (
            pa.types.is_integer(dtype)
            or pa.types.is_floating(dtype)
            or pa.types.is_boolean(dtype)
            or pa.types.is_decimal(dtype)
            or pa.types.is_date32(dtype)
            or pa.types.is_string(dtype)
            or pa.types.is_large_string(dtype)
            or pa.types.is_string_view(dtype)
        )
        return arrow_to_sql_type(dtype).sql(dialect="duckdb") if simple else None

    return tuple((f.name, exact(f.type)) for f in _parquet_schema(path))


class _UnreadableFile(Exception):
    """A data file's footer failed while building a scan; :func:`scan_query` names the table."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem


def _parquet_columns(path: str) -> frozenset[str]:
    """Top-level column names in a Parquet file's footer."""
    return frozenset(name for name, _ in _parquet_types(path))


def _group_holds(files: Sequence[DataFile], column: Column) -> bool:
    """Whether any file of ``files`` stores ``column``: statistics first, footers if needed."""
    if any(column.name in f.null_counts for f in files):
        return True
    return any(column.physical_name in _parquet_columns(f.path) for f in files)


def _names_by_field_id(f: DataFile, columns: Sequence[Column]) -> tuple[str | None, ...]:
    """Column mapping id mode: the name each column has in ``f``, found by its Parquet field
    id (``None`` where the file has no such field: it was written before the column existed)."""
    ids = _parquet_field_ids(f.path)
    if not ids and any(c.field_id is not None for c in columns):
        raise _UnreadableFile(
            f.path,
            "has no Parquet field ids, which a table in column mapping id mode needs to map "
            "its columns",
        )
    return tuple(ids.get(c.field_id) if c.field_id is not None else None for c in columns)


def _nested_layouts(
    f: DataFile, columns: Sequence[Column], by_field_id: tuple[str | None, ...] | None, mode: str
) -> tuple[nested.Layout, ...] | None:
    """Column mapping: how ``f`` stores each chosen column that holds a struct (whose fields
    have physical names and ids too), from its footer; ``None`` where nothing is renamed."""
    if mode == "none" or not any(nested.has_struct(c.type) for c in columns):
        return None
    schema = _parquet_schema(f.path)
    layouts: list[nested.Layout] = []
    for i, c in enumerate(columns):
        stored = c.physical_name if by_field_id is None else by_field_id[i]
        if not nested.has_struct(c.type):
            layouts.append(None)
        elif stored is None or schema.get_field_index(stored) < 0:
            layouts.append(nested.MISSING)
        else:
            dtype = schema.field(stored).type
            try:
                layouts.append(nested.layout(c.type, dtype, by_id=mode == "id", column=c.name))
            except nested.LayoutMismatch as exc:
                raise _UnreadableFile(f.path, str(exc)) from None
    return tuple(layouts)


def _option(name: str, value: exp.Expr) -> exp.PropertyEQ:
    return exp.PropertyEQ(this=exp.to_identifier(name), expression=value)


def _read_parquet(
    paths: Sequence[str], *, union_by_name: bool = True, file_row_number: bool = False
) -> exp.Table:
    options: list[exp.Expr] = [exp.Array(expressions=[exp.Literal.string(p) for p in paths])]
    if union_by_name:
        options.append(_option("union_by_name", exp.true()))
    options.append(_option("hive_partitioning", exp.false()))
    if file_row_number:
        options.append(_option(FILE_ROW_NUMBER, exp.true()))
    return exp.Table(this=exp.ReadParquet(expressions=options))


@functools.lru_cache(maxsize=4096)
def _parquet_rows(path: str) -> int:
    """Rows in a Parquet file, from its footer."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return int(pq.read_metadata(path).num_rows)
    except (pa.ArrowException, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _UnreadableFile(path, f"is not a readable Parquet file ({reason})") from None


def _not_deleted(deleted: FrozenBitMap64, rows: int) -> exp.Expr:
    """The rows of a file (of ``rows`` rows) that ``deleted`` keeps, as ONE string literal:

    - ``file_row_number NOT IN (SELECT unnest(CAST('[3,17,...]' AS BIGINT[])))``, a hash anti
      join over the indexes, when they are few; or
    - ``get_bit(CAST('0001...' AS BIT), file_row_number) = 0``, one character per row of the
      file, when that text is shorter (dense vectors).

    An IN list of literals instead costs DuckDB ~0.17 s to bind and ~0.5 s to run for 10,000
    of 100,000 rows; these cost milliseconds (1,000,000 of 2,000,000 rows: 60 ms as bits,
    0.7 s as a list). Measured in tests/storage/test_corpus.py.
    """
    import numpy as np

    row = exp.column(FILE_ROW_NUMBER, quoted=True)
    text = "[" + ",".join(map(str, deleted)) + "]"
    if rows < len(text) and deleted.max() < rows < 2**31:
        bits = np.full(rows, ord("0"), dtype=np.uint8)
        bits[np.frombuffer(deleted.to_array(), dtype=np.uint64).astype(np.int64)] = ord("1")
        as_bits = exp.cast(exp.Literal.string(bits.tobytes().decode("ascii")), "BIT")
        position = exp.cast(row, exp.DataType.build("INT"))
        return exp.EQ(
            this=exp.Anonymous(this="get_bit", expressions=[as_bits, position]),
            expression=exp.Literal.number(0),
        )
    as_list = exp.cast(exp.Literal.string(text), exp.DataType.build("BIGINT[]", dialect="duckdb"))
    deleted_rows = exp.select(exp.Unnest(expressions=[as_list]))
    return exp.not_(exp.In(this=row, query=deleted_rows.subquery()))


def _branch(
    files: Sequence[DataFile],
    columns: Sequence[Column],
    types: dict[str, exp.DataType],
    partition_columns: frozenset[str],
    by_field_id: tuple[str | None, ...] | None,
    layouts: tuple[nested.Layout, ...] | None,
) -> exp.Select:
    """One read of ``files`` (all of one partition, and in id mode or with mapped nested
    columns of one column layout; a file with a deletion vector alone, its deleted rows
    filtered by file row number)."""
    # With few files, read their footers once: where every file stores a column as exactly
    # its Delta type the CAST is dropped, and files with identical layouts need no
    # union_by_name. Both cost DuckDB binding time on every query (about 3% on TPC-H).
    footers = [dict(_parquet_types(f.path)) for f in files] if len(files) <= FOOTER_LIMIT else []
    same_layout = bool(footers) and all(list(f) == list(footers[0]) for f in footers)
    projections = []
    for i, c in enumerate(columns):
        stored = c.physical_name if by_field_id is None else by_field_id[i]
        layout = layouts[i] if layouts is not None else None
        if c.name in partition_columns:
            value = _constant(files[0].partition_values.get(c.name), c, types[c.name])
        elif layout == nested.MISSING:
            value = exp.cast(exp.null(), types[c.name])
        elif layout is not None and stored is not None:
            value = nested.remap(exp.column(stored, quoted=True), c.type, layout)
        elif stored is not None and (by_field_id is not None or _group_holds(files, c)):
            value = exp.column(stored, quoted=True)
            expected = types[c.name].sql(dialect="duckdb")
            if not footers or any(f.get(stored) != expected for f in footers):
                value = exp.cast(value, types[c.name])
        else:
            value = exp.cast(exp.null(), types[c.name])
        projections.append(exp.alias_(value, c.name, quoted=True))
    deleted = files[0].deleted_rows if len(files) == 1 else None
    if deleted and any(FILE_ROW_NUMBER in f for f in footers):
        raise _UnreadableFile(
            files[0].path,
            f"has deleted rows and a column named '{FILE_ROW_NUMBER}', which meshsim needs "
            f"for the row index of its deletion vector",
        )
    source = _read_parquet(
        [f.path for f in files], union_by_name=not same_layout, file_row_number=bool(deleted)
    )
    select = exp.select(*projections).from_(source)
    return select.where(_not_deleted(deleted, _parquet_rows(files[0].path))) if deleted else select


def _union_all(branches: list[exp.Select]) -> exp.Query:
    """A balanced UNION ALL tree, so thousands of partitions stay shallow to generate."""
    if len(branches) == 1:
        return branches[0]
    middle = len(branches) // 2
    return exp.union(_union_all(branches[:middle]), _union_all(branches[middle:]), distinct=False)


def _partition_key(f: DataFile, partition_columns: Sequence[str]) -> tuple[Any, ...]:
    return tuple((type(f.partition_values[c]), f.partition_values[c]) for c in partition_columns)


def scan_query(snapshot: Snapshot, columns: Sequence[str] | None = None) -> exp.Select:
    """A SELECT over the snapshot's files with logical column names and Delta types.

    ``columns`` picks and orders the columns (all of them, in schema order, by default).
    """
    if columns is None:
        chosen = list(snapshot.columns)
    else:
        if not columns:
            raise StorageError(
                f"table '{snapshot.table}': a scan needs at least one column",
                table=snapshot.table,
            )
        chosen = [snapshot.column(name) for name in columns]
        duplicates = sorted({c for c in columns if list(columns).count(c) > 1})
        if duplicates:
            raise StorageError(
                f"table '{snapshot.table}': column(s) {', '.join(duplicates)} asked for twice",
                table=snapshot.table,
            )
    types = {c.name: arrow_to_sql_type(c.type) for c in chosen}
    names = [c.name for c in chosen]
    if not snapshot.files:
        nulls = [exp.alias_(exp.cast(exp.null(), types[n]), n, quoted=True) for n in names]
        return exp.select(*nulls).where(exp.false())
    for f in snapshot.files:
        bad = GLOB_CHARACTERS.intersection(f.path)
        if bad:
            raise StorageError(
                f"table '{snapshot.table}': file '{os.path.basename(f.path)}' (or its folder) "
                f"contains {''.join(sorted(bad))}, "
                f"which DuckDB would expand as a glob; refusing rather than reading other files",
                table=snapshot.table,
                hint="rewrite the table so its partition folders are escaped (meshsim build "
                "writes them escaped)",
            )
    partition_columns = frozenset(snapshot.partition_columns)
    try:
        groups: dict[tuple[Any, ...], list[DataFile]] = {}
        layouts: dict[tuple[Any, ...], tuple[Any, Any]] = {}
        mode = snapshot.column_mapping_mode
        for f in snapshot.files:
            by_id = _names_by_field_id(f, chosen) if mode == "id" else None
            inner = _nested_layouts(f, chosen, by_id, mode)
            # a file with deleted rows is read alone: file_row_number counts within a file
            alone = f.path if f.deleted_rows else None
            key = (_partition_key(f, snapshot.partition_columns), by_id, inner, alone)
            groups.setdefault(key, []).append(f)
            layouts[key] = (by_id, inner)
        branches = [
            _branch(g, chosen, types, partition_columns, *layouts[k]) for k, g in groups.items()
        ]
    except _UnreadableFile as exc:
        from meshsim.storage.files import FileProblem, damaged_files_error

        problem = FileProblem(snapshot.table, exc.path, exc.problem)
        raise damaged_files_error(snapshot.table, snapshot.version, [problem]) from None
    if len(branches) == 1:
        return branches[0]
    scan = _union_all(branches).subquery("delta_scan")
    return exp.select(*(exp.column(n, quoted=True) for n in names)).from_(scan)
