"""The one module in meshsim that imports ``deltalake``.

Every function takes the table's location (``str`` or ``Path``) and a display name ``table``
used in error messages. ``deltalake`` errors are wrapped into :class:`StorageError` (or
:class:`UnsupportedFeatureError`) naming the table, the location and the next step.

Behaviour of deltalake 1.6.6 that shapes this module (checked, see ``tests/storage``):

- ``DeltaTable.to_pyarrow_table()`` returns all-NULL columns for column-mapped tables, and
  using it in the same process as ``QueryBuilder`` can abort the interpreter at exit. So
  :func:`read_table` reads through ``QueryBuilder`` (DataFusion) only, never through pyarrow
  datasets.
- ``write_deltalake`` silently truncates nanosecond timestamps and turns ``uint32`` into
  ``int32`` (overflow) and ``uint64`` into ``int64``; :func:`coerce_schema` widens or casts
  safely instead, and refuses types Delta has no equivalent for.
- Schema evolution, ``ADD COLUMN`` and ``OPTIMIZE`` are refused on column-mapped tables.
- An empty-string partition value is NULL by the Delta protocol (and in ``get_add_actions``),
  but deltalake's engine reads it back as ``''``; :func:`write` refuses it so both agree.
- A negative decimal partition value is written as ``'-1.-50'``, committing a table that
  cannot be loaded; :func:`write` refuses it before writing.
- Binary partition values are read back (by ``get_add_actions`` and by the engine) as their
  escaped text ``b'\\u0000\\u00FF'``; :func:`write` refuses binary partition columns and
  :mod:`meshsim.storage.snapshot` refuses to read them.

The Parquet layout every write, merge, delete and compaction produces is
:func:`writer_properties`: row groups of :data:`ROW_GROUP_ROWS` rows (DuckDB's own size)
instead of delta-rs's 1,048,576, delta-rs's defaults otherwise (snappy, dictionary pages,
statistics on every column). DuckDB reads a file's row groups in parallel, so a table of fewer
row groups than threads is read by fewer threads; the benchmark's "layout" section measures
this choice against the others (``meshsim/bench/layout.py``).

The cheap log reads (:func:`latest_version`, :func:`resolve_version`...) live in
:mod:`meshsim.storage.log` and are re-exported here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from meshsim.errors import StorageError, UnsupportedFeatureError, unknown_name_message
from meshsim.storage.log import (
    BUILD_HINT,
    available_versions,
    commit_timestamp,
    exists,
    invalid_protocol,
    latest_version,
    location_of,
    not_found,
    resolve_version,
)

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable

    from meshsim.storage.deletion_vectors import DeletionVectorDescriptor

__all__ = [
    "BUILD_HINT",
    "HistoryEntry",
    "TableState",
    "available_versions",
    "checkpoint",
    "coerce_data",
    "coerce_schema",
    "commit_timestamp",
    "compact",
    "delete",
    "exists",
    "history",
    "latest_version",
    "load_state",
    "location_of",
    "open_table",
    "read_table",
    "resolve_version",
    "restore",
    "upsert",
    "vacuum",
    "write",
    "z_order",
]

WRITE_MODES = ("create", "append", "overwrite")
_UNSUPPORTED_FEATURE = re.compile(r"[Ff]eature '([^']+)' is not supported")
_UNSUPPORTED_READER_SET = re.compile(r"reader features: \{'([^']+)'")
_INVALID_PROTOCOL = re.compile(r"Invalid protocol action in the delta log: (.+)")
_CATALOG_MANAGED = "catalog-managed table"


@dataclass(frozen=True)
class HistoryEntry:
    """One commit of a table, as recorded in its log."""

    version: int
    timestamp: datetime
    operation: str
    parameters: dict[str, Any]
    metrics: dict[str, Any]


def wrap_error(error: Exception, *, location: str, table: str, action: str) -> StorageError:
    """A meshsim error for a ``deltalake`` error raised while doing ``action`` (deltalake
    raises a plain OSError for a log or data file it may not read)."""
    from deltalake.exceptions import TableNotFoundError

    text = str(error).strip()
    if isinstance(error, OSError) and error.strerror:
        text = f"{error.strerror}: '{error.filename}'" if error.filename else error.strerror
    if isinstance(error, TableNotFoundError):
        return not_found(location, table)
    for pattern in (_UNSUPPORTED_FEATURE, _UNSUPPORTED_READER_SET):
        m = pattern.search(text)
        if m:
            return UnsupportedFeatureError(
                table, m.group(1), f"deltalake refused to {action} '{location}'"
            )
    invalid = _INVALID_PROTOCOL.search(text)
    if invalid:
        return invalid_protocol(table, location, invalid.group(1).strip())
    if _CATALOG_MANAGED in text:
        return UnsupportedFeatureError(
            table, "catalogManaged", "its commits are owned by a catalog meshsim does not reach"
        )
    first_line = text.splitlines()[0] if text else type(error).__name__
    unreadable = _unreadable_log_file(location)
    if unreadable is not None:
        # delta-rs may say only "Generic LocalFileSystem error": name the file it could not read
        first_line = f"Permission denied: '{unreadable}'"
    return StorageError(
        f"could not {action} table '{table}' at '{location}': {first_line}",
        table=table,
        hint=f"check the table at '{location}', or {BUILD_HINT} to rebuild it",
    )


def _unreadable_log_file(location: str) -> str | None:
    """The first file (or the folder) of a local table's log this process may not read."""
    log = Path(location) / "_delta_log"
    try:
        if not log.is_dir():
            return None
        if not os.access(log, os.R_OK | os.X_OK):
            return str(log)
        for entry in sorted(os.scandir(log), key=lambda e: e.name):
            if entry.is_file(follow_symlinks=False) and not os.access(entry.path, os.R_OK):
                return entry.path
    except OSError:
        return str(log)
    return None


