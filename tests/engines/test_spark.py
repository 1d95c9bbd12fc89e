"""The governed query on Spark: the same plan gives the same answers as on DuckDB, refuses
what DuckDB refuses, and Spark's plan reads only the files bound for the query.

One Spark session for the module (starting it costs seconds); skipped, with the reason,
only where pyspark or Java is missing.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from sqlglot import exp

from meshsim.errors import QueryError
from meshsim.query.masks import keyed_hash, mask_expression
from meshsim.query.rewrite import SCAN_MARK
from meshsim.spec.models import Mask
from tests.query.meshdata import MESH_KEY
from tests.query.meshfixtures import refused
from tests.security import test_attacks as attacks
from tests.storage.corpus import HandTable, add, inline_vector

pytest.importorskip("pyspark", reason="the Spark engine needs the meshsim[spark] extra")
from meshsim.engines import spark as spark_engine  # noqa: E402
from meshsim.engines.spark_sql import SparkRefused, spark_sql  # noqa: E402

if spark_engine.java_missing():
    pytest.skip(spark_engine.java_missing() or "", allow_module_level=True)

EU = "eu_marketing_analyst"
CONSUMERS = [
    "governance_admin",
    "eu_marketing_analyst",
    "finance_controller",
    "supply_planner",
    "external_partner",
]


@pytest.fixture(scope="module")
def spark():
    return spark_engine.spark_session()


@pytest.fixture(scope="module")
def example(built_workspace: Path, spark):
    from meshsim.mesh import Mesh

    mesh = Mesh.open(built_workspace)
    yield mesh
    mesh.close()


def _normalise(value: Any) -> Any:
    """Timestamps in UTC; floats to 9 significant digits (sums of doubles in another order
    differ in the last bits)."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else float(f"{value:.9g}")
    return value


def rows(table: pa.Table, *, ordered: bool = False) -> list[tuple]:
    out = [tuple(_normalise(v) for v in r.values()) for r in table.to_pylist()]
    return out if ordered else sorted(out, key=repr)


def both(example, consumer: str, sql: str) -> tuple[list[tuple], list[tuple]]:
    ordered = "ORDER BY" in sql.upper()
    duck = example.session(consumer).sql(sql).arrow()
    on_spark = example.session(consumer, engine="spark").sql(sql).arrow()
    assert duck.column_names == on_spark.column_names
    return rows(duck, ordered=ordered), rows(on_spark, ordered=ordered)


# -- the example mesh: every consumer, the same answers ------------------------------------

QUERIES = [
    # masks (show_last, redact, keyed hash) and the regional row filter with its lookups
    "SELECT * FROM customer.customer ORDER BY c_custkey",
    # row filters with lookups through three tables, joins and aggregates above them
    "SELECT o_orderstatus, count(*) AS n, sum(o_totalprice) AS total FROM sales.orders "
    "GROUP BY o_orderstatus ORDER BY o_orderstatus",
    "SELECT n.n_name, count(*) AS n FROM customer.customer c JOIN customer.nation n "
    "ON c.c_nationkey = n.n_nationkey GROUP BY n.n_name ORDER BY n.n_name",
    "SELECT p_type, avg(p_retailprice) AS price, max(p_size) AS size FROM supply.part "
    "GROUP BY p_type ORDER BY p_type LIMIT 20",
    # time travel
    "SELECT count(*) AS n, min(o_orderkey) AS k FROM sales.orders AT (VERSION => 0)",
]


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_every_example_consumer_gets_the_same_answers_on_spark(example, consumer):
    answered = 0
    for sql in QUERIES:
        try:
            example.session(consumer).sql(sql)
        except QueryError as refusal:  # not granted: Spark must refuse the same way
            with pytest.raises(type(refusal)):
                example.session(consumer, engine="spark").sql(sql)
            continue
        duck, on_spark = both(example, consumer, sql)
        assert duck == on_spark, sql
        answered += 1
    assert answered, f"{consumer} can read none of the test queries"


def test_masks_really_are_applied_on_spark(example):
    got = example.session(EU, engine="spark").sql(
        "SELECT DISTINCT length(c_phone) AS p, c_address FROM customer.customer"
    )
    assert got.arrow().to_pylist() == [{"p": 8, "c_address": "****"}]


