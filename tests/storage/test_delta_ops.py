"""Writes, merges, deletes, history and maintenance through meshsim.storage.delta."""

from __future__ import annotations

import json
import os
from datetime import datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from meshsim.errors import StorageError
from meshsim.storage import delta
from meshsim.storage.snapshot import load_snapshot


def orders(ids: list[int], amount: float = 1.0) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "amount": pa.array([Decimal(f"{amount + i:.2f}") for i in ids], pa.decimal128(15, 2)),
        }
    )


def test_create_append_overwrite_versions(tmp_path, rows):
    path = tmp_path / "orders"
    assert not delta.exists(path)
    assert delta.write(path, orders([1, 2]), mode="create", table="orders") == 0
    assert delta.exists(path)
    assert delta.write(path, orders([3]), mode="append", table="orders") == 1
    assert rows(delta.read_table(path, table="orders")) == rows(orders([1, 2, 3]))
    assert delta.write(path, orders([9]), mode="overwrite", table="orders") == 2
    assert rows(delta.read_table(path, table="orders")) == rows(orders([9]))
    assert rows(delta.read_table(path, table="orders", version=1)) == rows(orders([1, 2, 3]))


def test_create_refuses_existing_table(tmp_path):
    delta.write(tmp_path / "o", orders([1]), mode="create", table="orders")
    with pytest.raises(StorageError, match=r"'orders' already exists .* \(version 0\)"):
        delta.write(tmp_path / "o", orders([2]), mode="create", table="orders")
    assert delta.latest_version(tmp_path / "o") == 0


def test_append_to_missing_table_names_path_and_next_step(tmp_path):
    with pytest.raises(StorageError) as info:
        delta.write(tmp_path / "nope", orders([1]), mode="append", table="sales.orders")
    text = str(info.value)
    assert str(tmp_path / "nope") in text
    assert "sales.orders" in text
    assert "run 'meshsim build'" in text


def test_unknown_mode_lists_valid_ones(tmp_path):
    with pytest.raises(StorageError, match="did you mean 'append'.*create, overwrite"):
        delta.write(tmp_path / "o", orders([1]), mode="apend", table="o")  # type: ignore[arg-type]


@pytest.mark.parametrize("reader", ["read_table", "load_snapshot", "latest_version", "history"])
def test_missing_table_errors_say_run_meshsim_build(tmp_path, reader):
    (tmp_path / "empty").mkdir()
    calls = {
        "read_table": lambda p: delta.read_table(p, table="x"),
        "load_snapshot": lambda p: load_snapshot(p, table="x"),
        "latest_version": lambda p: delta.latest_version(p, table="x"),
        "history": lambda p: delta.history(p, table="x"),
    }
    for path in (tmp_path / "missing", tmp_path / "empty"):
        with pytest.raises(StorageError) as info:
            calls[reader](path)
        assert str(path) in str(info.value)
        assert "run 'meshsim build'" in str(info.value)


def test_streaming_reader_with_string_view_and_decimal(tmp_path, rows):
    schema = pa.schema([("k", pa.string_view()), ("d", pa.decimal128(15, 2)), ("n", pa.int32())])
    batches = [
        pa.record_batch(
            [
                pa.array([f"k{i}"], pa.string_view()),
                pa.array([Decimal("1.25")], pa.decimal128(15, 2)),
                pa.array([i], pa.int32()),
            ],
            schema=schema,
        )
        for i in range(5)
    ]
    reader = pa.RecordBatchReader.from_batches(schema, iter(batches))
    delta.write(tmp_path / "s", reader, mode="create", table="s")
    out = delta.read_table(tmp_path / "s", table="s")
    assert out.schema.field("k").type == pa.string()
    assert out.schema.field("d").type == pa.decimal128(15, 2)
    assert rows(out) == [(f"k{i}", Decimal("1.25"), i) for i in range(5)]


def test_coercions_keep_values_exact(tmp_path):
    big = 3_000_000_000  # does not fit int32: deltalake alone would store uint32 as int32
    data = pa.table({"u": pa.array([big], pa.uint32()), "t": pa.array([5_000], pa.timestamp("ms"))})
    delta.write(tmp_path / "c", data, mode="create", table="c")
    out = delta.read_table(tmp_path / "c", table="c")
    assert out.schema.field("u").type == pa.int64()
    assert out.column("u").to_pylist() == [big]
    assert out.column("t").to_pylist() == [datetime(1970, 1, 1, 0, 0, 5)]


def test_nanosecond_truncation_is_refused(tmp_path):
    data = pa.table({"t": pa.array([1_000_000_001], pa.timestamp("ns"))})
    with pytest.raises(StorageError, match="column 't' cannot be stored as timestamp"):
        delta.write(tmp_path / "n", data, mode="create", table="n")


def test_time_columns_are_refused(tmp_path):
    data = pa.table({"at": pa.array([1], pa.time64("us"))})
    with pytest.raises(StorageError, match="column 'at' has Arrow type time64"):
        delta.write(tmp_path / "n", data, mode="create", table="n")


def test_empty_string_partition_value_is_refused(tmp_path):
    data = pa.table({"id": [1, 2], "p": ["a", ""]})
    with pytest.raises(StorageError, match="partition column 'p' holds an empty string"):
        delta.write(tmp_path / "e", data, mode="create", partition_by=["p"], table="e")
    delta.write(tmp_path / "e", data.slice(0, 1), mode="create", partition_by=["p"], table="e")
    reader = pa.RecordBatchReader.from_batches(data.schema, data.to_batches())
    with pytest.raises(StorageError, match="empty string"):
        delta.write(tmp_path / "e", reader, mode="append", table="e")


