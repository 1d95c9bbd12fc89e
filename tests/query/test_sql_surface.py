"""DuckDB's SQL surface through the governed path (issue 12): DuckDB-specific clauses,
grouping sets, lists, sampling, output names and Python types, each compared with plain
DuckDB over a per-consumer copy of the data materialised another way (polars), as a full
consumer and as a masked, row-filtered one."""

from __future__ import annotations

import pytest

from tests.query.meshdata import MeshData
from tests.query.test_differential import materialise

EU = "eu_marketing_analyst"
ADMIN = "governance_admin"
CONSUMERS = [EU, ADMIN]


@pytest.fixture(scope="module")
def copies(mesh: MeshData):
    cons = {consumer: materialise(mesh, consumer) for consumer in CONSUMERS}
    yield cons
    for con in cons.values():
        con.close()


def same_as_duckdb(engine, copies, consumer: str, sql: str, *, ordered: bool = True):
    """The governed result equals plain DuckDB's over the consumer's copy: rows, column
    names and Python types."""
    want = copies[consumer].sql(sql)
    want_rows, want_names = want.fetchall(), want.columns
    got = engine.session(consumer).sql(sql)
    got_rows = got.fetchall()
    assert got.columns == want_names
    if not ordered:
        got_rows, want_rows = sorted(got_rows, key=repr), sorted(want_rows, key=repr)
    assert got_rows == want_rows
    assert [[type(v) for v in row] for row in got_rows] == [
        [type(v) for v in row] for row in want_rows
    ]
    return got


# -- DuckDB-specific clauses, together --------------------------------------------------------

CLAUSES = [
    # ORDER BY ALL failed the final safety check (COLUMNS(...))
    "SELECT c_mktsegment, count(*) FROM customer.customer GROUP BY ALL ORDER BY ALL",
    "SELECT c_mktsegment, c_nationkey FROM customer.customer ORDER BY ALL DESC LIMIT 7",
    "SELECT o_orderstatus, o_orderpriority, count(*), sum(o_totalprice) FROM sales.orders "
    "GROUP BY ALL ORDER BY ALL",
    "FROM customer.customer SELECT * EXCLUDE (c_comment, c_name) REPLACE (c_custkey * 10 AS "
    "c_custkey) QUALIFY row_number() OVER (PARTITION BY c_mktsegment ORDER BY c_custkey) <= 2 "
    "ORDER BY ALL",
    "FROM sales.orders SELECT o_orderstatus, max(o_totalprice) GROUP BY ALL ORDER BY ALL",
    "FROM customer.nation ORDER BY ALL LIMIT 3",
    "SELECT * FROM (SELECT c_nationkey, count(*) AS n FROM customer.customer GROUP BY ALL) "
    "ORDER BY ALL",
]


@pytest.mark.parametrize("consumer", CONSUMERS)
@pytest.mark.parametrize("sql", CLAUSES)
def test_duckdb_clauses_together(engine, copies, consumer: str, sql: str) -> None:
    same_as_duckdb(engine, copies, consumer, sql)


# -- the widened allowlist --------------------------------------------------------------------