def open_table(path: str | Path, *, table: str, version: int | None = None) -> DeltaTable:
    """A ``deltalake.DeltaTable`` at ``version`` (latest by default), errors wrapped."""
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError

    location = location_of(path, table=table)
    if version is not None:
        resolve_version(location, table=table, version=version)
    else:
        latest_version(location, table=table)
    try:
        return DeltaTable(location, version=version)
    except (DeltaError, OSError) as e:
        raise wrap_error(e, location=location, table=table, action="open") from e


# -- type coercions ------------------------------------------------------------------------


def _coerce_type(dtype: pa.DataType, column: str, table: str) -> pa.DataType:
    import pyarrow as pa

    if pa.types.is_timestamp(dtype) and dtype.unit != "us":
        return pa.timestamp("us", tz=dtype.tz)
    if pa.types.is_unsigned_integer(dtype):
        widened = {8: pa.int16(), 16: pa.int32(), 32: pa.int64(), 64: pa.int64()}
        return widened[dtype.bit_width]
    if pa.types.is_time(dtype) or pa.types.is_duration(dtype) or pa.types.is_interval(dtype):
        raise StorageError(
            f"table '{table}': column '{column}' has Arrow type {dtype}, which Delta cannot store",
            table=table,
            hint="cast it to a timestamp, a number or a string before writing",
        )
    return dtype


def coerce_schema(schema: pa.Schema, *, table: str) -> pa.Schema:
    """The schema to write ``schema`` as, so that Delta stores every value exactly.

    >>> import pyarrow as pa
    >>> coerce_schema(pa.schema([("t", pa.timestamp("ns")), ("u", pa.uint32())]), table="x")
    t: timestamp[us]
    u: int64
    """
    import pyarrow as pa

    return pa.schema(
        [f.with_type(_coerce_type(f.type, f.name, table)) for f in schema],
        metadata=schema.metadata,
    )


def _cast_batch(batch: pa.RecordBatch, target: pa.Schema, table: str) -> pa.RecordBatch:
    import pyarrow as pa

    columns = []
    for field, column in zip(target, batch.columns, strict=True):
        try:
            columns.append(column.cast(field.type, safe=True))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise StorageError(
                f"table '{table}': column '{field.name}' cannot be stored as {field.type} "
                f"without changing values ({e})",
                table=table,
                hint="round or cast the column before writing",
            ) from e
    return pa.RecordBatch.from_arrays(columns, schema=target)