def test_an_unknown_engine_is_one_error_naming_the_valid_ones(example):
    with pytest.raises(QueryError, match=r"engine 'sparkk'.*did you mean 'spark'.*duckdb, spark"):
        example.session(EU, engine="sparkk")


def test_cli_runs_on_spark_and_refuses_an_unknown_engine(built_workspace, capsys):
    from tests.cli.clihelpers import assert_clean_error
    from tests.cli.clihelpers import run as cli

    args = ["sql", "--workspace", str(built_workspace), "--as", EU]
    query = "SELECT count(*) AS n FROM customer.nation"
    spark = ["--engine", "spark", "--timeout", "300"]  # Spark's first query compiles for long
    code, out, err = cli(capsys, *args, *spark, "--format", "csv", query)
    assert code == 0, err
    assert out.strip().splitlines() == ["n", "25"]
    code, out, err = cli(capsys, *args, "--engine", "presto", query)
    assert_clean_error(code, err, "engine 'presto' is not defined", "duckdb, spark")
    code, out, err = cli(capsys, *args, "--engine", "spark")  # no query: the shell
    assert_clean_error(code, err, "the interactive shell runs on duckdb")


def test_inspection_wrappers_say_they_run_on_duckdb(example):
    with pytest.raises(QueryError, match="runs on DuckDB only"):
        example.session(EU, engine="spark").sql("DESCRIBE SELECT n_name FROM customer.nation")


# -- the attack tests that refuse on DuckDB refuse on Spark (their own cases, reused) -------
# (those that only check what an allowed query returns are covered above: the masked values
# and the row filters are the same on both engines)


@pytest.fixture(scope="module")
def spark_engine_for_attacks(mesh, audit, spark):
    from tests.query.meshfixtures import make_engine

    # the attack mesh's engine, with time for Spark on a busy machine
    engine, _ = make_engine(mesh, audit, timeout_s=120)
    yield engine
    engine.close()


@pytest.fixture
def run(spark_engine_for_attacks):
    engine = spark_engine_for_attacks

    def _run(consumer: str, sql: str, params=None):
        return engine.session(consumer, "spark").sql(sql, params)

    _run.engine = engine  # type: ignore[attr-defined]
    return _run


test_1_statement_smuggling = attacks.test_1_statement_smuggling
test_2_raw_file_access = attacks.test_2_raw_file_access
test_3_dynamic_sql = attacks.test_3_dynamic_sql
test_4_cte_named_like_the_table = attacks.test_4_cte_named_like_the_table
test_4_catalog_and_unknown_names = attacks.test_4_catalog_and_unknown_names
test_5_column_expansion = attacks.test_5_column_expansion
test_6_denied_column_anywhere = attacks.test_6_denied_column_anywhere
test_8_metadata = attacks.test_8_metadata
test_9_error_on_hidden_rows_does_not_reveal_them = (
    attacks.test_9_error_on_hidden_rows_does_not_reveal_them
)
test_reserved_scan_marker_is_refused = attacks.test_reserved_scan_marker_is_refused


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM parquet.`/etc/x.parquet`",
        "SELECT * FROM default.customer",
        "SELECT * FROM spark_catalog.default.t",
        "SELECT reflect('java.lang.System', 'getenv', 'HOME')",
        "SELECT java_method('java.lang.System', 'getenv', 'HOME')",
        "SELECT input_file_name() FROM customer.customer",
    ],
)
def test_spark_specific_escapes_are_refused(run, sql):
    refused(run, EU, sql)


def test_a_consumer_cte_cannot_take_the_name_of_a_storage_view(run):
    # Spark resolves a CTE before a view: a CTE named like the view a row filter's lookup
    # reads would replace the lookup. The views carry the reserved marker.
    refused(
        run,
        EU,
        "WITH __meshsim_scan_spark_0_0 AS (SELECT 1 AS n_nationkey) "
        "SELECT count(*) FROM customer.customer",
        match="reserved",
    )


