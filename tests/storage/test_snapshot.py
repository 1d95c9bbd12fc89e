"""Snapshots: time travel, protocol checks, column mapping and the snapshot cache."""

from __future__ import annotations

import json
import shutil
import struct
import time
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from meshsim.errors import StorageError, UnsupportedFeatureError
from meshsim.storage import delta
from meshsim.storage.snapshot import READER_FEATURES, SnapshotCache, load_snapshot


def ids(values: list[int]) -> pa.Table:
    return pa.table({"id": pa.array(values, pa.int64())})


@pytest.fixture
def three_versions(tmp_path: Path) -> Path:
    path = tmp_path / "t"
    delta.write(path, ids([1]), mode="create", table="t")
    for i in (2, 3):
        time.sleep(0.02)  # commit timestamps are in milliseconds; keep them distinct
        delta.write(path, ids([i]), mode="append", table="t")
    return path


def test_time_travel_by_version(three_versions, scan_matches):
    for v in range(3):
        snapshot = scan_matches(three_versions, version=v)
        assert snapshot.version == v
        assert snapshot.num_records == v + 1


def test_time_travel_by_timestamp(three_versions):
    stamps = {e.version: e.timestamp for e in delta.history(three_versions, table="t")}
    assert stamps[0] < stamps[1] < stamps[2]
    assert load_snapshot(three_versions, table="t", timestamp=stamps[1]).version == 1
    between = stamps[1] + (stamps[2] - stamps[1]) / 2
    snapshot = load_snapshot(three_versions, table="t", timestamp=between)
    assert (snapshot.version, snapshot.timestamp) == (1, stamps[1])
    later = stamps[2] + timedelta(days=1)
    assert load_snapshot(three_versions, table="t", timestamp=later).version == 2
    naive_utc = stamps[0].replace(tzinfo=None)
    assert load_snapshot(three_versions, table="t", timestamp=naive_utc).version == 0
    rows = delta.read_table(three_versions, table="t", timestamp=between).column("id")
    assert sorted(rows.to_pylist()) == [1, 2]


def test_timestamp_before_first_commit_names_the_range(three_versions):
    first = delta.commit_timestamp(three_versions, 0)
    with pytest.raises(StorageError) as info:
        load_snapshot(three_versions, table="t", timestamp=first - timedelta(seconds=1))
    text = str(info.value)
    assert "did not exist yet" in text
    assert first.isoformat() in text and "(version 0)" in text and "(version 2)" in text


@pytest.mark.parametrize("version", [-1, 3, 99])
def test_missing_version_names_the_range(three_versions, version):
    with pytest.raises(StorageError, match=f"no version {version}; available versions are 0..2"):
        load_snapshot(three_versions, table="t", version=version)


def test_version_and_timestamp_together_is_an_error(three_versions):
    with pytest.raises(StorageError, match="not both"):
        load_snapshot(
            three_versions,
            table="t",
            version=0,
            timestamp=delta.commit_timestamp(three_versions, 0),
        )


def test_column_mapping_physical_names_differ_and_scan_returns_logical(tmp_path, scan_matches):
    path = tmp_path / "cm"
    data = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "region name": ["eu", "us", None],
            "v": [1.5, None, 3.5],
        }
    )
    delta.write(
        path, data, mode="create", partition_by=["region name"], column_mapping=True, table="cm"
    )
    snapshot = scan_matches(path, table="cm")
    assert snapshot.column_mapping_mode == "name"
    for column in snapshot.columns:
        assert column.physical_name.startswith("col-") and column.physical_name != column.name
    # Statistics are keyed by physical name in the log; the snapshot re-keys them.
    stats = {f.partition_values["region name"]: f for f in snapshot.files}
    assert stats["eu"].min_values == {"id": 1, "v": 1.5}
    assert stats[None].null_counts == {"id": 0, "v": 0}
    assert set(stats) == {"eu", "us", None}
    scan_matches(path, table="cm", columns=["v", "region name"])
    log = (path / "_delta_log" / "00000000000000000000.json").read_text()
    assert snapshot.columns[0].physical_name in log


def test_column_mapping_upsert_and_delete_stay_readable(tmp_path, scan_matches):
    path = tmp_path / "cm"
    delta.write(
        path,
        pa.table({"id": [1, 2], "v": ["a", "b"]}),
        mode="create",
        column_mapping=True,
        table="cm",
    )
    delta.delete(path, "id = 1", table="cm")
    delta.write(path, pa.table({"id": [3], "v": ["c"]}), mode="append", table="cm")
    snapshot = scan_matches(path, table="cm")
    assert snapshot.num_records == 2


