"""An old version read under the published version's names, matched by physical identity
(field id in id mode, physical name in name mode), at the scan."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from meshsim.storage.published_names import named_as
from meshsim.storage.snapshot import load_snapshot
from tests.storage.conftest import run_scan
from tests.storage.corpus import HandTable, add

SCHEMA = pa.schema([("id", pa.int64()), ("ssn", pa.string()), ("note", pa.string())])


def _swapped(root, mode: str) -> HandTable:
    """v0: ssn holds the SSNs (partitioned by note); v1: a metaData commit swaps the names."""
    table = HandTable(root, SCHEMA, column_mapping=mode, partition_columns=["note"])
    root.mkdir()
    data = pa.table({"id": [1], "ssn": ["123-45-6789"], "note": ["hello"]}, schema=SCHEMA)
    table.commit(add(table.data_file(data, {"note": "hello"})))
    log = root / "_delta_log"
    first = [json.loads(line) for line in (log / f"{0:020d}.json").read_text().splitlines()]
    (metadata,) = [a["metaData"] for a in first if "metaData" in a]
    schema = json.loads(metadata["schemaString"])
    for f in schema["fields"]:
        f["name"] = {"ssn": "note", "note": "ssn"}.get(f["name"], f["name"])
    metadata["schemaString"] = json.dumps(schema)
    metadata["partitionColumns"] = ["ssn"]
    table.commit({"metaData": metadata})
    return table


@pytest.mark.parametrize("mode", ["id", "name"])
def test_a_swap_reads_each_column_from_the_data_it_names_now(tmp_path, mode):
    table = _swapped(tmp_path / "t", mode)
    published = load_snapshot(table.root, table="t")
    old = load_snapshot(table.root, table="t", version=0)
    assert [c.name for c in old.columns] == ["id", "ssn", "note"]
    then = named_as(old, published)
    assert then.names_from == 1 and then.absent == frozenset()
    assert [c.name for c in then.columns] == ["id", "note", "ssn"]  # the published order
    assert then.partition_columns == ("ssn",)  # the partition column is the same data
    rows = run_scan(then).to_arrow_table().to_pylist()
    assert rows == [{"id": 1, "note": "123-45-6789", "ssn": "hello"}]
    assert named_as(published, published) is published


def _write_log(root, commits: list[list[dict]]) -> None:
    log = root / "_delta_log"
    log.mkdir(parents=True, exist_ok=True)
    for version, actions in enumerate(commits):
        text = "".join(json.dumps(a) + "\n" for a in actions)
        (log / f"{version:020d}.json").write_text(text)


def _metadata(fields: list[dict], configuration: dict) -> dict:
    return {
        "metaData": {
            "id": "t",
            "format": {"provider": "parquet", "options": {}},
            "schemaString": json.dumps({"type": "struct", "fields": fields}),
            "partitionColumns": [],
            "configuration": configuration,
            "createdTime": 0,
        }
    }


def _field(name: str, typ, physical: str | None = None, field_id: int | None = None) -> dict:
    metadata = {}
    if physical is not None:
        metadata = {
            "delta.columnMapping.physicalName": physical,
            "delta.columnMapping.id": field_id,
        }
    return {"name": name, "type": typ, "nullable": True, "metadata": metadata}


def _add(root, name: str, data: pa.Table) -> dict:
    import pyarrow.parquet as pq

    pq.write_table(data, root / name)
    size = (root / name).stat().st_size
    stats = json.dumps({"numRecords": data.num_rows})
    return {
        "add": {
            "path": name,
            "partitionValues": {},
            "size": size,
            "modificationTime": 0,
            "dataChange": True,
            "stats": stats,
        }
    }


NAME_MODE = {"delta.columnMapping.mode": "name", "delta.columnMapping.maxColumnId": "4"}


def test_time_travel_across_dropping_column_mapping_is_refused(tmp_path):
    """v0 in name mode with crossed physical names (ssn's data under physical 'note'); v1 drops
    column mapping and rewrites the files under the logical names. Matching v1's names with
    v0's physical names read the SSNs as 'note', unmasked (outside review)."""
    from meshsim.errors import StorageError

    root = tmp_path / "t"
    root.mkdir()
    v0 = pa.table({"id": [1], "note": ["SSN-111"], "ssn": ["hello"]})
    v1 = pa.table({"id": [1], "ssn": ["SSN-111"], "note": ["hello"]})
    crossed = [
        _field("id", "long", "id", 1),
        _field("ssn", "string", "note", 2),
        _field("note", "string", "ssn", 3),
    ]
    plain = [_field("id", "long"), _field("ssn", "string"), _field("note", "string")]
    _write_log(
        root,
        [
            [
                {"protocol": {"minReaderVersion": 2, "minWriterVersion": 5}},
                _metadata(crossed, NAME_MODE),
                _add(root, "p0.parquet", v0),
            ],
            [
                {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
                _metadata(plain, {}),
                {"remove": {"path": "p0.parquet", "deletionTimestamp": 1, "dataChange": True}},
                _add(root, "p1.parquet", v1),
            ],
        ],
    )
    published = load_snapshot(root, table="t")
    old = load_snapshot(root, table="t", version=0)
    with pytest.raises(StorageError, match=r"column mapping 'name' at version 0.*'none'"):
        named_as(old, published)


def test_time_travel_across_a_nested_field_rename_is_refused(tmp_path):
    """v1 swaps the names of two fields of struct 's' (a metaData-only commit): reading v0
    with its own field names evaluated a row filter on s.reg against the other field."""
    from meshsim.errors import StorageError

    root = tmp_path / "t"
    root.mkdir()

    def schema(a: str, b: str) -> list[dict]:
        struct = {
            "type": "struct",
            "fields": [_field(a, "string", "p1", 3), _field(b, "string", "p2", 4)],
        }
        return [_field("id", "long", "id", 1), _field("s", struct, "col-s", 2)]

    struct_type = pa.struct([("p1", pa.string()), ("p2", pa.string())])
    data = pa.table(
        {
            "id": pa.array([1], pa.int64()),
            "col-s": pa.array([{"p1": "eu", "p2": "us"}], struct_type),
        }
    )
    _write_log(
        root,
        [
            [
                {"protocol": {"minReaderVersion": 2, "minWriterVersion": 5}},
                _metadata(schema("reg", "other"), NAME_MODE),
                _add(root, "p0.parquet", data),
            ],
            [_metadata(schema("other", "reg"), NAME_MODE)],
        ],
    )
    published = load_snapshot(root, table="t")
    old = load_snapshot(root, table="t", version=0)
    with pytest.raises(StorageError, match=r"column 's'.*nested fields"):
        named_as(old, published)


def test_a_file_added_twice_without_a_remove_is_refused(tmp_path):
    """v1 deletes a row of p0 with a deletion vector (remove + add with the vector); v2 adds
    p0 again without one and without a remove. deltalake then reads the file twice and drops
    the vector: readers disagree, so any answer could be wrong rows (second outside review)."""
    from meshsim.errors import StorageError
    from tests.storage.corpus import HandTable, add, inline_vector, remove

    schema = pa.schema([("id", pa.int64())])
    table = HandTable(tmp_path / "t", schema)
    table.root.mkdir()
    plain = table.data_file(pa.table({"id": [1, 2, 3, 4]}, schema=schema))
    table.commit(add(plain))
    with_vector = add(plain, inline_vector([1]))
    table.commit(remove(plain), with_vector)
    table.commit(add(plain))
    assert len(load_snapshot(table.root, table="t", version=1).files) == 1
    with pytest.raises(StorageError, match=r"is added twice without a remove"):
        load_snapshot(table.root, table="t", version=2)