def test_timestamps_keep_their_kind_on_spark(spark):
    select = exp.select(
        exp.alias_(exp.cast(exp.Literal.string("2024-01-02 03:04:05"), "TIMESTAMP"), "naive"),
        exp.alias_(exp.cast(exp.Literal.string("2024-01-02 03:04:05+00"), "TIMESTAMPTZ"), "utc"),
    )
    types = spark.sql(spark_sql(select)).toArrow().schema.types
    assert [t.tz for t in types] == [None, "UTC"]


def test_a_function_without_a_checked_spark_equivalent_is_refused(run):
    # DuckDB knows it; a Spark function of that name (if any) is not known to mean the same
    with pytest.raises(SparkRefused, match="no checked Spark equivalent"):
        run(EU, "SELECT geomean(n_nationkey) FROM customer.nation")


# -- Spark's plan reads only what was bound -------------------------------------------------


def test_the_plan_check_refuses_another_file_and_a_catalog_table(spark, tmp_path):
    from meshsim.query.verify import PlanRefused

    bound = tmp_path / "bound.parquet"
    other = tmp_path / "other.parquet"
    for path in (bound, other):
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"a": [1]}), path)
    ok = spark.read.parquet(str(bound))
    spark_engine.verify_spark_plan(ok, frozenset({str(bound)}), series=False, consumer=EU)
    with pytest.raises(PlanRefused, match="file that is not in the query's snapshots"):
        spark_engine.verify_spark_plan(
            ok.union(spark.read.parquet(str(other))),
            frozenset({str(bound)}),
            series=False,
            consumer=EU,
        )
    with pytest.raises(PlanRefused, match="Range"):
        spark_engine.verify_spark_plan(spark.range(3), frozenset(), series=False, consumer=EU)
    spark.sql("CREATE TABLE IF NOT EXISTS meshsim_catalog_probe (a INT) USING json")
    try:
        with pytest.raises(PlanRefused, match="did not bind"):
            probe = spark.sql("SELECT * FROM meshsim_catalog_probe")
            spark_engine.verify_spark_plan(probe, frozenset(), series=False, consumer=EU)
    finally:
        spark.sql("DROP TABLE IF EXISTS meshsim_catalog_probe")


def test_plan_leaves_include_subquery_plans():
    tree = """Project [a#1]
+- Filter a#1 IN (list#5 [])
   :  +- Project [x#2]
   :     +- Relation [x#2] json
   +- Relation [a#1] parquet"""
    assert spark_engine.plan_leaves(tree) == ["Relation [x#2] json", "Relation [a#1] parquet"]


# -- masks: identical values on both engines ------------------------------------------------

HASHED = [
    (exp.Literal.string("Customer#000001"), "varchar"),
    (exp.Literal.string(""), "varchar"),
    (exp.Literal.number(42), "int"),
    (exp.Literal.number(-7), "bigint"),
    (exp.Literal.number(3), "smallint"),
    (exp.Literal.string("1234.50"), "decimal(15, 2)"),
    (exp.Literal.string("1995-03-15"), "date"),
    (exp.true(), "boolean"),
    (exp.null(), "varchar"),
]


def _values_on_both(spark, expressions: list[exp.Expr]) -> tuple[list, list]:
    select = exp.select(*(exp.alias_(e, f"v{i}") for i, e in enumerate(expressions)))
    on_duck = duckdb.sql(select.sql(dialect="duckdb")).to_arrow_table().to_pylist()
    on_spark = spark.sql(spark_sql(select.copy())).toArrow().to_pylist()
    return on_duck, on_spark


def test_keyed_hashes_are_identical_on_both_engines(spark):
    expressions = []
    for literal, type_name in HASHED:
        dtype = exp.DataType.build(type_name)
        value = exp.cast(literal, dtype)
        expressions.append(
            mask_expression(
                Mask(name="m", function="keyed_hash", consumers=["*"], columns=["a.b.c"]),
                value,
                dtype,
                key=MESH_KEY,
                column_ref="a.b.c",
                attributes={},
            )
        )
    on_duck, on_spark = _values_on_both(spark, expressions)
    assert on_duck == on_spark


