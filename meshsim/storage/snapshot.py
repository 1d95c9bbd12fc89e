"""Snapshots: one version of a Delta table, described without reading its data.

A :class:`Snapshot` lists the table's columns (logical and physical names, Delta types), its
partition columns and every active data file with decoded local path, typed partition values
and statistics, all keyed by logical column name. The query layer binds it to DuckDB with
:mod:`meshsim.storage.scan`.

What meshsim can read is declared once, in :data:`READER_FEATURES`; a table needing anything
else is refused with :class:`UnsupportedFeatureError` rather than read wrongly.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from meshsim.errors import StorageError, UnsupportedFeatureError, unknown_name_message

if TYPE_CHECKING:
    import pyarrow as pa
    from pyroaring import FrozenBitMap64

    from meshsim.storage.deletion_vectors import DeletionVectorDescriptor
    from meshsim.storage.delta import TableState

#: Delta reader features meshsim reads exactly, and how.
READER_FEATURES: dict[str, str] = {
    "columnMapping": "name mode by physical name, id mode by each file's Parquet field ids",
    "timestampNtz": "timestamp without time zone, read as DuckDB TIMESTAMP",
    "deletionVectors": "inline and file vectors decoded; deleted rows removed at the scan",
    "vacuumProtocolCheck": "only constrains vacuum; reads are unaffected",
    "v2Checkpoint": "deltalake lists the files; meshsim's deletion vector replay reads "
    "UUID-named JSON/Parquet checkpoints and their sidecars",
}
#: Column mapping modes meshsim reads exactly.
COLUMN_MAPPING_MODES = ("none", "name", "id")
#: Reader protocol versions meshsim understands (3 = explicit reader features).
MAX_READER_VERSION = 3


@dataclass(frozen=True)
class Column:
    """A table column: logical name, name in the Parquet files, Delta type as Arrow, and (in
    column mapping id mode) the Parquet field id the files store it under. With column
    mapping, the struct fields inside ``type`` carry their own physical names and ids in their
    Arrow field metadata (see :mod:`meshsim.storage.nested`)."""

    name: str
    physical_name: str
    type: pa.DataType
    nullable: bool
    field_id: int | None = None


@dataclass(frozen=True)
class DataFile:
    """An active data file. Statistics are keyed by logical column name and hold only the
    columns the writer recorded (Delta truncates timestamp statistics to milliseconds, so use
    them for pruning with that slack, never as values)."""

    path: str
    size: int
    num_records: int | None
    partition_values: dict[str, Any]
    min_values: dict[str, Any]
    max_values: dict[str, Any]
    null_counts: dict[str, int]
    deleted_rows: FrozenBitMap64 | None = None

    @property
    def live_records(self) -> int | None:
        """Rows the file holds for the table: stored rows minus deleted ones."""
        if self.num_records is None:
            return None
        return self.num_records - (len(self.deleted_rows) if self.deleted_rows else 0)


@dataclass(frozen=True)
class Snapshot:
    """One version of a table, ready to be bound to an engine."""

    table: str
    location: str
    version: int
    timestamp: datetime
    columns: tuple[Column, ...]
    partition_columns: tuple[str, ...]
    files: tuple[DataFile, ...]
    column_mapping_mode: str
    reader_features: frozenset[str]
    #: read under the names of this published version (an older version, time travelled to:
    #: :func:`meshsim.storage.published_names.named_as`); None: under its own names
    names_from: int | None = None
    #: published columns this version did not have: read as NULL, for row filters only
    absent: frozenset[str] = frozenset()

    @property
    def present_columns(self) -> tuple[Column, ...]:
        """The columns this version has (all but :attr:`absent`)."""
        return tuple(c for c in self.columns if c.name not in self.absent)

    @property
    def num_records(self) -> int | None:
        """Rows in the table, from file statistics less deleted rows (``None`` if a file has
        no statistics)."""
        counts = [f.live_records for f in self.files]
        if any(c is None for c in counts):
            return None
        return sum(c for c in counts if c is not None)

    def column(self, name: str) -> Column:
        """The column called ``name``, or a StorageError suggesting the closest one."""
        for c in self.columns:
            if c.name == name:
                return c
        raise StorageError(
            unknown_name_message("column", name, [c.name for c in self.columns]),
            table=self.table,
        )

    def arrow_schema(self) -> pa.Schema:
        """The logical Arrow schema (logical names, Delta types)."""
        import pyarrow as pa

        return pa.schema([pa.field(c.name, c.type, c.nullable) for c in self.columns])


def check_readable(state: TableState, table: str) -> str:
    """Refuse what meshsim cannot read exactly; return the column mapping mode."""
    if state.min_reader_version > MAX_READER_VERSION:
        raise UnsupportedFeatureError(
            table,
            f"readerVersion {state.min_reader_version}",
            f"meshsim reads reader versions up to {MAX_READER_VERSION}",
        )
    for feature in sorted(state.reader_features):
        if feature not in READER_FEATURES:
            raise UnsupportedFeatureError(
                table, feature, f"supported reader features: {', '.join(sorted(READER_FEATURES))}"
            )
    mode = state.configuration.get("delta.columnMapping.mode", "none")
    if mode not in COLUMN_MAPPING_MODES:
        raise UnsupportedFeatureError(
            table,
            "columnMapping",
            f"mode '{mode}'; meshsim reads modes {', '.join(COLUMN_MAPPING_MODES)}",
        )
    _check_declared(state, table, mode)
    return mode


def _declares(state: TableState, feature: str, since_version: int | None) -> bool:
    """Whether the protocol enables ``feature``: listed as a reader feature (reader version
    3), or implied by a reader version (``since_version``: 2 for column mapping)."""
    if state.min_reader_version >= 3:
        return feature in state.reader_features
    return since_version is not None and state.min_reader_version >= since_version


def _check_declared(state: TableState, table: str, mode: str) -> None:
    """Refuse a log that relies on a reader feature its protocol does not declare. Readers
    that follow the protocol disagree on such a table (deltalake applies an undeclared
    deletion vector; it reads an undeclared column mapping by logical names, as NULLs), so
    reading it either way could return deleted rows or another column's values."""
    from meshsim.storage.log import invalid_protocol

    declared = f"minReaderVersion {state.min_reader_version}"
    if state.min_reader_version >= 3:
        declared += f", readerFeatures [{', '.join(sorted(state.reader_features))}]"
    if state.deletion_vectors and not _declares(state, "deletionVectors", None):
        path = sorted(state.deletion_vectors)[0]
        raise invalid_protocol(
            table,
            state.location,
            f"the add action of '{os.path.basename(unquote(path))}' has a deletionVector, but "
            f"the protocol ({declared}) does not declare the reader feature 'deletionVectors'",
        )
    if mode != "none" and not _declares(state, "columnMapping", 2):
        raise invalid_protocol(
            table,
            state.location,
            f"the metadata sets delta.columnMapping.mode '{mode}', but the protocol "
            f"({declared}) does not declare the reader feature 'columnMapping'",
        )