def test_column_mapping_cannot_be_added_to_an_existing_table(tmp_path):
    delta.write(tmp_path / "t", ids([1]), mode="create", table="t")
    with pytest.raises(StorageError, match="created without column mapping"):
        delta.write(tmp_path / "t", ids([1]), mode="overwrite", column_mapping=True, table="t")


# -- hand-crafted logs for features delta-rs does not write ---------------------------------

_Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"


def _z85(data: bytes) -> str:
    out = []
    for i in range(0, len(data), 4):
        value = int.from_bytes(data[i : i + 4], "big")
        chunk = []
        for _ in range(5):
            chunk.append(_Z85[value % 85])
            value //= 85
        out.extend(reversed(chunk))
    return "".join(out)


def _inline_deletion_vector(deleted_rows: list[int]) -> dict[str, object]:
    """A valid inline deletion vector: a RoaringBitmapArray with one array container."""
    rows = sorted(deleted_rows)
    bitmap = struct.pack("<II", 12346, 1) + struct.pack("<HH", 0, len(rows) - 1)
    bitmap += struct.pack("<I", 16) + b"".join(struct.pack("<H", r) for r in rows)
    data = struct.pack("<iqi", 1681511377, 1, 0) + bitmap
    padded = data + b"\0" * (-len(data) % 4)
    return {
        "storageType": "i",
        "pathOrInlineDv": _z85(padded),
        "sizeInBytes": len(data),
        "cardinality": len(rows),
    }


def _rewrite_log(
    path: Path,
    protocol: dict,
    *,
    deletion_vector: dict | None = None,
    configuration: dict | None = None,
) -> None:
    log = path / "_delta_log" / "00000000000000000000.json"
    actions = []
    for line in log.read_text().splitlines():
        action = json.loads(line)
        if "protocol" in action:
            action = {"protocol": protocol}
        if "add" in action and deletion_vector:
            action["add"]["deletionVector"] = deletion_vector
        if "metaData" in action and configuration:
            action["metaData"]["configuration"].update(configuration)
        actions.append(action)
    log.write_text("\n".join(json.dumps(a) for a in actions) + "\n")


def _features(*names: str) -> dict:
    return {
        "minReaderVersion": 3,
        "minWriterVersion": 7,
        "readerFeatures": list(names),
        "writerFeatures": list(names),
    }


def test_deletion_vector_in_use_is_read(tmp_path, scan_matches):
    path = tmp_path / "dv"
    delta.write(path, ids([1, 2, 3]), mode="create", table="sales.dv")
    _rewrite_log(path, _features("deletionVectors"), deletion_vector=_inline_deletion_vector([1]))
    snapshot = scan_matches(path, table="sales.dv")  # deltalake's reader applies vectors too
    assert snapshot.num_records == 2
    # still read once the deletion vector lives in a checkpoint
    delta.checkpoint(path, table="sales.dv")
    (path / "_delta_log" / "00000000000000000000.json").unlink()
    assert SnapshotCache().get(path, table="sales.dv").num_records == 2


def test_unreadable_deletion_vector_is_an_error_naming_the_table(tmp_path):
    path = tmp_path / "dv"
    delta.write(path, ids([1, 2, 3]), mode="create", table="dv")
    broken = dict(
        _inline_deletion_vector([1]), pathOrInlineDv="wi5b=000010000siXQKl0rr91000f55c8Xg0"
    )
    _rewrite_log(path, _features("deletionVectors"), deletion_vector=broken)
    with pytest.raises(StorageError, match="table 'dv': deletion vector inline cannot be read"):
        load_snapshot(path, table="dv")


def test_deletion_vector_feature_without_vectors_is_read(tmp_path, scan_matches):
    path = tmp_path / "dvp"
    delta.write(path, ids([1, 2, 3]), mode="create", table="dvp")
    _rewrite_log(path, _features("deletionVectors"))
    snapshot = load_snapshot(path, table="dvp")
    assert snapshot.reader_features == {"deletionVectors"}
    assert snapshot.num_records == 3


@pytest.mark.parametrize("feature", ["madeUpFeature", "variantType", "typeWidening"])
def test_unknown_reader_feature_is_refused(tmp_path, feature):
    path = tmp_path / "f"
    delta.write(path, ids([1]), mode="create", table="sales.f")
    _rewrite_log(path, _features(feature))
    with pytest.raises(UnsupportedFeatureError) as info:
        load_snapshot(path, table="sales.f")
    assert info.value.feature == feature
    assert "'sales.f'" in str(info.value)
    assert feature not in READER_FEATURES