@pytest.mark.parametrize(
    ("mask", "literal", "type_name"),
    [
        (
            Mask(name="m", function="show_last", n=4, consumers=["*"], columns=["a.b.c"]),
            "12",
            "text",
        ),
        (
            Mask(name="m", function="show_last", n=2, consumers=["*"], columns=["a.b.c"]),
            "ünïcødé",
            "text",
        ),
        (Mask(name="m", function="redact", consumers=["*"], columns=["a.b.c"]), "x", "text"),
        (Mask(name="m", function="nullify", consumers=["*"], columns=["a.b.c"]), "7", "int"),
        (
            Mask(name="m", function="year_only", consumers=["*"], columns=["a.b.c"]),
            "1995-03-15",
            "date",
        ),
        (
            Mask(name="m", function="year_only", consumers=["*"], columns=["a.b.c"]),
            "1995-03-15 10:11:12",
            "timestamp",
        ),
        (
            Mask(
                name="m",
                function="custom",
                expression="substr({column}, 1, 3) || consumer.region",
                consumers=["*"],
                columns=["a.b.c"],
            ),
            "abcdef",
            "text",
        ),
    ],
)
def test_masks_are_identical_on_both_engines(spark, mask, literal, type_name):
    dtype = exp.DataType.build(type_name)
    masked = mask_expression(
        mask,
        exp.cast(exp.Literal.string(literal), dtype),
        dtype,
        key=MESH_KEY,
        column_ref="a.b.c",
        attributes={"region": "EU"},
    )
    on_duck, on_spark = _values_on_both(spark, [masked])
    assert [_normalise(v) for v in on_duck[0].values()] == [
        _normalise(v) for v in on_spark[0].values()
    ]


@pytest.mark.parametrize("type_name", ["double", "float", "timestamp", "timestamptz"])
def test_a_keyed_hash_whose_text_differs_on_spark_is_refused(type_name):
    dtype = exp.DataType.build(type_name)
    masked = mask_expression(
        Mask(name="m", function="keyed_hash", consumers=["*"], columns=["a.b.c"]),
        exp.column("x"),
        dtype,
        key=MESH_KEY,
        column_ref="a.b.c",
        attributes={},
    )
    with pytest.raises(SparkRefused, match="writes differently"):
        spark_sql(exp.select(masked))


def test_keyed_hash_helper_is_the_one_the_masks_use():
    # the refusal above keys on the mask's CAST; a bare keyed_hash tree carries no type
    tree = keyed_hash(exp.column("x"), exp.DataType.build("int"), key=MESH_KEY, column_ref="r")
    assert "SHA2" in spark_sql(exp.select(tree))


# -- storage features: deletion vectors, partitions, column mapping, nested types ----------


def _scan_rows_both(spark, root: Path, columns=None) -> tuple[list, list]:
    from meshsim.storage.scan import scan_query
    from meshsim.storage.snapshot import load_snapshot

    snapshot = load_snapshot(root, table="t")
    tree = scan_query(snapshot, columns)
    on_duck = duckdb.sql(tree.sql(dialect="duckdb")).to_arrow_table()
    text, reads = spark_engine.bind_views(spark, tree.copy(), [snapshot])
    # a consumer's text may not hold the marker, so no consumer CTE can take a view's name
    assert all(read.view.startswith(SCAN_MARK) for read in reads)
    try:
        frame = spark.sql(text)
        bound = frozenset(f.path for f in snapshot.files)
        spark_engine.verify_spark_plan(frame, bound, series=False, consumer=None)
        on_spark = frame.toArrow()
    finally:
        for read in reads:
            spark.catalog.dropTempView(read.view)
    return rows(on_duck), rows(on_spark)


SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("k", pa.string())])


def _people(ids: list[int], k: str = "x") -> pa.Table:
    return pa.table({"id": ids, "name": [f"n{i}" for i in ids], "k": [k] * len(ids)}, schema=SCHEMA)


def test_deletion_vectors_and_partition_values_give_the_same_rows(spark, tmp_path):
    table = HandTable(tmp_path / "t", SCHEMA, partition_columns=["k"])
    table.root.mkdir()
    table.commit(
        add(
            table.data_file(_people(list(range(10))), {"k": "special p@#h"}), inline_vector([1, 5])
        ),
        add(table.data_file(_people([20, 21]), {"k": "=/:"})),
        add(
            table.data_file(_people(list(range(30, 130))), {"k": "dense"}),
            inline_vector([*range(1, 90)]),
        ),
    )
    duck, on_spark = _scan_rows_both(spark, table.root)
    assert duck == on_spark and len(duck) == 8 + 2 + 11
    assert (
        _scan_rows_both(spark, table.root, ["k"])[0] == _scan_rows_both(spark, table.root, ["k"])[1]
    )


