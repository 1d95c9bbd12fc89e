"""Deletion vectors: which rows of a data file a Delta table has deleted without rewriting it.

The Delta protocol ("Deletion Vectors" in delta-io/delta ``PROTOCOL.md``) stores, on an add
action, a descriptor pointing at a RoaringBitmapArray of 0-based row indexes of the file:

- ``storageType`` ``i``: the bitmap inline, Z85-encoded, in ``pathOrInlineDv``;
- ``u``: in a file under the table root, ``<prefix>/deletion_vector_<uuid>.bin``, where
  ``pathOrInlineDv`` is the prefix followed by the UUID's 16 bytes Z85-encoded (20 chars);
- ``p``: in a file at the absolute URI ``pathOrInlineDv``.

A deletion vector file is a version byte (1), then at ``offset`` per vector: its size
(big-endian uint32), the bitmap, and a CRC-32 of the bitmap (big-endian). A bitmap is the
magic number 1681511377 (little-endian) and a 64-bit Roaring bitmap in the portable format
(CRoaring's ``roaring64`` and Java's ``Roaring64NavigableMap``/``RoaringTreemap``), which
``pyroaring.BitMap64`` reads.

``deltalake`` 1.6.6 applies deletion vectors in its own engine but exposes neither the
descriptors nor the row indexes cheaply, so :func:`active_descriptors` replays the log
(checkpoint, then commits) for them, and :func:`deleted_rows` decodes one.
"""

from __future__ import annotations

import json
import os
import re
import struct
import uuid
import zlib
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, ConfigDict

from meshsim.errors import StorageError

if TYPE_CHECKING:
    from pyroaring import BitMap64

Z85_ALPHABET = (
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
)
_Z85_VALUE = {c: i for i, c in enumerate(Z85_ALPHABET)}
#: First four bytes of a RoaringBitmapArray in the portable format.
PORTABLE_MAGIC = 1681511377
#: The native format (Delta's own 32-bit array); no writer we know of uses it on disk.
NATIVE_MAGIC = 1681511376
_CHECKPOINT = re.compile(
    r"^(\d{20})\.checkpoint(?:\.(\d{10})\.(\d{10}))?(?:\.[^.]+)?\.(parquet|json)$"
)
_COMMIT = re.compile(r"^(\d{20})\.json$")