@pytest.mark.parametrize(
    "protocol, detail",
    [
        ({"minReaderVersion": 3, "minWriterVersion": 7}, "Reader features must be present"),
        (
            {
                "minReaderVersion": 2,
                "minWriterVersion": 7,
                "readerFeatures": ["columnMapping"],
                "writerFeatures": ["columnMapping"],
            },
            "Reader features must not be present",
        ),
        ({"minReaderVersion": 0, "minWriterVersion": 2}, "min_reader_version must be >= 1"),
    ],
    ids=["v3-without-features", "v2-with-features", "version-0"],
)
def test_invalid_protocol_is_refused_as_such(tmp_path, protocol, detail):
    path = tmp_path / "p"
    delta.write(path, ids([1]), mode="create", table="sales.p")
    _rewrite_log(path, protocol)
    with pytest.raises(StorageError) as info:
        load_snapshot(path, table="sales.p")
    assert "table 'sales.p'" in str(info.value) and "invalid Delta protocol" in str(info.value)
    assert detail in str(info.value)


def test_catalog_managed_table_is_refused_by_name(tmp_path):
    path = tmp_path / "c"
    delta.write(path, ids([1]), mode="create", table="sales.c")
    _rewrite_log(path, _features("catalogOwned-preview"))
    with pytest.raises(UnsupportedFeatureError) as info:
        load_snapshot(path, table="sales.c")
    assert info.value.feature == "catalogManaged" and "'sales.c'" in str(info.value)


def test_column_mapping_id_mode_reads_by_field_id(tmp_path, scan_matches):
    # delta-rs writes Parquet field ids in name mode too, so switching the table to id mode
    # must read the same rows (test_corpus.py covers files whose names differ)
    path = tmp_path / "id"
    delta.write(path, ids([1]), mode="create", column_mapping=True, table="idm")
    _rewrite_log(
        path,
        {"minReaderVersion": 2, "minWriterVersion": 5},
        configuration={"delta.columnMapping.mode": "id"},
    )
    assert scan_matches(path, table="idm").column_mapping_mode == "id"


# -- cache ----------------------------------------------------------------------------------


def test_cache_reuses_snapshots_until_a_new_commit(tmp_path):
    path = tmp_path / "c"
    delta.write(path, ids([1]), mode="create", table="c")
    cache = SnapshotCache()
    first = cache.get(path, table="c")
    assert cache.get(str(path) + "/", table="c") is first
    assert (cache.hits, cache.misses) == (1, 1)
    delta.write(path, ids([2]), mode="append", table="c")
    second = cache.get(path, table="c")
    assert second.version == 1 and second.num_records == 2
    assert cache.get(path, table="c", version=0) is first
    assert cache.get(path, table="c", timestamp=second.timestamp) is second
    assert cache.get(path, table="other").table == "other"
    assert (cache.hits, cache.misses) == (4, 2)


def test_cache_evicts_oldest(tmp_path):
    path = tmp_path / "c"
    delta.write(path, ids([1]), mode="create", table="c")
    delta.write(path, ids([2]), mode="append", table="c")
    cache = SnapshotCache(max_entries=1)
    cache.get(path, table="c", version=0)
    cache.get(path, table="c", version=1)
    assert len(cache) == 1
    cache.get(path, table="c", version=0)
    assert cache.misses == 3


def test_cache_sees_a_deleted_or_rebuilt_table(tmp_path):
    path = tmp_path / "c"
    delta.write(path, ids([1]), mode="create", table="c")
    cache = SnapshotCache()
    old = cache.get(path, table="c")
    shutil.rmtree(path)
    with pytest.raises(StorageError, match="does not exist"):
        cache.get(path, table="c")
    delta.write(path, ids([7, 8]), mode="create", table="c")  # version 0 again
    new = cache.get(path, table="c")
    assert new.version == old.version == 0
    assert new.num_records == 2 and new.files != old.files


def test_check_location_refuses_exactly_the_characters_it_names() -> None:
    """The fast path (one regular expression) agrees with the per-character rule on every
    character of the Basic Multilingual Plane."""
    from meshsim.errors import StorageError
    from meshsim.storage.log import UNSUPPORTED_PATH_CHARACTERS, check_location

    for code in range(0x10000):
        char = chr(code)
        refused = (
            char in UNSUPPORTED_PATH_CHARACTERS
            or code < 32
            or code == 127
            or 0xD800 <= code <= 0xDFFF
        )
        try:
            check_location(f"/data/a{char}b", what="path")
        except StorageError:
            assert refused, repr(char)
        else:
            assert not refused, repr(char)
