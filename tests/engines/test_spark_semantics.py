"""Spark fails closed: what means something else on Spark is rewritten exactly or refused
(regex flags and classes, LIKE escapes, substring/left/right, list indexing, strftime), no
variable substitution, no engine logs on stderr, no data column shadowing the row index.

One Spark session for the process (tests/engines/test_spark.py's), as there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import sqlglot

from tests.storage.corpus import HandTable, add, inline_vector

pytest.importorskip("pyspark", reason="the Spark engine needs the meshsim[spark] extra")
from meshsim.engines import spark as spark_engine  # noqa: E402
from meshsim.engines.spark_sql import SparkRefused, spark_sql  # noqa: E402

if spark_engine.java_missing():
    pytest.skip(spark_engine.java_missing() or "", allow_module_level=True)

EU = "eu_marketing_analyst"
#: strings with case, classes' edge characters (\r, \x0b), backslashes and LIKE wildcards
TEXTS = ["abc", "ABc dEF", "a\rb", "x\x0by", "a\\b", "50%_off", "", "Special Requests", "ßİǅ"]


@pytest.fixture(scope="module")
def spark():
    return spark_engine.spark_session()


def _on_both(spark, expression: str) -> tuple[list, list] | None:
    """``expression`` over ``x`` (each of TEXTS) on both engines, or None if Spark refuses."""
    values = ", ".join("(" + sqlglot.exp.Literal.string(t).sql("duckdb") + ")" for t in TEXTS)
    sql = f"SELECT {expression} AS v FROM (VALUES {values}) AS t(x)"
    on_duck = [r[0] for r in duckdb.sql(sql).fetchall()]
    try:
        text = spark_sql(sqlglot.parse_one(sql, read="duckdb"))
    except SparkRefused:
        return None
    on_spark = [r["v"] for r in spark.sql(text).toArrow().to_pylist()]
    return on_duck, on_spark


@pytest.mark.parametrize(
    "expression",
    [
        # regexes: flags dropped by sqlglot, POSIX classes, '.', '\s', '$' read differently
        "regexp_replace(x, '[A-Z]', '*', 'gi')",
        "regexp_replace(x, '[a-z]', '*')",  # DuckDB: the first match only
        "regexp_matches(x, 'SPECIAL', 'i')",
        "regexp_replace(x, '[[:alnum:]]', '*', 'g')",
        "regexp_matches(x, 'a.b')",
        "regexp_matches(x, 'x\\sy')",
        "regexp_matches(x, 'c$')",
        "regexp_replace(x, '(b)', '\\1\\1', 'g')",
        "x ~ '[A-Z]+'",
        "regexp_replace(x, '[^a-z]+', '-', 'g')",
        # LIKE: Spark escapes with a backslash by default
        "x LIKE 'a\\b'",
        "x LIKE '%\\%'",
        "x LIKE '50!%%' ESCAPE '!'",
        "x ILIKE 'abc%'",
        # positions and lengths DuckDB and Spark read differently
        "substring(x, 0, 3)",
        "substring(x, -2, 5)",
        "substring(x, 2, 3)",
        "substring(x, 2)",
        "left(x, -1)",
        "right(x, -1)",
        "left(x, 2)",
        "right(x, 2)",
        # case mapping beyond ASCII (Java maps 'ß' to 'SS')
        "upper(x)",
        "lower(x)",
        "length(x)",
        # formats and list indexes
        "strftime(DATE '2024-03-01', '%j') || x",
        "[x, 'b', 'c'][-1]",
        "[x, 'b', 'c'][1]",
    ],
)
def test_an_expression_gives_duckdbs_values_on_spark_or_is_refused(spark, expression):
    got = _on_both(spark, expression)
    if got is not None:
        duck, on_spark = got
        assert duck == on_spark, expression


@pytest.mark.parametrize(
    "expression",
    [
        "regexp_replace(x, '[A-Z]', '*', 'g')",
        "regexp_matches(x, '^Spe[a-z]+ R')",
        "x LIKE 'a\\b'",
        "substring(x, 2, 3)",
        "right(x, 2)",
    ],
)
def test_exact_rewrites_still_run_on_spark(spark, expression):
    assert _on_both(spark, expression) is not None, f"{expression} was refused"


def test_a_consumer_regex_over_filtered_rows_is_refused_not_widened(built_workspace, spark):
    from meshsim.mesh import Mesh

    sql = "SELECT count(*) FROM sales.orders WHERE NOT regexp_matches(o_comment, 'SPECIAL', 'i')"
    with Mesh.open(built_workspace) as mesh, pytest.raises(SparkRefused, match="with flags"):
        mesh.session(EU, engine="spark").sql(sql)


def test_spark_does_not_substitute_variables(spark, built_workspace):
    from meshsim.mesh import Mesh

    assert spark.conf.get("spark.sql.variable.substitute") == "false"
    assert spark.sql("SELECT '${spark.app.name}' AS v").collect()[0]["v"] == "${spark.app.name}"
    with Mesh.open(built_workspace) as mesh:
        for sql in ["SELECT '${env:HOME}' AS h", 'SELECT 1 AS "${system:user.dir}"']:
            with pytest.raises(SparkRefused, match=r"'\$\{'"):
                mesh.session(EU, engine="spark").sql(sql)


def test_a_failing_query_prints_no_governed_sql_or_values_on_stderr(built_workspace):
    query = "SELECT CAST(c_name AS INTEGER) AS n FROM customer.customer"
    cli = "import sys; from meshsim.cli import run; sys.argv[0] = 'meshsim'; run()"
    cmd = [sys.executable, "-c", cli, "sql", "--workspace", str(built_workspace)]
    cmd += ["--as", "governance_admin", "--engine", "spark", "--timeout", "300", query]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    assert "Error: the query failed while running (Spark CAST_INVALID_INPUT)" in done.stderr
    for leak in ("Customer#", "== SQL ==", "SELECT", "CAST(", "Executor", '"level"', " WARN "):
        assert leak not in done.stderr, done.stderr[-2000:]


@pytest.mark.parametrize("shadow", ["_metadata", "_tmp_metadata_row_index"])
def test_a_data_column_named_like_spark_metadata_does_not_move_deleted_rows(
    spark, tmp_path, shadow
):
    from meshsim.query.verify import PlanRefused
    from tests.engines.test_spark import _scan_rows_both

    schema = pa.schema([("id", pa.int64()), (shadow, pa.int64())])
    ids = list(range(10))
    data = pa.table({"id": ids, shadow: [9 - i for i in ids]}, schema=schema)
    table = HandTable(tmp_path / "t", schema)
    table.root.mkdir()
    table.commit(add(table.data_file(data), inline_vector([1, 2, 3, 7])))
    if shadow == "_metadata":  # read by the metadata column itself, not the data column
        duck, on_spark = _scan_rows_both(spark, Path(table.root))
        assert duck == on_spark and len(duck) == 6
    else:  # the name Spark reserves for the row index: one clear refusal
        with pytest.raises(PlanRefused, match="reserves for the row index"):
            _scan_rows_both(spark, Path(table.root))


def test_a_remote_session_is_given_no_variable_substitution_too(spark, monkeypatch):
    # no Spark Connect server here: the builder records what a remote session is given
    from pyspark.sql import SparkSession

    given: dict[str, str] = {}

    class Remote:
        conf = type("Conf", (), {"set": staticmethod(given.__setitem__)})()

        def appName(self, name):
            return self

        def remote(self, url):
            given["remote"] = url
            return self

        def config(self, name, value):
            given[f"builder:{name}"] = value
            return self

        def getOrCreate(self):
            return self

    monkeypatch.setenv("SPARK_REMOTE", "sc://cluster:15002")
    monkeypatch.setattr(SparkSession, "builder", Remote())
    spark_engine.spark_session.cache_clear()
    try:
        spark_engine.spark_session()
    finally:
        spark_engine.spark_session.cache_clear()
    assert given == {
        "remote": "sc://cluster:15002",
        "builder:spark.sql.variable.substitute": "false",
        "spark.sql.variable.substitute": "false",
    }


def test_a_policy_mask_whose_regex_flags_spark_would_drop_is_refused():
    from sqlglot import exp

    from meshsim.query.masks import mask_expression
    from meshsim.spec.models import Mask
    from tests.query.meshdata import MESH_KEY

    mask = Mask(
        name="m",
        function="custom",
        expression="regexp_replace({column}, '[A-Z]', '*', 'gi')",
        consumers=["*"],
        columns=["a.b.c"],
    )
    text = exp.DataType.build("text")
    masked = mask_expression(
        mask, exp.column("c"), text, key=MESH_KEY, column_ref="a.b.c", attributes={}
    )
    with pytest.raises(SparkRefused, match="without exactly the flags 'g'"):
        spark_sql(exp.select(masked))