class DeletionVectorDescriptor(BaseModel):
    """The ``deletionVector`` field of an add action, as the protocol defines it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    storageType: Literal["i", "u", "p"]
    pathOrInlineDv: str
    offset: int | None = None
    sizeInBytes: int
    cardinality: int

    @property
    def unique_id(self) -> str:
        """Identifies the vector in the log (with the file path, the key of an add action)."""
        suffix = f"@{self.offset}" if self.offset is not None else ""
        return f"{self.storageType}{self.pathOrInlineDv}{suffix}"


def z85_decode(text: str) -> bytes:
    """Z85 (ZeroMQ's base 85) text to bytes; 5 characters give 4 bytes.

    >>> z85_decode("HelloWorld")
    b'\\x86O\\xd2o\\xb5Y\\xf7['
    """
    if len(text) % 5:
        raise ValueError(f"Z85 text has {len(text)} characters, not a multiple of 5")
    out = bytearray()
    for start in range(0, len(text), 5):
        value = 0
        for char in text[start : start + 5]:
            if char not in _Z85_VALUE:
                raise ValueError(f"'{char}' is not a Z85 character")
            value = value * 85 + _Z85_VALUE[char]
        if value >= 1 << 32:
            raise ValueError(f"Z85 group '{text[start : start + 5]}' is out of range")
        out += value.to_bytes(4, "big")
    return bytes(out)


def _problem(table: str, what: str, detail: str) -> StorageError:
    return StorageError(
        f"table '{table}': deletion vector {what} cannot be read: {detail}",
        table=table,
        hint="the table's log or deletion vector files are damaged; rewrite the table with the "
        "tool that wrote it (or restore the files), then run 'meshsim doctor'",
    )


def vector_path(location: str, descriptor: DeletionVectorDescriptor, table: str) -> str | None:
    """The local file holding the vector (``None`` when inline)."""
    text = descriptor.pathOrInlineDv
    if descriptor.storageType == "i":
        return None
    if descriptor.storageType == "p":
        url = urlparse(text)
        if url.scheme not in ("file", ""):
            raise StorageError(
                f"table '{table}' has a deletion vector in non-local storage ('{url.scheme}'); "
                f"meshsim reads local tables only",
                table=table,
            )
        return os.path.normpath(unquote(url.path))
    if len(text) < 20:
        raise _problem(table, f"'{text}'", "a 'u' path needs a 20-character encoded UUID")
    prefix, encoded = text[:-20], text[-20:]
    try:
        name = f"deletion_vector_{uuid.UUID(bytes=z85_decode(encoded))}.bin"
    except ValueError as exc:
        raise _problem(table, f"'{text}'", str(exc)) from None
    return os.path.normpath(os.path.join(location, prefix, name))


def _portable_bitmap(data: bytes, table: str, what: str) -> BitMap64:
    from pyroaring import BitMap64

    if len(data) < 4:
        raise _problem(table, what, "it is shorter than its magic number")
    magic = int.from_bytes(data[:4], "little")
    if magic == NATIVE_MAGIC:
        raise StorageError(
            f"table '{table}': deletion vector {what} uses the native bitmap format, which "
            f"meshsim does not read (only the portable format)",
            table=table,
        )
    if magic != PORTABLE_MAGIC:
        raise _problem(table, what, f"unknown magic number {magic}")
    try:
        return BitMap64.deserialize(data[4:])
    except (ValueError, OverflowError) as exc:
        raise _problem(table, what, f"the bitmap is malformed ({exc})") from None


def deleted_rows(location: str, descriptor: DeletionVectorDescriptor, *, table: str) -> BitMap64:
    """The 0-based row indexes the vector deletes, checked against its size, checksum and
    cardinality."""
    path = vector_path(location, descriptor, table)
    if path is None:
        what = "inline"
        try:
            data = z85_decode(descriptor.pathOrInlineDv)[: descriptor.sizeInBytes]
        except ValueError as exc:
            raise _problem(table, what, str(exc)) from None
    else:
        what = f"file '{os.path.basename(path)}'"
        data = _read_vector_file(path, descriptor, table, what)
    bitmap = _portable_bitmap(data, table, what)
    if len(bitmap) != descriptor.cardinality:
        raise _problem(
            table, what, f"it holds {len(bitmap)} rows, the log says {descriptor.cardinality}"
        )
    return bitmap


def _read_vector_file(
    path: str, descriptor: DeletionVectorDescriptor, table: str, what: str
) -> bytes:
    offset = descriptor.offset if descriptor.offset is not None else 1
    try:
        with open(path, "rb") as f:
            version = f.read(1)
            f.seek(offset)
            header = f.read(4)
            size = int.from_bytes(header, "big") if len(header) == 4 else -1
            data = f.read(max(size, 0))
            checksum = f.read(4)
    except FileNotFoundError:
        raise _problem(table, what, "the file is missing") from None
    except OSError as exc:
        raise _problem(table, what, (exc.strerror or str(exc)).lower()) from None
    if version != b"\x01":
        raise _problem(table, what, f"unknown format version {version!r}")
    if size != descriptor.sizeInBytes or len(data) != size or len(checksum) != 4:
        raise _problem(
            table, what, f"the vector at offset {offset} is truncated or not of the logged size"
        )
    if zlib.crc32(data) != struct.unpack(">I", checksum)[0]:
        raise _problem(table, what, "its checksum does not match")
    return data


# -- log replay ------------------------------------------------------------------------------


def _checkpoint_files(log: str, version: int) -> tuple[int, list[str]] | None:
    """The newest complete checkpoint at or before ``version``: (its version, its files)."""
    found: dict[int, list[tuple[re.Match[str], str]]] = {}
    for name in os.listdir(log):
        m = _CHECKPOINT.match(name)
        if m and int(m.group(1)) <= version:
            found.setdefault(int(m.group(1)), []).append((m, name))
    for v in sorted(found, reverse=True):
        entries = found[v]
        singles = [n for m, n in entries if m.group(2) is None]
        if singles:
            return v, [os.path.join(log, sorted(singles)[0])]
        parts = {int(m.group(2)): n for m, n in entries}
        total = int(entries[0][0].group(3))
        if len(parts) == total and set(parts) == set(range(1, total + 1)):
            return v, [os.path.join(log, parts[i]) for i in sorted(parts)]
    return None


def _checkpoint_actions(log: str, path: str) -> list[dict[str, Any]]:
    """The add and remove actions (and v2 sidecars, followed) of one checkpoint file."""
    if path.endswith(".json"):
        with open(path, encoding="utf-8") as f:
            actions = [json.loads(line) for line in f if line.strip()]
    else:
        actions = _parquet_actions(path)
    out = []
    for action in actions:
        sidecar = action.get("sidecar")
        if sidecar:
            out.extend(_parquet_actions(os.path.join(log, "_sidecars", unquote(sidecar["path"]))))
        elif action.get("add") or action.get("remove"):
            out.append(action)
    return out


def _parquet_actions(path: str) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    wanted = [n for n in ("add", "remove", "sidecar") if n in pq.read_schema(path).names]
    rows = pq.read_table(path, columns=wanted).to_pylist()
    return [{k: v for k, v in row.items() if v is not None} for row in rows]


def _apply(
    active: dict[tuple[str, str], DeletionVectorDescriptor | None], action: dict[str, Any]
) -> None:
    for kind in ("remove", "add"):
        body = action.get(kind)
        if not body:
            continue
        raw = body.get("deletionVector")
        descriptor = DeletionVectorDescriptor.model_validate(raw) if raw else None
        key = (body["path"], descriptor.unique_id if descriptor else "")
        if kind == "add":
            active[key] = descriptor
        else:
            active.pop(key, None)


def active_descriptors(
    location: str, version: int, *, table: str
) -> dict[str, DeletionVectorDescriptor]:
    """``add.path`` (as logged) -> deletion vector, for every active file that has one at
    ``version``: the newest checkpoint at or before it, then the commits after it, with add
    and remove actions reconciled by (path, deletion vector id) as the protocol says."""
    from pydantic import ValidationError

    log = os.path.join(location, "_delta_log")
    active: dict[tuple[str, str], DeletionVectorDescriptor | None] = {}
    try:
        checkpoint = _checkpoint_files(log, version)
        start = 0
        if checkpoint is not None:
            start = checkpoint[0] + 1
            for path in checkpoint[1]:
                for action in _checkpoint_actions(log, path):
                    if action.get("add"):  # a checkpoint's removes are tombstones only
                        _apply(active, {"add": action["add"]})
        for v in range(start, version + 1):
            with open(os.path.join(log, f"{v:020d}.json"), encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        _apply(active, json.loads(line))
    except ValidationError as exc:
        raise _problem(table, "descriptor", str(exc).splitlines()[0]) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _problem(table, f"log at version {version}", str(exc)) from None
    paths: dict[str, DeletionVectorDescriptor] = {}
    for (path, _), descriptor in active.items():
        if descriptor is not None:
            paths[path] = descriptor
    return paths
