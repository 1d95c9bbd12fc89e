"""A tiny Delta writer for the test corpus: what deltalake 1.6.6 cannot write.

deltalake writes neither deletion vectors nor column mapping in id mode, and no Spark is
installed here, so these helpers write such tables the way the Delta protocol
(delta-io/delta ``PROTOCOL.md``) describes them: Parquet data files with pyarrow, deletion
vector files and inline vectors in the protocol's format, and one commit JSON per version
with ``protocol``, ``metaData``, ``add`` and ``remove`` actions. Every table a test builds
with them has its expected rows written next to it in the test, and deltalake's own reader
(which does read both features) is the independent check of the files these helpers write.
"""

from __future__ import annotations

import json
import os
import struct
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq
from pyroaring import BitMap64

from meshsim.storage.deletion_vectors import PORTABLE_MAGIC, Z85_ALPHABET

#: Arrow type -> Delta schema type name (the flat types the corpus uses).
DELTA_TYPES = {
    pa.int64(): "long",
    pa.int32(): "integer",
    pa.int16(): "short",
    pa.int8(): "byte",
    pa.string(): "string",
    pa.float64(): "double",
    pa.bool_(): "boolean",
    pa.date32(): "date",
    pa.timestamp("us", tz="UTC"): "timestamp",
    pa.timestamp("us"): "timestamp_ntz",
}


def delta_type(dtype: pa.DataType, metadata: Any = None) -> Any:
    """The Delta schema type of ``dtype`` (nested types as JSON objects); ``metadata(path)``
    gives each nested struct field's metadata (its path is the field names joined by dots)."""
    return _delta_type(dtype, "", metadata or (lambda path: {}))


def _delta_type(dtype: pa.DataType, path: str, metadata: Any) -> Any:
    if pa.types.is_struct(dtype):
        fields = []
        for f in dtype:
            child = f"{path}.{f.name}"
            fields.append(
                {
                    "name": f.name,
                    "type": _delta_type(f.type, child, metadata),
                    "nullable": True,
                    "metadata": metadata(child),
                }
            )
        return {"type": "struct", "fields": fields}
    if pa.types.is_list(dtype):
        element = _delta_type(dtype.value_type, path, metadata)
        return {"type": "array", "elementType": element, "containsNull": True}
    if pa.types.is_map(dtype):
        return {
            "type": "map",
            "keyType": _delta_type(dtype.key_type, path, metadata),
            "valueType": _delta_type(dtype.item_type, path, metadata),
            "valueContainsNull": True,
        }
    return DELTA_TYPES[dtype]


def z85_encode(data: bytes) -> str:
    """Z85 of ``data`` (its length a multiple of 4), as Delta encodes inline vectors/UUIDs."""
    assert len(data) % 4 == 0
    out = []
    for start in range(0, len(data), 4):
        value = int.from_bytes(data[start : start + 4], "big")
        chunk = []
        for _ in range(5):
            chunk.append(Z85_ALPHABET[value % 85])
            value //= 85
        out.extend(reversed(chunk))
    return "".join(out)


def serialized_vector(rows: list[int]) -> bytes:
    """A RoaringBitmapArray: the portable magic number, then a 64-bit portable bitmap."""
    return struct.pack("<I", PORTABLE_MAGIC) + BitMap64(rows).serialize()


def inline_vector(rows: list[int]) -> dict[str, Any]:
    """A ``deletionVector`` descriptor with the bitmap inline (storageType ``i``)."""
    data = serialized_vector(rows)
    padded = data + b"\0" * (-len(data) % 4)
    return {
        "storageType": "i",
        "pathOrInlineDv": z85_encode(padded),
        "sizeInBytes": len(data),
        "cardinality": len(rows),
    }


def vector_file(
    root: Path, vectors: list[list[int]], *, prefix: str = "", absolute: bool = False
) -> list[dict[str, Any]]:
    """Write one deletion vector file holding ``vectors`` and return a descriptor for each.

    The file is a version byte, then per vector: its size (big-endian), the bitmap, and the
    CRC-32 of the bitmap (big-endian). Relative descriptors (``u``) carry the optional folder
    ``prefix`` and the file's UUID in Z85; absolute ones (``p``) a ``file://`` URI.
    """
    file_id = uuid.UUID(int=zlib.crc32(repr((str(root), vectors, prefix)).encode()) << 96 | 42)
    folder = root / prefix if prefix else root
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"deletion_vector_{file_id}.bin"
    body = bytearray(b"\x01")
    descriptors = []
    for rows in vectors:
        data = serialized_vector(rows)
        descriptors.append(
            {
                "storageType": "p" if absolute else "u",
                "pathOrInlineDv": path.as_uri() if absolute else prefix + z85_encode(file_id.bytes),
                "offset": len(body),
                "sizeInBytes": len(data),
                "cardinality": len(rows),
            }
        )
        body += struct.pack(">I", len(data)) + data + struct.pack(">I", zlib.crc32(data))
    path.write_bytes(bytes(body))
    return descriptors