def _check_single_adds(state: TableState, paths: list[str], table: str) -> None:
    """A file live twice (added again without a remove) is read twice by deltalake, without
    its deletion vector, and once by Spark: readers disagree, so any answer may be wrong."""
    from collections import Counter

    from meshsim.storage.log import invalid_protocol

    twice = sorted(path for path, n in Counter(paths).items() if n > 1)
    if twice:
        raise invalid_protocol(
            table,
            state.location,
            f"data file '{os.path.basename(unquote(twice[0]))}' is added twice without a "
            f"remove in between" + (f" (and {len(twice) - 1} more)" if len(twice) > 1 else ""),
        )


def _local_path(location: str, path: str, table: str) -> str:
    """The decoded absolute path of an add action's ``path`` (relative URL-encoded, or URL)."""
    if "://" in path or path.startswith("file:"):
        url = urlparse(path)
        if url.scheme != "file":
            raise StorageError(
                f"table '{table}' references a non-local file '{path}'; meshsim reads local "
                f"tables only",
                table=table,
            )
        return os.path.normpath(unquote(url.path))
    return os.path.normpath(os.path.join(location, unquote(path)))


def _by_logical(values: dict[str, Any] | None, to_logical: dict[str, str]) -> dict[str, Any]:
    if not values:
        return {}
    out = {}
    for key, value in values.items():
        name = to_logical.get(key)
        if name is not None and value is not None:
            out[name] = value
    return out