def test_upsert_updates_matched_and_inserts_new(tmp_path, rows):
    path = tmp_path / "o"
    delta.write(path, orders([1, 2, 3]), mode="create", table="o")
    version = delta.upsert(path, orders([2, 4], amount=100.0), ["id"], table="o")
    assert version == 1
    expected = orders([1, 3]).to_pylist() + orders([2, 4], amount=100.0).to_pylist()
    assert rows(delta.read_table(path, table="o")) == rows(pa.Table.from_pylist(expected))
    assert delta.history(path, table="o", limit=1)[0].operation == "MERGE"


def test_upsert_rejects_unknown_key(tmp_path):
    delta.write(tmp_path / "o", orders([1]), mode="create", table="o")
    with pytest.raises(StorageError, match="primary key column 'idd'.*did you mean 'id'"):
        delta.upsert(tmp_path / "o", orders([1]), ["idd"], table="o")


def test_delete_with_predicate_and_all(tmp_path, rows):
    path = tmp_path / "o"
    delta.write(path, orders([1, 2, 3]), mode="create", table="o")
    assert delta.delete(path, "id >= 2", table="o") == 1
    assert rows(delta.read_table(path, table="o")) == rows(orders([1]))
    assert delta.delete(path, None, table="o") == 2
    assert delta.read_table(path, table="o").num_rows == 0
    assert load_snapshot(path, table="o").files == ()


def test_bad_delete_predicate_is_a_storage_error(tmp_path):
    delta.write(tmp_path / "o", orders([1]), mode="create", table="o")
    with pytest.raises(StorageError, match="could not delete from table 'o'"):
        delta.delete(tmp_path / "o", "no_such_column = 1", table="o")


def test_history_entries(tmp_path):
    path = tmp_path / "o"
    delta.write(path, orders([1]), mode="create", table="o", description="orders")
    delta.write(path, orders([2]), mode="append", table="o")
    delta.delete(path, "id = 1", table="o")
    entries = delta.history(path, table="o")
    assert [e.version for e in entries] == [2, 1, 0]
    assert [e.operation for e in entries] == ["DELETE", "WRITE", "WRITE"]
    assert entries[0].parameters["predicate"] == "id = 1"
    assert entries[2].metrics["num_added_rows"] == 1
    assert all(e.timestamp.tzinfo is not None for e in entries)
    assert entries[0].timestamp >= entries[2].timestamp
    assert [e.version for e in delta.history(path, table="o", limit=1)] == [2]
    assert entries[0].timestamp == delta.commit_timestamp(path, 2)


def test_compact_reduces_files_and_keeps_rows(tmp_path, rows, scan_matches):
    path = tmp_path / "o"
    delta.write(path, orders([0]), mode="create", table="o")
    for i in range(1, 6):
        delta.write(path, orders([i]), mode="append", table="o")
    before = rows(delta.read_table(path, table="o"))
    assert len(load_snapshot(path, table="o").files) == 6
    metrics = delta.compact(path, table="o")
    assert metrics["numFilesRemoved"] == 6
    after = load_snapshot(path, table="o")
    assert len(after.files) == 1
    assert rows(delta.read_table(path, table="o")) == before
    scan_matches(path, table="o")


def test_vacuum_dry_run_lists_unreferenced_files(tmp_path):
    path = tmp_path / "o"
    delta.write(path, orders([1]), mode="create", table="o")
    old = {os.path.basename(f.path) for f in load_snapshot(path, table="o").files}
    delta.write(path, orders([2]), mode="overwrite", table="o")
    assert delta.vacuum(path, table="o") == []  # within the 7-day retention
    with pytest.raises(StorageError, match="could not vacuum table 'o'"):
        delta.vacuum(path, table="o", retention_hours=0)
    listed = delta.vacuum(path, table="o", retention_hours=0, enforce_retention=False)
    assert {os.path.basename(f) for f in listed} == old
    assert all((path / f).exists() for f in listed)  # dry run deletes nothing
    delta.vacuum(path, table="o", retention_hours=0, enforce_retention=False, dry_run=False)
    assert not any((path / f).exists() for f in listed)


def test_checkpoint_and_latest_version(tmp_path, scan_matches):
    path = tmp_path / "o"
    delta.write(path, orders([1, 2]), mode="create", table="o")
    delta.write(path, orders([3]), mode="append", table="o")
    delta.checkpoint(path, table="o")
    last = json.loads((path / "_delta_log" / "_last_checkpoint").read_text())
    assert last["version"] == 1
    delta.write(path, orders([4]), mode="append", table="o")
    delta.delete(path, "id = 1", table="o")
    assert delta.latest_version(path) == 3
    snapshot = scan_matches(path, table="o")
    assert snapshot.version == 3
    assert [c.name for c in snapshot.columns] == ["id", "amount"]
    assert snapshot.num_records == 3
    scan_matches(path, table="o", version=0)


def test_log_cleanup_moves_the_first_available_version(tmp_path, scan_matches):
    path = tmp_path / "o"
    for i in range(3):
        delta.write(path, orders([i]), mode="append" if i else "create", table="o")
    delta.checkpoint(path, table="o")
    for name in ("00000000000000000000.json", "00000000000000000001.json"):
        (path / "_delta_log" / name).unlink()
    assert delta.available_versions(path) == (2, 2)
    assert delta.latest_version(path) == 2
    scan_matches(path, table="o")
    with pytest.raises(StorageError, match="no version 0; available versions are 2..2"):
        load_snapshot(path, table="o", version=0)


def test_latest_version_ignores_temporary_files(tmp_path):
    path = tmp_path / "o"
    delta.write(path, orders([1]), mode="create", table="o")
    (path / "_delta_log" / "_commit_abc.json.tmp").write_text("{}")
    (path / "_delta_log" / "00000000000000000007.crc").write_text("{}")
    assert delta.latest_version(path) == 0