WIDENED = [
    "SELECT c_mktsegment, c_nationkey, count(*), grouping(c_mktsegment) FROM customer.customer "
    "GROUP BY ROLLUP (c_mktsegment, c_nationkey) ORDER BY ALL NULLS FIRST",
    "SELECT c_mktsegment, count(*) FROM customer.customer GROUP BY CUBE (c_mktsegment) "
    "ORDER BY ALL NULLS FIRST",
    "SELECT o_orderstatus, o_orderpriority, sum(o_totalprice) FROM sales.orders "
    "GROUP BY GROUPING SETS ((o_orderstatus), (o_orderpriority), ()) ORDER BY ALL NULLS FIRST",
    "SELECT c_mktsegment, list(c_custkey ORDER BY c_custkey) FROM customer.customer "
    "GROUP BY ALL ORDER BY ALL",
    "SELECT list(c_phone ORDER BY c_custkey)[1], array_agg(c_custkey ORDER BY c_custkey)[2:3] "
    "FROM customer.customer",
    "SELECT unnest(list(DISTINCT c_mktsegment ORDER BY c_mktsegment)) FROM customer.customer",
    "SELECT c_custkey, unnest([c_nationkey, c_custkey]) AS k FROM customer.customer "
    "ORDER BY ALL LIMIT 20",
    "SELECT len(list(c_custkey)), list_sort(list(DISTINCT c_nationkey)), "
    "list_contains(list(c_mktsegment), 'BUILDING'), array_to_string([1, 2], '-'), "
    "flatten([[1], [2, 3]]), list_distinct([1, 1, 2]) FROM customer.customer",
    "SELECT * FROM (SELECT c_mktsegment, c_nationkey FROM customer.customer) "
    "PIVOT (count(*) FOR c_nationkey IN (3, 8, 13)) ORDER BY ALL",
    "SELECT * FROM customer.nation PIVOT (count(*) FOR n_regionkey IN (1, 2, 3)) ORDER BY ALL",
    "SELECT * FROM (SELECT c_mktsegment, c_nationkey, c_custkey FROM customer.customer) AS c "
    "PIVOT (count(*) AS n, max(c_custkey) AS m FOR c_mktsegment IN ('BUILDING', 'MACHINERY')) "
    "AS p ORDER BY ALL",
    "SELECT o_orderstatus, k, v FROM sales.orders UNPIVOT (v FOR k IN (o_custkey, "
    "o_shippriority)) ORDER BY ALL LIMIT 30",
    "SELECT c_custkey, name, value FROM customer.customer UNPIVOT (value FOR name IN (c_phone, "
    "c_comment)) ORDER BY ALL LIMIT 30",
    "SELECT count(*) FILTER (WHERE random() < 2.0), current_date = today(), "
    "now() IS NOT NULL FROM customer.customer",
]


@pytest.mark.parametrize("consumer", CONSUMERS)
@pytest.mark.parametrize("sql", WIDENED)
def test_widened_allowlist(engine, copies, consumer: str, sql: str) -> None:
    same_as_duckdb(engine, copies, consumer, sql)


def test_random_is_a_fresh_value_per_row(run) -> None:
    values = [v for (v,) in run(EU, "SELECT random() FROM customer.customer").fetchall()]
    assert len(values) == 40 and all(0.0 <= v < 1.0 for v in values)
    assert len(set(values)) > 30


@pytest.mark.parametrize("consumer", CONSUMERS)
@pytest.mark.parametrize(
    "sample",
    [
        "USING SAMPLE 50% (bernoulli, 42)",
        "TABLESAMPLE bernoulli(50%) REPEATABLE (42)",
        "USING SAMPLE reservoir(10 ROWS) REPEATABLE (7)",
    ],
)
def test_sampling_samples_the_governed_rows(run, consumer: str, sample: str) -> None:
    """A sample is drawn from the consumer's own rows (TABLESAMPLE on a mesh table used to be
    dropped when the table was bound: the whole table came back)."""
    everything = {r for (r,) in run(consumer, "SELECT c_custkey FROM customer.customer").fetchall()}
    sql = f"SELECT c_custkey FROM customer.customer {sample}"
    first = sorted(r for (r,) in run(consumer, sql).fetchall())
    assert set(first) <= everything
    assert 0 < len(first) < len(everything)
    assert sorted(r for (r,) in run(consumer, sql).fetchall()) == first  # seeded: repeatable


# -- output names ----------------------------------------------------------------------------