def test_column_mapping_id_mode_and_schema_evolution_give_the_same_rows(spark, tmp_path):
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
    table = HandTable(tmp_path / "t", schema, column_mapping="id", reader_features=[])
    table.root.mkdir()
    people = pa.table({"id": [1, 2, 3, 4], "name": ["a", "b", "c", "d"]}, schema=schema)
    table.commit(
        add(table.data_file(people.slice(0, 2))),
        add(table.data_file(people.slice(2, 1), file_columns={"id": "x", "name": "col-id"})),
        add(table.data_file(people.slice(3, 1).select(["id"]))),
    )
    duck, on_spark = _scan_rows_both(spark, table.root)
    assert duck == on_spark == [(1, "a"), (2, "b"), (3, "c"), (4, None)]


def test_nested_types_give_the_same_rows(spark, tmp_path):
    from deltalake import write_deltalake

    data = pa.table(
        {
            "id": [1, 2, 3],
            "s": [{"a": 1, "b": "x"}, None, {"a": 3, "b": None}],
            "l": [[1, 2], [], None],
            "m": pa.array([[("k", 1)], [], None], type=pa.map_(pa.string(), pa.int64())),
        }
    )
    write_deltalake(tmp_path / "t", data)
    duck, on_spark = _scan_rows_both(spark, tmp_path / "t")
    assert duck == on_spark


def test_a_struct_under_column_mapping_is_refused_not_renamed_by_position(spark, tmp_path):
    schema = pa.schema(
        [("id", pa.int64()), ("s", pa.struct([("a", pa.int32()), ("b", pa.string())]))]
    )
    table = HandTable(tmp_path / "t", schema, column_mapping="name", reader_features=[])
    table.root.mkdir()
    table.commit(
        add(table.data_file(pa.table({"id": [1], "s": [{"a": 1, "b": "x"}]}, schema=schema)))
    )
    assert _scan_rows_both(spark, table.root, ["id"])[1] == [(1,)]
    with pytest.raises(SparkRefused, match="renames by position"):
        _scan_rows_both(spark, table.root)


def test_a_table_with_an_unsupported_reader_feature_is_not_read_by_spark_either(spark, tmp_path):
    from meshsim.errors import UnsupportedFeatureError

    table = HandTable(tmp_path / "t", SCHEMA, reader_features=["someFutureFeature"])
    table.root.mkdir()
    table.commit(add(table.data_file(_people([1, 2]))))
    with pytest.raises(UnsupportedFeatureError, match="someFutureFeature"):
        _scan_rows_both(spark, table.root)


def test_the_benchmark_runs_tpch_through_spark_with_answers_checked(
    built_workspace, spark, tmp_path
):
    import shutil

    from meshsim.bench import harness
    from tests.conftest import EXAMPLE_MESH

    root = tmp_path / "bench"
    shutil.copytree(built_workspace, root / "sf0.01")  # reused by the harness, not rebuilt
    result, _ = harness.run_benchmark(
        scale=0.01,
        runs=1,
        out=tmp_path / "report",
        workspace=root,
        engines=["duckdb", "spark"],
        query_names=["1", "13", "18"],
        smoke=True,
        mesh_dir=EXAMPLE_MESH,
    )
    assert not list(harness.iter_problems(result))
    spark_runs = [(r.query, r.status, r.answer) for r in result.runs if r.engine == "spark"]
    assert [q for q, _, _ in spark_runs] == ["q01", "q13", "q18"]
    assert all(s == "ok" and a in ("match", "tolerance") for _, s, a in spark_runs), spark_runs


def test_without_java_spark_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    with pytest.raises(spark_engine.SparkUnavailable, match="Spark needs Java 17 or newer"):
        spark_engine.spark_session.__wrapped__()  # the cached session is not asked