def _column(
    field: tuple[str, str | None, pa.DataType, bool, int | None], mode: str, table: str
) -> Column:
    name, physical, dtype, nullable, field_id = field
    if mode == "id" and field_id is None:
        raise UnsupportedFeatureError(
            table,
            "columnMapping",
            f"mode 'id' but column '{name}' has no delta.columnMapping.id to map it by",
        )
    return Column(
        name,
        physical if mode in ("name", "id") and physical else name,
        dtype,
        nullable,
        field_id if mode == "id" else None,
    )


def _check_vectors_match(state: TableState, paths: set[str], table: str) -> None:
    """meshsim replays the log for deletion vectors itself; refuse if its replay names a file
    deltalake does not hold active (a disagreement would mean rows read wrongly)."""
    stray = sorted(set(state.deletion_vectors) - paths)
    if stray:
        raise StorageError(
            f"table '{table}' version {state.version}: the log gives a deletion vector for "
            f"'{os.path.basename(unquote(stray[0]))}', which is not an active file",
            table=table,
            hint="the log is inconsistent; rewrite the table with the tool that wrote it",
        )


def _check_deleted_counts(state: TableState, files: list[DataFile], table: str) -> None:
    """Refuse unless every file loses exactly the rows deltalake's own reader removes."""
    if isinstance(state.deleted_counts, StorageError):
        raise state.deleted_counts
    theirs = {_local_path(state.location, uri, table): n for uri, n in state.deleted_counts.items()}
    for f in files:
        ours = len(f.deleted_rows) if f.deleted_rows else 0
        if ours != theirs.get(f.path, 0):
            raise StorageError(
                f"table '{table}' version {state.version}: meshsim decodes {ours} deleted "
                f"row(s) for '{os.path.basename(f.path)}', deltalake {theirs.get(f.path, 0)}; "
                f"refusing rather than returning rows one of them gets wrong",
                table=table,
                hint="report it with the table's _delta_log; rewriting the table in the "
                "writing engine (OPTIMIZE, or purging deletion vectors) avoids it",
            )


def _deleted_rows(location: str, vector: DeletionVectorDescriptor, table: str) -> FrozenBitMap64:
    from pyroaring import FrozenBitMap64

    from meshsim.storage.deletion_vectors import deleted_rows

    return FrozenBitMap64(deleted_rows(location, vector, table=table))


