"""A log that uses a reader feature its protocol does not declare is an invalid Delta protocol:
refused by name, never read as if the feature were not there (which would return rows the
log deletes, or values of the wrong column)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from meshsim.errors import StorageError
from meshsim.storage import delta
from meshsim.storage.snapshot import SnapshotCache, load_snapshot
from tests.storage.conftest import sorted_rows
from tests.storage.corpus import HandTable, add, inline_vector, remove, vector_file

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string())])


def people(ids: list[int]) -> pa.Table:
    return pa.table({"id": ids, "name": [f"n{i}" for i in ids]}, schema=SCHEMA)


def _deleted_later(root: Path, reader_version: int, features: list[str], kind: str) -> HandTable:
    """Version 0 adds 12 rows; version 1 deletes three of them with a deletion vector (a
    remove and an add of the same file), the protocol left as it was."""
    table = HandTable(root, SCHEMA, reader_features=features, min_reader_version=reader_version)
    root.mkdir()
    action = table.data_file(people(list(range(12))), name="f.parquet")
    table.commit(add(action))
    if kind == "inline":
        vector = inline_vector([0, 1, 2])
    else:
        (vector,) = vector_file(root, [[0, 1, 2]], prefix="dv")
    table.commit(remove(action), add(action, vector))
    return table


@pytest.mark.parametrize(
    "reader_version, features",
    [(1, []), (2, []), (3, ["timestampNtz"])],
    ids=["reader-v1", "reader-v2", "reader-v3-other-feature"],
)
@pytest.mark.parametrize("kind", ["inline", "file"])
def test_a_deletion_vector_the_protocol_does_not_declare_is_refused(
    tmp_path, reader_version, features, kind
):
    table = _deleted_later(tmp_path / "t", reader_version, features, kind)
    # the vector does change which rows are live: deltalake's own reader applies it
    assert sorted_rows(delta.read_table(table.root, table="t")) == sorted_rows(
        people(list(range(3, 12)))
    )
    for read in (
        lambda: load_snapshot(table.root, table="sales.t"),
        lambda: SnapshotCache().get(table.root, table="sales.t"),
    ):
        with pytest.raises(StorageError) as info:
            read()
        message = str(info.value)
        assert "table 'sales.t'" in message and "invalid Delta protocol" in message
        assert "'f.parquet'" in message and "deletionVector" in message
        assert "does not declare the reader feature 'deletionVectors'" in message
    # the version before the vector is valid and reads all 12 rows
    assert load_snapshot(table.root, table="t", version=0).num_records == 12


def test_a_declared_deletion_vector_feature_still_reads(tmp_path):
    table = _deleted_later(tmp_path / "t", 3, ["deletionVectors"], "inline")
    assert load_snapshot(table.root, table="t").num_records == 9


@pytest.mark.parametrize(
    "reader_version, features",
    [(1, []), (3, ["deletionVectors"])],
    ids=["reader-v1", "reader-v3-without-columnMapping"],
)
def test_column_mapping_the_protocol_does_not_declare_is_refused(
    tmp_path, reader_version, features
):
    # readers that follow the protocol read such a table by its logical names (deltalake
    # returns NULLs), meshsim by its physical ones: neither answer can be trusted
    table = HandTable(
        tmp_path / "t",
        SCHEMA,
        column_mapping="name",
        reader_features=features,
        min_reader_version=reader_version,
    )
    table.root.mkdir()
    if reader_version < 3:
        table.reader_features = []
    table.commit(add(table.data_file(people([1, 2]))))
    _drop_feature(table, "columnMapping")
    with pytest.raises(StorageError) as info:
        load_snapshot(table.root, table="sales.t")
    message = str(info.value)
    assert "table 'sales.t'" in message and "invalid Delta protocol" in message
    assert "delta.columnMapping.mode 'name'" in message
    assert "does not declare the reader feature 'columnMapping'" in message


def _drop_feature(table: HandTable, feature: str) -> None:
    """HandTable declares columnMapping with the mode; take it out of the protocol again."""
    import json

    log = table.root / "_delta_log" / f"{0:020d}.json"
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    for line in lines:
        protocol = line.get("protocol")
        if protocol and "readerFeatures" in protocol:
            for key in ("readerFeatures", "writerFeatures"):
                protocol[key] = [f for f in protocol[key] if f != feature]
    log.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
