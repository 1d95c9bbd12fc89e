"""The DuckDB scan of a snapshot, checked against deltalake's own reader."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from deltalake import write_deltalake
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from meshsim.errors import StorageError
from meshsim.storage import delta
from meshsim.storage.scan import arrow_to_sql_type, scan_files, scan_query
from meshsim.storage.snapshot import load_snapshot

SPECIAL = ["a/b", "x y", "é=%", "50%", "it's", 'q"q', "back\\slash", "star*", "what?", "[br]"]


def test_partition_values_with_special_characters_and_nulls(tmp_path, scan_matches):
    path = tmp_path / "p"
    values = [*SPECIAL, None]
    data = pa.table(
        {
            "id": pa.array(range(len(values)), pa.int64()),
            "p": values,
            "v": [float(i) for i in range(len(values))],
        }
    )
    delta.write(path, data, mode="create", partition_by=["p"], table="p")
    snapshot = scan_matches(path, table="p")
    assert {f.partition_values["p"] for f in snapshot.files} == set(values)
    encoded = [f.path for f in snapshot.files if f.partition_values["p"] == "x y"]
    assert "/p=x%20y/" in encoded[0]  # the log says p=x%2520y; the folder is p=x%20y
    scan_matches(path, table="p", columns=["p"])
    scan_matches(path, table="p", columns=["v", "id"])


def test_typed_partition_columns(tmp_path, scan_matches):
    path = tmp_path / "typed"
    data = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "i": pa.array([1, None, -7], pa.int32()),
            "d": pa.array([date(2020, 1, 1), None, date(1999, 12, 31)]),
            "ts": pa.array(
                [
                    datetime(2020, 1, 1, 1, 2, 3, 456789, tzinfo=UTC),
                    None,
                    datetime(1970, 1, 1, tzinfo=UTC),
                ],
                pa.timestamp("us", tz="UTC"),
            ),
            "nt": pa.array(
                [datetime(2020, 1, 1, 1, 2, 3), None, datetime(2000, 2, 29)], pa.timestamp("us")
            ),
            "dec": pa.array([Decimal("1.50"), None, Decimal("0.01")], pa.decimal128(5, 2)),
            "b": pa.array([True, None, False]),
            "f": pa.array([1.25, None, -0.5], pa.float64()),
        }
    )
    partitions = ["i", "d", "ts", "nt", "dec", "b", "f"]
    delta.write(path, data, mode="create", partition_by=partitions, table="typed")
    snapshot = scan_matches(path, table="typed")
    assert len(snapshot.files) == 3
    first = next(f for f in snapshot.files if f.partition_values["i"] == 1)
    assert first.partition_values["dec"] == Decimal("1.50")
    assert first.partition_values["nt"] == datetime(2020, 1, 1, 1, 2, 3)


def test_negative_decimal_partition_is_refused_before_writing(tmp_path):
    data = pa.table(
        {"id": [1, 2], "dec": pa.array([Decimal("1.50"), Decimal("-1.50")], pa.decimal128(5, 2))}
    )
    with pytest.raises(StorageError, match="'dec' holds a negative decimal"):
        delta.write(tmp_path / "neg", data, mode="create", partition_by=["dec"], table="neg")
    assert not delta.exists(tmp_path / "neg")


def test_binary_partition_columns_are_refused(tmp_path):
    data = pa.table({"id": [1], "b": pa.array([b"\x00\xff"], pa.binary())})
    with pytest.raises(StorageError, match="partition column 'b' is binary"):
        delta.write(tmp_path / "w", data, mode="create", partition_by=["b"], table="w")
    # deltalake alone writes it, then reads the value back as b"\\u0000\\u00FF"
    write_deltalake(tmp_path / "r", data, partition_by=["b"])
    with pytest.raises(StorageError, match="partition column 'b' is binary"):
        load_snapshot(tmp_path / "r", table="r")


def test_table_with_an_unparseable_partition_value_is_an_error(tmp_path):
    # what deltalake 1.6.6 commits for Decimal("-1.50") when nothing stops it
    data = pa.table({"id": [1], "dec": pa.array([Decimal("-1.50")], pa.decimal128(5, 2))})
    with pytest.raises(Exception, match="Failed to parse value '-1.-50'"):
        write_deltalake(tmp_path / "neg", data, partition_by=["dec"])
    with pytest.raises(StorageError, match="table 'neg'.*-1.-50"):
        load_snapshot(tmp_path / "neg", table="neg")


def test_all_types_round_trip(tmp_path, scan_matches):
    path = tmp_path / "types"
    data = pa.table(
        {
            "i8": pa.array([1, None], pa.int8()),
            "i16": pa.array([2, None], pa.int16()),
            "i32": pa.array([3, None], pa.int32()),
            "i64": pa.array([4, None], pa.int64()),
            "f32": pa.array([1.5, None], pa.float32()),
            "f64": pa.array([2.5, None], pa.float64()),
            "b": pa.array([True, None]),
            "s": pa.array(["é", None], pa.string_view()),
            "bin": pa.array([b"\x00\xff", None], pa.binary()),
            "d": pa.array([date(2024, 2, 29), None]),
            "dec": pa.array([Decimal("12345678901234.56"), None], pa.decimal128(16, 2)),
            "ts": pa.array([1_700_000_000_000_000, None], pa.timestamp("us", tz="UTC")),
            "nt": pa.array([1_700_000_000_000_000, None], pa.timestamp("us")),
        }
    )
    delta.write(path, data, mode="create", table="types")
    scan_matches(path, table="types")


def test_tpch_parquet_round_trips(tmp_path, scan_matches):
    tpchgen = Path(sys.executable).parent / "tpchgen-cli"
    assert tpchgen.exists(), "tpchgen-cli is a pinned dependency of meshsim"
    subprocess.run(
        [
            str(tpchgen),
            "parquet",
            "-s",
            "0.001",
            "--tables=nation,lineitem",
            f"--output-dir={tmp_path}",
        ],
        check=True,
        capture_output=True,
    )
    import pyarrow.parquet as pq

    source = pq.ParquetFile(tmp_path / "lineitem.parquet")
    assert pa.types.is_string_view(source.schema_arrow.field("l_comment").type)
    reader = pa.RecordBatchReader.from_batches(
        source.schema_arrow, source.iter_batches(batch_size=1000)
    )
    delta.write(
        tmp_path / "lineitem",
        reader,
        mode="create",
        partition_by=["l_returnflag"],
        table="tpch.lineitem",
    )
    snapshot = scan_matches(tmp_path / "lineitem", table="tpch.lineitem")
    assert snapshot.num_records == source.metadata.num_rows
    assert snapshot.column("l_quantity").type == pa.decimal128(15, 2)


def test_zero_file_table_is_a_typed_empty_relation(tmp_path, scan_matches, duck):
    path = tmp_path / "z"
    empty = pa.table(
        {
            "id": pa.array([], pa.int64()),
            "p": pa.array([], pa.string()),
            "d": pa.array([], pa.decimal128(7, 3)),
        }
    )
    delta.write(path, empty, mode="create", partition_by=["p"], table="z")
    snapshot = scan_matches(path, table="z")
    assert snapshot.files == () and scan_files(snapshot) == ()
    assert [str(t) for t in duck(snapshot).types] == ["BIGINT", "VARCHAR", "DECIMAL(7,3)"]
    delta.write(
        path,
        pa.table({"id": [1], "p": ["a"], "d": [Decimal("1.000")]}).cast(empty.schema),
        mode="append",
        table="z",
    )
    delta.delete(path, None, table="z")
    assert scan_matches(path, table="z").files == ()


def test_schema_evolution_old_files_read_null(tmp_path, scan_matches):
    path = tmp_path / "evo"
    delta.write(
        path,
        pa.table({"id": [1, 2], "p": ["a", "b"]}),
        mode="create",
        partition_by=["p"],
        table="evo",
    )
    delta.write(
        path,
        pa.table({"id": [3], "p": ["b"], "extra": [1.5]}),
        mode="append",
        schema_mode="merge",
        table="evo",
    )
    snapshot = scan_matches(path, table="evo")
    assert [c.name for c in snapshot.columns] == ["id", "p", "extra"]
    # partition a: no file has 'extra' (typed NULL); partition b: mixed files (union_by_name)
    relation = duckdb.connect().sql(scan_query(snapshot).sql(dialect="duckdb"))
    assert sorted(relation.fetchall()) == [(1, "a", None), (2, "b", None), (3, "b", 1.5)]
    scan_matches(path, table="evo", columns=["extra"])
    scan_matches(path, table="evo", version=0)


def test_schema_evolution_without_statistics_reads_footers(tmp_path, scan_matches):
    path = tmp_path / "nostats"
    write_deltalake(
        path,
        pa.table({"id": [1], "p": ["a"]}),
        partition_by=["p"],
        configuration={"delta.dataSkippingNumIndexedCols": "0"},
    )
    write_deltalake(
        path, pa.table({"id": [2], "p": ["a"], "extra": ["x"]}), mode="append", schema_mode="merge"
    )
    write_deltalake(
        path,
        pa.table(
            {"id": [3], "p": ["b"], "extra": [None]},
            schema=pa.schema([("id", pa.int64()), ("p", pa.string()), ("extra", pa.string())]),
        ),
        mode="append",
    )
    snapshot = scan_matches(path, table="nostats")
    assert all(f.null_counts == {} for f in snapshot.files)


def test_unknown_column_suggests_the_closest(tmp_path):
    delta.write(tmp_path / "t", pa.table({"amount": [1]}), mode="create", table="t")
    snapshot = load_snapshot(tmp_path / "t", table="t")
    with pytest.raises(StorageError, match="column 'amout' is not defined; did you mean 'amount'"):
        scan_query(snapshot, ["amout"])
    with pytest.raises(StorageError, match="asked for twice"):
        scan_query(snapshot, ["amount", "amount"])
    with pytest.raises(StorageError, match="at least one column"):
        scan_query(snapshot, [])


def test_glob_characters_in_a_file_path_are_refused(tmp_path):
    delta.write(tmp_path / "t", pa.table({"id": [1]}), mode="create", table="t")
    snapshot = load_snapshot(tmp_path / "t", table="t")
    import dataclasses

    bad = dataclasses.replace(snapshot.files[0], path=str(tmp_path / "t" / "part*.parquet"))
    with pytest.raises(StorageError, match="would expand as a glob"):
        scan_query(dataclasses.replace(snapshot, files=(bad,)))


def test_partition_filters_prune_branches_and_data_filters_reach_parquet(tmp_path):
    path = tmp_path / "prune"
    data = pa.table({"id": pa.array(range(6), pa.int64()), "p": ["a", "b", "c"] * 2})
    delta.write(path, data, mode="create", partition_by=["p"], table="prune")
    snapshot = load_snapshot(path, table="prune")
    scan = scan_query(snapshot).subquery("s")
    query = (
        exp.select("id")
        .from_(scan)
        .where(
            exp.column("p")
            .eq(exp.Literal.string("b"))
            .and_(exp.column("id").eq(exp.Literal.number(4)))
        )
    )
    relation = duckdb.connect().sql(query.sql(dialect="duckdb"))
    plan = relation.explain()
    assert plan.upper().count("READ_PARQUET") == 1
    assert "Filters" in plan and "id=4" in plan.replace(" ", "")
    assert relation.fetchall() == [(4,)]


def test_sql_is_built_from_nodes():
    import pyarrow as pa

    assert arrow_to_sql_type(pa.float32()).sql(dialect="duckdb") == "REAL"
    assert arrow_to_sql_type(pa.timestamp("us")).sql(dialect="duckdb") == "TIMESTAMP"
    assert arrow_to_sql_type(pa.large_string()).sql(dialect="duckdb") == "TEXT"
    assert arrow_to_sql_type(pa.binary()).sql(dialect="duckdb") == "BLOB"
    nested = pa.struct([("Super Name", pa.map_(pa.string(), pa.large_list(pa.int64())))])
    assert (
        arrow_to_sql_type(nested).sql(dialect="duckdb")
        == 'STRUCT("Super Name" MAP(TEXT, BIGINT[]))'
    )
    with pytest.raises(
        StorageError, match=r"list<item: uint32> \(its part uint32\).* not supported: unsigned"
    ):
        arrow_to_sql_type(pa.list_(pa.uint32()))


def test_golden_sql_for_a_partitioned_snapshot(tmp_path):
    path = tmp_path / "g"
    delta.write(
        path,
        pa.table({"id": pa.array([1], pa.int64()), "p": ["it's"]}),
        mode="create",
        partition_by=["p"],
        table="g",
    )
    snapshot = load_snapshot(path, table="g")
    (file,) = scan_files(snapshot)
    # the footer stores id as BIGINT already: no CAST, and one file needs no union_by_name
    expected = (
        'SELECT "id" AS "id", CAST(\'it\'\'s\' AS TEXT) AS "p" '
        f"FROM READ_PARQUET(['{file}'], hive_partitioning := FALSE)"
    )
    assert scan_query(snapshot).sql(dialect="duckdb") == expected


def test_files_with_other_layouts_keep_casts_and_union_by_name(tmp_path):
    path = tmp_path / "evolved"
    delta.write(path, pa.table({"id": pa.array([1], pa.int32())}), mode="create", table="e")
    delta.write(
        path,
        pa.table({"id": pa.array([2], pa.int32()), "extra": ["x"]}),
        mode="append",
        schema_mode="merge",
        table="e",
    )
    snapshot = load_snapshot(path, table="e")
    sql = scan_query(snapshot).sql(dialect="duckdb")
    assert "union_by_name := TRUE" in sql  # the two files differ in layout
    assert '"id" AS "id"' in sql  # INT in every file: read as is
    assert 'CAST("extra" AS TEXT) AS "extra"' in sql  # missing from the first file: typed
    con = duckdb.connect()
    assert sorted(con.sql(sql).fetchall()) == [(1, None), (2, "x")]


# -- property: random partitioned tables read the same as deltalake --------------------------

_text = st.text(alphabet="ab/ =%'é\"\\\n:#?*[]{}~+", min_size=1, max_size=4)
_rows = st.lists(
    st.tuples(
        st.one_of(st.none(), _text),
        st.one_of(st.none(), st.integers(-3, 3)),
        st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=64)),
        st.one_of(st.none(), _text),
    ),
    max_size=8,
)


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    rows=_rows, partition_on=st.sampled_from([["p"], ["p", "q"], ["q"], []]), mapped=st.booleans()
)
def test_scan_equals_deltalake_for_random_tables(rows, partition_on, mapped, scan_matches):
    schema = pa.schema(
        [("p", pa.string()), ("q", pa.int32()), ("v", pa.float64()), ("s", pa.string())]
    )
    data = pa.Table.from_pylist(
        [dict(zip(schema.names, r, strict=True)) for r in rows], schema=schema
    )
    root = tempfile.mkdtemp(prefix="meshsim-prop-")
    try:
        path = Path(root) / "t"
        half = len(rows) // 2
        delta.write(
            path,
            data.slice(0, half),
            mode="create",
            partition_by=partition_on,
            column_mapping=mapped,
            table="t",
        )
        delta.write(path, data.slice(half), mode="append", table="t")
        snapshot = scan_matches(path, table="t")
        assert snapshot.num_records == len(rows)
        scan_matches(path, table="t", columns=["s", "p"])
    finally:
        shutil.rmtree(root)