def build_snapshot(state: TableState, *, table: str, timestamp: datetime) -> Snapshot:
    """A :class:`Snapshot` from a loaded :class:`TableState` (checks readability first)."""
    import pyarrow as pa

    mode = check_readable(state, table)
    for name, _, dtype, _, _ in state.fields:
        if name in state.partition_columns and (
            pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype)
        ):
            raise StorageError(
                f"table '{table}': partition column '{name}' is binary, and deltalake decodes "
                f"binary partition values wrongly; refusing rather than returning wrong rows",
                table=table,
                hint=f"rewrite the table without partitioning by '{name}'",
            )
    columns = tuple(_column(field, mode, table) for field in state.fields)
    # deltalake's add actions key partition values by logical name and statistics by
    # physical name; with column mapping one column's physical name can be another's
    # logical name (after a swap), so each is mapped by its own kind of key, never both
    partition_names = {c.physical_name: c.name for c in columns}
    partition_names.update({c.name: c.name for c in columns})
    to_logical = {c.name: c.name for c in columns}
    to_logical.update({c.physical_name: c.name for c in columns})
    files = []
    rows = state.add_actions.to_pylist()
    _check_single_adds(state, [row["path"] for row in rows], table)
    _check_vectors_match(state, {row["path"] for row in rows}, table)
    for row in rows:
        partitions = row.get("partition") or {}
        vector = state.deletion_vectors.get(row["path"])
        files.append(
            DataFile(
                path=_local_path(state.location, row["path"], table),
                size=int(row["size_bytes"]),
                num_records=row.get("num_records"),
                # Every partition column is present; None is a null partition value.
                partition_values={partition_names.get(k, k): v for k, v in partitions.items()},
                min_values=_by_logical(row.get("min"), to_logical),
                max_values=_by_logical(row.get("max"), to_logical),
                null_counts=_by_logical(row.get("null_count"), to_logical),
                deleted_rows=_deleted_rows(state.location, vector, table) if vector else None,
            )
        )
    _check_deleted_counts(state, files, table)
    for f in files:
        missing = set(state.partition_columns) - set(f.partition_values)
        if missing:
            raise StorageError(
                f"table '{table}': file '{f.path}' has no value for partition column(s) "
                f"{', '.join(sorted(missing))}; the log is inconsistent",
                table=table,
            )
    return Snapshot(
        table=table,
        location=state.location,
        version=state.version,
        timestamp=timestamp,
        columns=columns,
        partition_columns=tuple(state.partition_columns),
        files=tuple(files),
        column_mapping_mode=mode,
        reader_features=state.reader_features,
    )


def load_snapshot(
    path: str | Path,
    *,
    table: str,
    version: int | None = None,
    timestamp: datetime | None = None,
) -> Snapshot:
    """The snapshot of ``table`` at ``version``, at ``timestamp`` (newest version committed at
    or before it), or latest."""
    from meshsim.storage import delta

    location = delta.location_of(path, table=table)
    v = delta.resolve_version(location, table=table, version=version, timestamp=timestamp)
    state = delta.load_state(location, table=table, version=v)
    when = delta.commit_timestamp(location, state.version, table=table)
    return build_snapshot(state, table=table, timestamp=when)


class SnapshotCache:
    """Snapshots keyed by (location, version, identity of that version's log file).

    Every :meth:`get` asks the cheap :func:`meshsim.storage.log.latest_version` whether the
    cached latest is still current; the log file's identity tells a table deleted and rebuilt
    to the same version apart from the one cached. A snapshot's data files are checked when it
    is loaded (present, of the logged size, with a readable Parquet footer) and again, by size
    only, on every later get, so a damaged file is an error naming the table and the file
    rather than an engine failure naming neither.
    """

    def __init__(self, max_entries: int = 64) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[tuple[Any, ...], Snapshot] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(
        self,
        path: str | Path,
        *,
        table: str,
        version: int | None = None,
        timestamp: datetime | None = None,
    ) -> Snapshot:
        """The snapshot at ``version``/``timestamp``/latest, loaded at most once per version."""
        from meshsim.storage import log
        from meshsim.storage.files import require_files

        location = log.location_of(path, table=table)
        if version is None and timestamp is None:
            v = log.latest_version(location, table=table)
        else:
            v = log.resolve_version(location, table=table, version=version, timestamp=timestamp)
        key = (location, v, log.commit_fingerprint(location, v))
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                self.hits += 1
        if cached is None:
            cached = load_snapshot(location, table=table, version=v)
            require_files(cached)
            with self._lock:
                self.misses += 1
                self._entries[key] = cached
                while len(self._entries) > self._max_entries:
                    self._entries.popitem(last=False)
        else:
            if cached.table != table:
                cached = dataclasses.replace(cached, table=table)
            require_files(cached, footers=False)
        return cached

    def clear(self) -> None:
        """Forget every cached snapshot."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