def _check_partitions(batch: Any, partition_columns: tuple[str, ...], table: str) -> None:
    """Refuse partition values deltalake 1.6.6 cannot store faithfully.

    An empty string is NULL by the Delta protocol (deltalake's engine reads it back as '');
    a negative decimal is serialised as e.g. '-1.-50', leaving a table nobody can load.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    for name in partition_columns:
        if name not in batch.schema.names:
            continue
        column = batch.column(name)
        kind = column.type
        if (
            pa.types.is_string(kind)
            or pa.types.is_large_string(kind)
            or pa.types.is_string_view(kind)
        ):
            if pc.any(pc.equal(column.cast(pa.string()), "")).as_py():
                raise StorageError(
                    f"table '{table}': partition column '{name}' holds an empty string, which "
                    f"Delta stores as a NULL partition value",
                    table=table,
                    hint=f"replace '' in '{name}' with NULL or another value before writing",
                )
        elif (
            pa.types.is_binary(kind)
            or pa.types.is_large_binary(kind)
            or pa.types.is_binary_view(kind)
        ):
            raise StorageError(
                f"table '{table}': partition column '{name}' is binary; deltalake reads binary "
                f"partition values back as their escaped text, not the bytes written",
                table=table,
                hint=f"partition by another column, or store '{name}' as a hex string",
            )
        elif pa.types.is_decimal(kind) and pc.any(pc.less(pc.sign(column), 0)).as_py():
            raise StorageError(
                f"table '{table}': partition column '{name}' holds a negative decimal, which "
                f"deltalake writes as an unreadable partition value",
                table=table,
                hint=f"partition by another column, or store '{name}' as a string or scaled "
                f"integer",
            )


def coerce_data(
    data: Any, *, table: str, partition_columns: tuple[str, ...] = ()
) -> pa.Table | pa.RecordBatchReader:
    """``data`` with :func:`coerce_schema` applied and partition values checked; readers stay
    streams (converted and checked batch by batch, never materialised)."""
    import pyarrow as pa

    if not isinstance(data, pa.Table | pa.RecordBatchReader):
        raise StorageError(
            f"table '{table}': cannot write a {type(data).__name__}; pass a pyarrow.Table or "
            f"a pyarrow.RecordBatchReader",
            table=table,
        )
    target = coerce_schema(data.schema, table=table)
    same = target.equals(data.schema)
    if isinstance(data, pa.Table):
        _check_partitions(data, partition_columns, table)
        if same:
            return data
        batches = [_cast_batch(b, target, table) for b in data.to_batches()]
        return pa.Table.from_batches(batches, schema=target)
    if same and not partition_columns:
        return data

    def convert(reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        for batch in reader:
            _check_partitions(batch, partition_columns, table)
            yield batch if same else _cast_batch(batch, target, table)

    return pa.RecordBatchReader.from_batches(target, convert(data))


# -- writes ---------------------------------------------------------------------------------


#: rows per Parquet row group (DuckDB's default, and its unit of parallel reading)
ROW_GROUP_ROWS = 122_880


def writer_properties(layout: Mapping[str, Any] | None = None) -> Any:
    """The Parquet layout meshsim writes (module docstring); ``layout`` overrides its
    ``WriterProperties`` arguments (the benchmark's layout section), ``dictionary`` turns
    dictionary encoding on or off for every column."""
    from deltalake import ColumnProperties, WriterProperties

    options: dict[str, Any] = {"max_row_group_size": ROW_GROUP_ROWS, "compression": "SNAPPY"}
    options.update(layout or {})
    dictionary = options.pop("dictionary", None)
    if dictionary is not None:
        options["default_column_properties"] = ColumnProperties(dictionary_enabled=dictionary)
    return WriterProperties(**options)


def write(
    path: str | Path,
    data: pa.Table | pa.RecordBatchReader,
    *,
    mode: Literal["create", "append", "overwrite"],
    table: str,
    partition_by: list[str] | None = None,
    column_mapping: bool = False,
    description: str | None = None,
    schema_mode: Literal["merge", "overwrite"] | None = None,
    layout: Mapping[str, Any] | None = None,
) -> int:
    """Write ``data`` and return the new version (``layout``: see :func:`writer_properties`).

    ``create`` fails if the table exists, ``append`` if it does not; ``overwrite`` replaces
    the rows (and creates the table if needed). ``column_mapping`` (name mode) and
    ``description`` are set when the write creates the table. ``schema_mode="merge"`` adds new
    columns (old files then read as NULL for them).
    """
    from deltalake import write_deltalake
    from deltalake.exceptions import DeltaError

    from meshsim.spec.types import holds_timestamp_ntz

    location = location_of(path, table=table)
    if mode not in WRITE_MODES:
        raise StorageError(unknown_name_message("write mode", mode, WRITE_MODES), table=table)
    present = exists(location)
    if mode == "create" and present:
        raise StorageError(
            f"table '{table}' already exists at '{location}' (version "
            f"{latest_version(location)}); refusing to create it again",
            table=table,
            hint="write with mode='overwrite' to replace its rows, or remove the folder",
        )
    if mode == "append" and not present:
        raise not_found(location, table, "does not exist yet, so it cannot be appended to")
    configuration = None
    if column_mapping:
        if present and column_mapping_mode(location, table=table) != "name":
            raise StorageError(
                f"table '{table}' at '{location}' was created without column mapping; it can "
                f"only be chosen when a table is created",
                table=table,
                hint="remove the folder and write with mode='create'",
            )
        configuration = {"delta.columnMapping.mode": "name"}
        ntz = [f.name for f in data.schema if holds_timestamp_ntz(f.type)]
        if ntz and not present:
            # deltalake would write a protocol without the columnMapping reader feature
            raise StorageError(
                f"table '{table}' cannot be created with column mapping: column(s) "
                f"{', '.join(ntz)} hold a timestamp without time zone, and deltalake would "
                f"write a protocol that omits columnMapping",
                table=table,
                hint="declare them timestamptz, or drop 'column_mapping: true'",
            )
    partitions = tuple(partition_by or ())
    if present and not partitions:
        partitions = tuple(open_table(location, table=table).metadata().partition_columns)
    try:
        write_deltalake(
            location,
            coerce_data(data, table=table, partition_columns=partitions),
            mode="error" if mode == "create" else mode,
            partition_by=partition_by,
            description=description if not present else None,
            configuration=configuration if not present else None,
            schema_mode=schema_mode,
            writer_properties=writer_properties(layout),
        )
    except (DeltaError, OSError) as e:
        raise wrap_error(e, location=location, table=table, action=f"{mode} (write)") from e
    return latest_version(location, table=table)


def column_mapping_mode(path: str | Path, *, table: str) -> str:
    """``none``, ``name`` or ``id``, from the table's configuration."""
    dt = open_table(path, table=table)
    return (dt.metadata().configuration or {}).get("delta.columnMapping.mode", "none")


def upsert(
    path: str | Path, data: pa.Table | pa.RecordBatchReader, primary_key: list[str], *, table: str
) -> int:
    """Merge ``data`` on ``primary_key``: update matched rows, insert the others."""
    from deltalake.exceptions import DeltaError
    from sqlglot import exp

    location = location_of(path, table=table)
    dt = open_table(location, table=table)
    partitions = tuple(dt.metadata().partition_columns)
    data = coerce_data(data, table=table, partition_columns=partitions)
    names = [f.name for f in dt.schema().fields]
    if not primary_key:
        raise StorageError(
            f"table '{table}': upsert needs a primary key (columns: {', '.join(names)})",
            table=table,
        )
    for key in primary_key:
        if key not in names or key not in data.schema.names:
            raise StorageError(unknown_name_message("primary key column", key, names), table=table)
    predicate = exp.and_(
        *(
            exp.column(k, table="target", quoted=True).eq(
                exp.column(k, table="source", quoted=True)
            )
            for k in primary_key
        )
    )
    try:
        (
            dt.merge(
                data,
                predicate.sql(),
                source_alias="source",
                target_alias="target",
                writer_properties=writer_properties(),
            )
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute()
        )
    except (DeltaError, OSError) as e:
        raise wrap_error(e, location=location, table=table, action="upsert into") from e
    return latest_version(location, table=table)


def delete(path: str | Path, predicate: str | None, *, table: str) -> int:
    """Delete the rows matching ``predicate`` (delta-rs SQL), or all rows if ``None``."""
    location = location_of(path, table=table)
    dt = open_table(location, table=table)
    try:
        dt.delete(predicate, writer_properties=writer_properties())
    except Exception as e:  # DataFusion's errors (a failed cast) are plain Exceptions
        raise wrap_error(e, location=location, table=table, action="delete from") from e
    return latest_version(location, table=table)


def count_matching(path: str | Path, predicate: str, *, table: str, version: int) -> int:
    """How many rows of ``version`` match ``predicate`` (delta-rs SQL, as :func:`delete`)."""
    import pyarrow as pa
    import sqlglot
    from deltalake import QueryBuilder
    from sqlglot import exp

    location = location_of(path, table=table)
    dt = open_table(location, table=table, version=version)
    condition = sqlglot.parse_one(predicate, dialect="postgres")
    query = exp.select(exp.Count(this=exp.Star())).from_("t").where(condition)
    try:
        result = QueryBuilder().register("t", dt).execute(query.sql(dialect="postgres"))
        return int(pa.table(result).column(0)[0].as_py())
    except Exception as e:  # DataFusion's errors (a failed cast) are plain Exceptions
        raise wrap_error(e, location=location, table=table, action="read") from e


# -- history and maintenance ----------------------------------------------------------------


def history(path: str | Path, *, table: str, limit: int | None = None) -> list[HistoryEntry]:
    """Commits, newest first."""
    entries = []
    for h in open_table(path, table=table).history(limit):
        entries.append(
            HistoryEntry(
                version=int(h["version"]),
                timestamp=datetime.fromtimestamp(h["timestamp"] / 1000, tz=UTC),
                operation=str(h.get("operation", "UNKNOWN")),
                parameters=dict(h.get("operationParameters") or {}),
                metrics=dict(h.get("operationMetrics") or {}),
            )
        )
    return entries


def compact(path: str | Path, *, table: str) -> dict[str, Any]:
    """Rewrite small files into larger ones; returns deltalake's optimize metrics."""
    from deltalake.exceptions import DeltaError

    location = location_of(path, table=table)
    try:
        optimizer = open_table(location, table=table).optimize
        return dict(optimizer.compact(writer_properties=writer_properties()))
    except (DeltaError, OSError) as e:
        raise wrap_error(e, location=location, table=table, action="compact") from e


def z_order(path: str | Path, columns: list[str], *, table: str) -> dict[str, Any]:
    """Rewrite the files clustered by ``columns`` (Z-order); deltalake's optimize metrics."""
    from deltalake.exceptions import DeltaError

    location = location_of(path, table=table)
    try:
        optimizer = open_table(location, table=table).optimize
        return dict(optimizer.z_order(columns, writer_properties=writer_properties()))
    except (DeltaError, OSError) as e:
        raise wrap_error(e, location=location, table=table, action="z-order") from e


def restore(path: str | Path, version: int, *, table: str) -> int:
    """Commit a new version whose rows are those of ``version``; returns the new version."""
    from deltalake.exceptions import DeltaError

    location = location_of(path, table=table)
    try:
        open_table(location, table=table).restore(version)
    except (DeltaError, OSError) as e:
        raise wrap_error(e, location=location, table=table, action=f"restore {version} of") from e
    return latest_version(location, table=table)


def vacuum(
    path: str | Path,
    *,
    table: str,
    retention_hours: int = 168,
    dry_run: bool = True,
    enforce_retention: bool = True,
) -> list[str]:
    """Files no longer referenced and older than the retention, relative to the table root
    as deltalake reports them; deleted unless ``dry_run``."""
    from deltalake.exceptions import DeltaError

    location = location_of(path, table=table)
    try:
        files = open_table(location, table=table).vacuum(
            retention_hours=retention_hours,
            dry_run=dry_run,
            enforce_retention_duration=enforce_retention,
        )
    except (DeltaError, OSError) as e:
        raise wrap_error(e, location=location, table=table, action="vacuum") from e
    return sorted(files)


def checkpoint(path: str | Path, *, table: str) -> None:
    """Write a checkpoint at the latest version, so later loads skip replaying older commits."""
    from deltalake.exceptions import DeltaError

    location = location_of(path, table=table)
    try:
        open_table(location, table=table).create_checkpoint()
    except (DeltaError, OSError) as e:
        raise wrap_error(e, location=location, table=table, action="checkpoint") from e


# -- reads ---------------------------------------------------------------------------------


def logical_schema(dt: DeltaTable) -> pa.Schema:
    """The table's Arrow schema with logical column names."""
    import pyarrow as pa

    return pa.schema(dt.schema().to_arrow())


def read_table(
    path: str | Path,
    *,
    table: str,
    version: int | None = None,
    timestamp: datetime | None = None,
    columns: list[str] | None = None,
) -> pa.Table:
    """Read a table (or some columns) with deltalake's own engine, typed as the Delta schema.

    Meant for small reads and as an independent reference in tests; queries go through
    :mod:`meshsim.storage.scan` instead.
    """
    import pyarrow as pa
    from deltalake import QueryBuilder
    from deltalake.exceptions import DeltaError
    from sqlglot import exp

    location = location_of(path, table=table)
    v = resolve_version(location, table=table, version=version, timestamp=timestamp)
    dt = open_table(location, table=table, version=v)
    schema = logical_schema(dt)
    wanted = list(schema.names) if columns is None else list(columns)
    for name in wanted:
        if name not in schema.names:
            raise StorageError(unknown_name_message("column", name, schema.names), table=table)
    target = pa.schema([schema.field(n) for n in wanted])
    query = exp.select(*(exp.column(n, quoted=True) for n in wanted)).from_("t")
    try:
        result = QueryBuilder().register("t", dt).execute(query.sql(dialect="postgres"))
        data = pa.table(result)
    except (DeltaError, OSError) as e:
        raise wrap_error(e, location=location, table=table, action="read") from e
    return data.rename_columns(wanted).cast(target)


@dataclass(frozen=True)
class TableState:
    """What :mod:`meshsim.storage.snapshot` needs from one loaded version, as plain values."""

    location: str
    version: int
    # name, physical name, type, nullable, column mapping id
    fields: tuple[tuple[str, str | None, pa.DataType, bool, int | None], ...]
    partition_columns: tuple[str, ...]
    configuration: dict[str, str]
    min_reader_version: int
    reader_features: frozenset[str]
    add_actions: pa.Table
    deletion_vectors: dict[str, DeletionVectorDescriptor]  # by add.path as logged
    # file URI -> rows deltalake's own reader deletes, or the error it gave reading them
    deleted_counts: dict[str, int] | StorageError


def _field_id(value: Any) -> int | None:
    """``delta.columnMapping.id`` as deltalake returns it (an int, or its JSON text)."""
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _deleted_counts(dt: DeltaTable) -> dict[str, int]:
    """Rows deltalake deletes per file (by file URI), from its own selection vectors: the
    independent check of meshsim's decoding in :mod:`meshsim.storage.deletion_vectors`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    vectors = pa.table(dt.deletion_vectors())
    if not vectors.num_rows:
        return {}
    selection = vectors.column("selection_vector").combine_chunks()
    deleted = (
        pa.table(
            {"file": pc.list_parent_indices(selection), "deleted": pc.invert(selection.flatten())}
        )
        .group_by("file")
        .aggregate([("deleted", "sum")])
    )
    counts = dict(zip(deleted["file"].to_pylist(), deleted["deleted_sum"].to_pylist(), strict=True))
    uris = vectors.column("filepath").to_pylist()
    return {uri: int(counts.get(i) or 0) for i, uri in enumerate(uris)}


def load_state(path: str | Path, *, table: str, version: int) -> TableState:
    """Replay the log at ``version`` and return its schema, protocol and add actions."""
    import pyarrow as pa
    from deltalake.exceptions import DeltaError

    location = location_of(path, table=table)
    dt = open_table(location, table=table, version=version)
    try:
        protocol = dt.protocol()
        metadata = dt.metadata()
        arrow = logical_schema(dt)
        fields = tuple(
            (
                f.name,
                f.metadata.get("delta.columnMapping.physicalName"),
                arrow.field(f.name).type,
                bool(f.nullable),
                _field_id(f.metadata.get("delta.columnMapping.id")),
            )
            for f in dt.schema().fields
        )
        actions = pa.table(dt.get_add_actions(flatten=False))
        features = frozenset(protocol.reader_features or ())
    except (DeltaError, OSError) as e:
        raise wrap_error(e, location=location, table=table, action="load a snapshot of") from e
    from meshsim.storage.deletion_vectors import active_descriptors

    # replayed whatever the protocol declares: a vector in a table that does not declare the
    # feature still deletes rows (deltalake applies it), and the snapshot refuses it by name
    descriptors = active_descriptors(location, dt.version(), table=table)
    deleted_counts: dict[str, int] | StorageError = {}
    try:
        deleted_counts = _deleted_counts(dt)
    except (DeltaError, OSError) as e:
        # raised by the snapshot only after meshsim's own decoding, whose errors name
        # the damaged file, found nothing wrong
        deleted_counts = wrap_error(
            e, location=location, table=table, action="read the deletion vectors of"
        )
    return TableState(
        location=location,
        version=dt.version(),
        fields=fields,
        partition_columns=tuple(metadata.partition_columns),
        configuration=dict(metadata.configuration or {}),
        min_reader_version=int(protocol.min_reader_version),
        reader_features=features,
        add_actions=actions,
        deletion_vectors=descriptors,
        deleted_counts=deleted_counts,
    )