@dataclass
class HandTable:
    """A Delta table written action by action; :meth:`commit` writes the next version."""

    root: Path
    schema: pa.Schema
    partition_columns: list[str] = field(default_factory=list)
    column_mapping: str = "none"  # "name"/"id": physical names and ids on every field
    reader_features: list[str] = field(default_factory=lambda: ["deletionVectors"])
    #: 3 lists ``reader_features``; 1 or 2 declares none (as tables before features do)
    min_reader_version: int = 3
    version: int = -1
    schema_changed: bool = False

    def physical(self, name: str) -> str:
        """The physical name of a top-level column or (by its dotted path) nested field."""
        return f"col-{name}" if self.column_mapping != "none" else name.rsplit(".", 1)[-1]

    def field_id(self, name: str) -> int:
        """Top-level columns count from 1; a nested field's id, from its path, stays the same
        when the schema evolves."""
        if "." not in name:
            return self.schema.names.index(name) + 1
        return 1000 + zlib.crc32(name.encode()) % 1_000_000

    def evolve(self, schema: pa.Schema) -> None:
        """Change the schema (the next commit logs the new metadata)."""
        self.schema = schema
        self.schema_changed = True

    def _metadata(self, path: str) -> dict[str, Any]:
        if self.column_mapping == "none":
            return {}
        name = path.lstrip(".")
        return {
            "delta.columnMapping.id": self.field_id(name),
            "delta.columnMapping.physicalName": self.physical(name),
        }

    def schema_string(self) -> str:
        return json.dumps(delta_type(pa.struct(list(self.schema)), self._metadata))

    def stored_type(self, dtype: pa.DataType, path: str, *, rename: bool) -> pa.DataType:
        """``dtype`` as the Parquet files store it: struct fields under physical names (or,
        ``rename``, other names only their ids match) with their field ids in id mode."""
        if pa.types.is_struct(dtype):
            fields = []
            for f in dtype:
                child = f"{path}.{f.name}"
                name = f.name if self.column_mapping == "none" else self.physical(child)
                name += "-renamed" if rename else ""
                metadata = None
                if self.column_mapping == "id":
                    metadata = {b"PARQUET:field_id": str(self.field_id(child)).encode()}
                inner = self.stored_type(f.type, child, rename=rename)
                fields.append(pa.field(name, inner, metadata=metadata))
            return pa.struct(fields)
        if pa.types.is_list(dtype):
            return pa.list_(self.stored_type(dtype.value_type, path, rename=rename))
        if pa.types.is_map(dtype):
            key = self.stored_type(dtype.key_type, path, rename=rename)
            return pa.map_(key, self.stored_type(dtype.item_type, path, rename=rename))
        return dtype

    def data_file(
        self,
        data: pa.Table,
        partition: dict[str, str | None] | None = None,
        *,
        name: str | None = None,
        file_columns: dict[str, str] | None = None,
        field_ids: bool = True,
        escape_folder: bool = True,
        rename_nested: bool = False,
    ) -> dict[str, Any]:
        """Write ``data`` (its non-partition columns) as Parquet; return its add action.

        In id mode the file's columns carry ``PARQUET:field_id``; ``file_columns`` renames
        columns inside the file (as a table converted from Iceberg may have them), so only
        the ids can map them (``rename_nested`` does so for nested fields). Partition folders are Hive-escaped as delta-rs writes them, or
        (``escape_folder=False``) left as the value, as Spark does for spaces and ``@``.
        """
        partition = partition or {}
        stored = data.drop_columns([c for c in self.partition_columns if c in data.column_names])
        fields = []
        for f in stored.schema:
            physical = (file_columns or {}).get(f.name, self.physical(f.name))
            metadata = None
            if self.column_mapping == "id" and field_ids:
                metadata = {b"PARQUET:field_id": str(self.field_id(f.name)).encode()}
            dtype = self.stored_type(f.type, f.name, rename=rename_nested)
            fields.append(pa.field(physical, dtype, metadata=metadata))
        columns = [
            pa.array([_stored_value(v, c.type, f.type) for v in c.to_pylist()], f.type)
            for c, f in zip(stored.columns, fields, strict=True)
        ]
        stored = pa.Table.from_arrays(columns, schema=pa.schema(fields))
        folder = "/".join(
            f"{k}={quote(str(v), safe='') if escape_folder else v}" for k, v in partition.items()
        )
        file_name = name or f"part-{self.version + 1:05d}-{len(os.listdir(self.root))}.parquet"
        relative = f"{folder}/{file_name}" if folder else file_name
        (self.root / relative).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(stored, self.root / relative)
        return {
            "path": quote(relative),  # add.path is a URI: the folder's escapes escaped again
            # keyed by physical name, as the protocol says for column-mapped tables
            "partitionValues": {self.physical(k): v for k, v in partition.items()},
            "size": (self.root / relative).stat().st_size,
            "modificationTime": 1_700_000_000_000,
            "dataChange": True,
            "stats": json.dumps({"numRecords": data.num_rows}),
        }

    def commit(self, *actions: dict[str, Any]) -> int:
        """Write the next version: protocol and metadata first (version 0), then ``actions``
        (``{"add": ...}``, ``{"remove": ...}``)."""
        self.version += 1
        lines: list[dict[str, Any]] = [
            {"commitInfo": {"timestamp": 1_700_000_000_000 + self.version, "operation": "WRITE"}}
        ]
        if self.version == 0 or self.schema_changed:
            self.schema_changed = False
            configuration = {}
            if self.column_mapping != "none":
                configuration["delta.columnMapping.mode"] = self.column_mapping
                configuration["delta.columnMapping.maxColumnId"] = str(2_000_000)
            features = list(self.reader_features)
            if self.column_mapping != "none":
                features.append("columnMapping")
            protocol: dict[str, Any] = {"minReaderVersion": self.min_reader_version}
            if self.min_reader_version >= 3:
                protocol |= {
                    "minWriterVersion": 7,
                    "readerFeatures": features,
                    "writerFeatures": features,
                }
            else:
                protocol["minWriterVersion"] = 5 if self.min_reader_version == 2 else 2
            lines.append({"protocol": protocol})
            lines.append(
                {
                    "metaData": {
                        "id": "00000000-0000-0000-0000-000000000001",
                        "format": {"provider": "parquet", "options": {}},
                        "schemaString": self.schema_string(),
                        "partitionColumns": self.partition_columns,
                        "configuration": configuration,
                        "createdTime": 1_700_000_000_000,
                    }
                }
            )
        lines.extend(actions)
        log = self.root / "_delta_log"
        log.mkdir(parents=True, exist_ok=True)
        text = "\n".join(json.dumps(line) for line in lines) + "\n"
        (log / f"{self.version:020d}.json").write_text(text)
        return self.version


