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