NAMED = [
    "SELECT count(*), sum(c_custkey), avg(c_nationkey), min(c_phone), max(c_mktsegment) "
    "FROM customer.customer",
    "SELECT c_custkey + 1, c_custkey * 2 - 1, -c_custkey, c_custkey // 3, c_custkey % 7, "
    "CAST(c_custkey AS VARCHAR), c_custkey::DOUBLE, 'x', 1, 2.5, NULL, TRUE "
    "FROM customer.customer ORDER BY 1 LIMIT 3",
    "SELECT upper(c_mktsegment), lower(c_phone), length(c_comment), c_phone || '!', "
    "substring(c_comment, 1, 3), coalesce(c_phone, 'none'), c_mktsegment LIKE 'B%' "
    "FROM customer.customer ORDER BY c_custkey LIMIT 3",
    "SELECT CASE WHEN c_custkey > 100 THEN 'big' ELSE 'small' END, c_custkey BETWEEN 1 AND 50, "
    "c_custkey IN (3, 8), c_phone IS NULL, NOT (c_custkey > 5) "
    "FROM customer.customer ORDER BY c_custkey LIMIT 3",
    "SELECT count(DISTINCT c_nationkey), count(*) FILTER (WHERE c_custkey > 20), "
    "string_agg(c_mktsegment, ',' ORDER BY c_mktsegment), list(c_custkey ORDER BY c_custkey) "
    "FROM customer.customer",
    "SELECT c_custkey, row_number() OVER (ORDER BY c_custkey), "
    "sum(c_custkey) OVER (PARTITION BY c_mktsegment) FROM customer.customer "
    "ORDER BY c_custkey LIMIT 3",
    "SELECT count(*) FROM customer.customer UNION ALL SELECT 1",
    "WITH w AS (SELECT count(*), max(c_phone) FROM customer.customer) SELECT * FROM w",
    "SELECT * FROM (SELECT sum(c_custkey), c_mktsegment FROM customer.customer GROUP BY ALL) "
    "AS s ORDER BY ALL",
    "SELECT * FROM (SELECT count(*) FROM customer.customer UNION ALL SELECT 2) ORDER BY ALL",
    "WITH a AS (SELECT 1 + 1), b AS (SELECT * FROM a) SELECT * FROM b",
    "FROM customer.customer SELECT count(*), min(c_custkey)",
    "SELECT date_trunc('month', o_orderdate), extract(year FROM o_orderdate), "
    "o_orderdate + INTERVAL 1 DAY, year(o_orderdate) FROM sales.orders ORDER BY o_orderkey LIMIT 2",
    "SELECT [1, 2], [c_custkey][1], round(c_custkey / 3, 2) FROM customer.customer "
    "ORDER BY c_custkey LIMIT 2",
]


@pytest.mark.parametrize("consumer", CONSUMERS)
@pytest.mark.parametrize("sql", NAMED)
def test_unnamed_expressions_are_named_as_duckdb_names_them(
    engine, copies, consumer: str, sql: str
) -> None:
    """Not sqlglot's ``_col_0``: CSV headers and dataframes match DuckDB's."""
    got = same_as_duckdb(engine, copies, consumer, sql)
    assert not any(name.startswith("_col_") for name in got.columns)


def test_describe_of_a_query_names_its_columns_as_duckdb(run) -> None:
    rows = run(EU, "DESCRIBE SELECT count(*), max(c_phone) FROM customer.customer").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("count_star()", "BIGINT"), ("max(c_phone)", "VARCHAR")]


# -- fetchall() types ------------------------------------------------------------------------


def test_fetchall_returns_duckdbs_python_types(run) -> None:
    """A sum of integers is a HUGEINT; DuckDB's fetchall() gives an int, not a Decimal."""
    (row,) = run(EU, "SELECT sum(c_custkey), count(*) FROM customer.customer").fetchall()
    assert type(row[0]) is int and type(row[1]) is int


@pytest.mark.parametrize(
    "expression",
    [
        "sum(c_custkey)",
        "sum(c_custkey::HUGEINT)",
        "sum(c_nationkey)::UHUGEINT",
        "max(c_custkey)::DECIMAL(38, 0)",
        "sum(CAST(c_custkey AS DECIMAL(15, 2)))",
        "avg(c_custkey)",
        "age(DATE '2024-03-01', DATE '2023-01-15')",
        "max(INTERVAL 14 MONTH + INTERVAL 3 DAY)",
        "max(c_phone)",
        "list(c_custkey ORDER BY c_custkey)",
        "max(TIMESTAMP '2020-01-01 10:00:00')",
        "max(DATE '2020-01-01')",
        "bool_and(c_custkey > 0)",
    ],
)
def test_fetchall_types_match_duckdb(engine, copies, expression: str) -> None:
    same_as_duckdb(engine, copies, EU, f"SELECT {expression} FROM customer.customer")
