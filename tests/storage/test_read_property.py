"""Property: for random tables deltalake writes (random flat schemas and odd values, random
partitioning, then appends, deletes, overwrites and checkpoints), meshsim's snapshot and scan
read the same multiset of rows as deltalake's own ``QueryBuilder`` read, at every version."""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from meshsim.storage import delta
from meshsim.storage.snapshot import load_snapshot
from tests.storage.conftest import run_scan, sorted_rows

#: column type -> values hypothesis draws for it (None included: every column is nullable)
TYPES = {
    "bigint": (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    "int": (pa.int32(), st.integers(-(2**31), 2**31 - 1)),
    "double": (pa.float64(), st.floats(allow_nan=False, width=64)),
    "bool": (pa.bool_(), st.booleans()),
    "text": (pa.string(), st.text(st.characters(codec="utf-8"), max_size=6)),
    "date": (pa.date32(), st.dates(date(1900, 1, 1), date(2100, 1, 1))),
    "ts": (
        pa.timestamp("us", tz="UTC"),
        st.datetimes(datetime(1970, 1, 2), datetime(2100, 1, 1)).map(
            lambda d: d.replace(tzinfo=UTC)
        ),
    ),
    "decimal": (
        pa.decimal128(10, 2),
        st.decimals(Decimal("-9999.99"), Decimal("9999.99"), places=2, allow_nan=False),
    ),
}
#: types deltalake 1.6.6 stores exactly as partition values (see meshsim.storage.delta)
PARTITIONABLE = ("bigint", "int", "text", "date", "bool")


@st.composite
def tables(draw: st.DrawFn) -> tuple[pa.Schema, list[str], list[tuple[str, pa.Table]]]:
    kinds = draw(st.lists(st.sampled_from(sorted(TYPES)), min_size=1, max_size=4))
    schema = pa.schema([(f"c{i}_{k}", TYPES[k][0]) for i, k in enumerate(kinds)])
    candidates = [f.name for f, k in zip(schema, kinds, strict=True) if k in PARTITIONABLE]
    partition = []
    if candidates and len(kinds) > 1:  # deltalake cannot write a partition-only table
        partition = draw(st.lists(st.sampled_from(candidates), max_size=1))

    def batch() -> pa.Table:
        rows = draw(st.integers(0, 6))
        columns = {}
        for f, k in zip(schema, kinds, strict=True):
            values = st.none() | TYPES[k][1]
            if f.name in partition and k == "text":
                values = st.none() | st.text(st.characters(codec="utf-8"), min_size=1, max_size=4)
            columns[f.name] = pa.array([draw(values) for _ in range(rows)], f.type)
        return pa.table(columns, schema=schema)

    steps = [("create", batch())]
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["append", "append", "overwrite", "delete", "checkpoint"]))
        steps.append((kind, batch() if kind in ("append", "overwrite") else pa.table({})))
    return schema, partition, steps


@seed(20261201)
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=tables())
def test_scan_reads_what_deltalake_reads(case):
    schema, partition, steps = case
    folder = Path(tempfile.mkdtemp(prefix="meshsim-prop-"))
    path = folder / "t"
    try:
        first_column = schema.names[0]
        for kind, data in steps:
            if kind == "create":
                delta.write(path, data, mode="create", table="t", partition_by=partition or None)
            elif kind in ("append", "overwrite"):
                delta.write(path, data, mode=kind, table="t")
            elif kind == "delete":
                delta.delete(path, f'"{first_column}" IS NULL', table="t")
            else:
                delta.checkpoint(path, table="t")
        last = delta.latest_version(path, table="t")
        for version in range(last + 1):
            snapshot = load_snapshot(path, table="t", version=version)
            expected = delta.read_table(path, table="t", version=version)
            assert sorted_rows(run_scan(snapshot).to_arrow_table()) == sorted_rows(expected)
            assert snapshot.num_records == expected.num_rows
    finally:
        shutil.rmtree(folder)


@st.composite
def vector_tables(draw: st.DrawFn) -> list[tuple[int, list[int], str]]:
    """Files as (rows, deleted row indexes, how the vector is stored)."""
    files = []
    for _ in range(draw(st.integers(1, 3))):
        rows = draw(st.integers(1, 3000))
        indexes = st.integers(0, rows - 1)
        deleted = draw(
            st.one_of(
                st.sets(indexes, max_size=50),
                st.tuples(indexes, indexes).map(lambda r: set(range(min(r), max(r) + 1))),
            )
        )
        files.append((rows, sorted(deleted), draw(st.sampled_from(["i", "u", "p", "none"]))))
    return files


@seed(20261201)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=vector_tables(), checkpoint=st.booleans())
def test_deletion_vectors_read_as_written(files, checkpoint):
    """Random vectors (sparse and dense, inline and in files) in a table the test writes by
    the protocol: meshsim reads the rows not deleted, and so does deltalake."""
    from tests.storage.corpus import HandTable, add, inline_vector, vector_file

    schema = pa.schema([("id", pa.int64())])
    folder = Path(tempfile.mkdtemp(prefix="meshsim-dv-"))
    try:
        table = HandTable(folder / "t", schema)
        table.root.mkdir()
        actions, kept = [], []
        for n, (rows, deleted, storage) in enumerate(files):
            ids = [n * 10_000 + i for i in range(rows)]
            kept += [v for i, v in enumerate(ids) if i not in set(deleted)]
            action = table.data_file(pa.table({"id": ids}, schema=schema))
            vector = None
            if storage == "i" or (storage != "none" and not deleted):
                vector = inline_vector(deleted) if deleted else None
            elif storage in ("u", "p"):
                (vector,) = vector_file(table.root, [deleted], prefix="dv", absolute=storage == "p")
            if vector is None:
                kept += [v for i, v in enumerate(ids) if i in set(deleted)]
            actions.append(add(action, vector))
        table.commit(*actions)
        if checkpoint:
            delta.checkpoint(table.root, table="t")
        snapshot = load_snapshot(table.root, table="t")
        got = sorted(v for (v,) in run_scan(snapshot).fetchall())
        assert got == sorted(kept)
        assert snapshot.num_records == len(kept)
        assert got == sorted(delta.read_table(table.root, table="t").column("id").to_pylist())
    finally:
        shutil.rmtree(folder)