def _stored_value(value: Any, logical: pa.DataType, stored: pa.DataType) -> Any:
    """A Python value of ``logical`` type with its struct keys renamed as ``stored`` has them."""
    if value is None:
        return None
    if pa.types.is_struct(logical):
        return {
            s.name: _stored_value(value.get(f.name), f.type, s.type)
            for f, s in zip(logical, stored, strict=True)
        }
    if pa.types.is_list(logical):
        return [_stored_value(v, logical.value_type, stored.value_type) for v in value]
    if pa.types.is_map(logical):
        return [
            (
                _stored_value(k, logical.key_type, stored.key_type),
                _stored_value(v, logical.item_type, stored.item_type),
            )
            for k, v in value
        ]
    return value


_VECTOR = pa.struct(
    [
        ("storageType", pa.string()),
        ("pathOrInlineDv", pa.string()),
        ("offset", pa.int32()),
        ("sizeInBytes", pa.int32()),
        ("cardinality", pa.int64()),
    ]
)
_ADD = pa.struct(
    [
        ("path", pa.string()),
        ("partitionValues", pa.map_(pa.string(), pa.string())),
        ("size", pa.int64()),
        ("modificationTime", pa.int64()),
        ("dataChange", pa.bool_()),
        ("stats", pa.string()),
        ("deletionVector", _VECTOR),
    ]
)


def v2_checkpoint(table: HandTable, adds: list[dict[str, Any]]) -> None:
    """A V2 checkpoint of ``table``'s latest version: a UUID-named JSON file with the
    ``checkpointMetadata``, protocol and metadata, and one sidecar (``_delta_log/_sidecars``)
    holding the active ``adds``; then the commits it covers are deleted, so readers must use
    it."""
    log = table.root / "_delta_log"
    (log / "_sidecars").mkdir(exist_ok=True)
    rows = []
    for action in adds:
        body = dict(action["add"])
        body["partitionValues"] = list(body["partitionValues"].items())
        if "deletionVector" in body:
            body["deletionVector"] = {"offset": None, **body["deletionVector"]}
        rows.append(body)
    sidecar = f"{uuid.UUID(int=table.version + 7)}.parquet"
    pq.write_table(pa.table({"add": pa.array(rows, _ADD)}), log / "_sidecars" / sidecar)
    first = [json.loads(line) for line in (log / f"{0:020d}.json").read_text().splitlines()]
    lines = [{"checkpointMetadata": {"version": table.version}}]
    lines += [a for a in first if "protocol" in a or "metaData" in a]
    size = (log / "_sidecars" / sidecar).stat().st_size
    lines.append({"sidecar": {"path": sidecar, "sizeInBytes": size, "modificationTime": 1}})
    name = f"{table.version:020d}.checkpoint.{uuid.UUID(int=table.version + 9)}.json"
    (log / name).write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    (log / "_last_checkpoint").write_text(json.dumps({"version": table.version, "size": 4}))
    for version in range(table.version + 1):
        (log / f"{version:020d}.json").unlink()


def add(action: dict[str, Any], vector: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"add": action}``, with a deletion vector if given."""
    body = dict(action)
    if vector is not None:
        body["deletionVector"] = vector
    return {"add": body}


def remove(action: dict[str, Any]) -> dict[str, Any]:
    """The remove action for an add action (with its deletion vector, the file's key)."""
    body = {"path": action["path"], "deletionTimestamp": 1_700_000_000_000, "dataChange": True}
    if "deletionVector" in action:
        body["deletionVector"] = action["deletionVector"]
    return {"remove": body}
