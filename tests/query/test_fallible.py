"""Which queries need gated row-filtered scans (:mod:`meshsim.query.fallible`)."""

from __future__ import annotations

import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp
from sqlglot.optimizer.qualify import qualify

from meshsim.query.fallible import ALLOWED, can_fail_before_filter, mask_can_fail

SCHEMA = {
    "s": {
        "t": {
            "k": "BIGINT",
            "name": "VARCHAR",
            "d": "DATE",
            "p": "DECIMAL(15,2)",
            "ts": "TIMESTAMP",
            "h": "HUGEINT",
        }
    }
}


def needs_gate(sql: str) -> bool:
    tree = qualify(sqlglot.parse_one(sql, read="duckdb"), schema=SCHEMA, dialect="duckdb")
    types = {id(t): SCHEMA["s"]["t"] for t in tree.find_all(exp.Table) if t.name == "t"}
    return can_fail_before_filter(tree, types)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT k, CAST(name AS INT) / 0 FROM s.t",  # the outermost projection runs last
        "SELECT * FROM s.t WHERE d <= DATE '1998-12-01' AND d > CAST('1994-01-01' AS DATE)",
        "SELECT * FROM s.t WHERE p BETWEEN 0.05 AND 0.07 AND k < 24 AND k > -5",
        "SELECT * FROM s.t WHERE name LIKE '%a%' AND name NOT IN ('x', 'y') AND d IS NULL",
        "SELECT * FROM s.t WHERE d > '1995-01-01' AND name IN ('a', 'b')",
        "SELECT * FROM s.t WHERE name ILIKE '%a\\' AND upper(name) = 'A'",
        "SELECT * FROM (SELECT lpad(right(coalesce(name, ''), 4), 4, '*') AS m FROM s.t) x",
        "SELECT * FROM s.t a JOIN s.t b ON a.k = b.k AND a.name = b.name",
        "SELECT k, count(*) FROM s.t GROUP BY k HAVING sum(p) > 300",
        "SELECT * FROM s.t WHERE k IN (SELECT k FROM s.t GROUP BY k HAVING sum(p) > 300)",
        "SELECT c, count(*) FROM (SELECT k, count(name) AS c FROM s.t GROUP BY k) x GROUP BY c",
        "SELECT * FROM s.t a WHERE EXISTS (SELECT * FROM s.t b WHERE b.k = a.k AND b.d < a.d)",
        "SELECT * FROM (SELECT max(CAST(name AS INT)) AS m FROM s.t) x",  # aggregates run late
    ],
)
def test_queries_that_cannot_fail_before_a_filter(sql: str):
    assert not needs_gate(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM s.t WHERE CAST(name AS INT) = 0",
        "SELECT * FROM s.t WHERE k // 2 = 1",
        "SELECT * FROM s.t WHERE k + 1 = 2",  # overflow
        "SELECT * FROM s.t WHERE name = 5",  # the column is cast to a number
        "SELECT * FROM s.t WHERE k = 'abc'",  # the literal is cast when a row reaches it
        "SELECT * FROM s.t WHERE d < '1995-13-45'",
        "SELECT * FROM s.t WHERE strptime(name, '%Y') IS NULL",
        "SELECT * FROM s.t WHERE 1 // 0 = 1",  # a constant fails only when a row reaches it
        "SELECT * FROM s.t a LEFT JOIN s.t b ON a.k = b.k AND CAST(b.name AS INT) = 1",
        "SELECT * FROM (SELECT CAST(name AS INT) AS n FROM s.t) x",
        "WITH c AS (SELECT k // 0 AS z FROM s.t) SELECT * FROM c",
        "SELECT * FROM s.t WHERE k IN (SELECT CAST(name AS INT) FROM s.t)",
        "SELECT * FROM (SELECT k % 2 AS g FROM s.t GROUP BY k % 2) x",
        "SELECT * FROM (SELECT 1 AS k UNION ALL SELECT k // 0 FROM s.t) x",
        "SELECT * FROM s.t, unnest(string_split(name, ' '))",
        "SELECT * FROM s.t WHERE name",  # cast to BOOLEAN
        "SELECT * FROM s.t WHERE NOT name AND k = 1",
        # issue 16: constants DuckDB cannot fold are evaluated per row
        "SELECT * FROM s.t WHERE 9223372036854775807 + 9223372036854775807 = 0",
        "SELECT * FROM s.t WHERE CASE WHEN p > 3 THEN 9223372036854775807 + 1 ELSE 0 END = 0",
        "SELECT * FROM s.t WHERE -9223372036854775807 - 9223372036854775807 = 0",
        "SELECT * FROM s.t WHERE CAST('9999-12-31' AS TIMESTAMP) + INTERVAL '9999999' YEAR > d",
        "SELECT * FROM s.t WHERE d <= DATE '1998-12-01' - INTERVAL '90' DAY",
        "SELECT * FROM s.t WHERE p BETWEEN 0.06 - 0.01 AND 0.06 + 0.01",
        "SELECT * FROM s.t WHERE lpad(name, 30, '') IS NULL",
        "SELECT * FROM s.t WHERE rpad(name, 30, '') IS NULL",
        "SELECT * FROM s.t WHERE lpad(name, 99999999, '*') IS NULL",
        "SELECT * FROM s.t WHERE right(name, 99999999999) = 'a'",
        "SELECT * FROM s.t WHERE substring(name, 1, 5) = 'a'",
        "SELECT * FROM s.t WHERE repeat(name, 3) = 'a'",
        "SELECT * FROM s.t WHERE EXTRACT(year FROM d) = 1995",
        "SELECT * FROM s.t WHERE TRY_CAST(name AS INT) = 1",
        "SELECT * FROM s.t WHERE trim(name) = 'a'",
        "SELECT * FROM s.t WHERE regexp_matches(name, 'a')",
        "SELECT * FROM s.t WHERE name LIKE 'a!' ESCAPE '!'",
        "SELECT * FROM s.t WHERE 'abc' = 1",  # two constants are cast per row too
        "SELECT * FROM s.t WHERE k IN (1, 99999999999999999999999999999999999999)",
        "SELECT * FROM s.t WHERE p < 1e400",
        "SELECT * FROM s.t WHERE d < '19950101'",  # Python reads it, DuckDB does not
        "SELECT * FROM s.t WHERE d < ts",  # a date past the timestamp range fails to cast
        "SELECT * FROM s.t WHERE h < p",  # HUGEINT and DECIMAL meet in a DECIMAL(38)
        "SELECT * FROM s.t WHERE h = 1",
        "SELECT * FROM s.t WHERE name IN (SELECT sum(k) FROM s.t)",  # casts a hidden name
        "SELECT * FROM s.t WHERE p IN (SELECT sum(k) FROM s.t GROUP BY name)",  # HUGEINT
        "SELECT * FROM s.t WHERE k IN (SELECT max(name) FROM s.t)",
    ],
)
def test_queries_that_could_fail_before_a_filter(sql: str):
    assert needs_gate(sql)


def test_masks_that_could_fail_gate_the_scan():
    raw = exp.column("c")
    safe = sqlglot.parse_one("CAST('****' || lpad(right(coalesce(c, ''), 4), 4, '*') AS TEXT)")
    assert not mask_can_fail(safe.transform(lambda n: raw if n == raw else n), "VARCHAR")
    assert mask_can_fail(sqlglot.parse_one("CAST('0x' || substring(c, 1, 8) AS BIGINT)"), "VARCHAR")


def test_the_allow_list_is_pinned():
    """A new expression class is fallible until someone proves it cannot fail on any value
    (with a case in the property below) and adds it here."""
    assert ALLOWED == (
        "Column", "Literal", "Null", "Boolean", "Paren", "Alias", "Neg",
        "And", "Or", "Xor", "Not", "EQ", "NEQ", "GT", "GTE", "LT", "LTE", "NullSafeEQ",
        "NullSafeNEQ", "Between", "In", "Like", "ILike", "Is", "Exists",
        "Cast", "Case", "Coalesce", "DPipe", "Concat",
        "Upper", "Lower", "Length", "SHA2", "MD5", "Left", "Right", "Pad",
        "AggFunc", "Window", "Subquery", "Star",
    )  # fmt: skip


#: each allowed function or cast, over a column ``s`` (VARCHAR), ``k``, ``p``, ``d``, ``ts``
ALLOWED_EXPRESSIONS = [
    "upper(s)", "lower(s)", "length(s)", "sha256(s)", "md5(s)", "left(s, 4)", "right(s, 4096)",
    "lpad(s, 4, '*')", "rpad(s, 4096, 'ab')", "lpad(right(coalesce(s, ''), 4), 4, '*')",
    "s || 'x'", "CAST(k AS VARCHAR)", "CAST(p AS VARCHAR)", "CAST(d AS VARCHAR)",
    "CAST(ts AS VARCHAR)", "CAST(f AS VARCHAR)", "s LIKE '%a\\'", "s ILIKE '_%'",
    "k < 999999999999999999", "k > -999999999999999999", "p BETWEEN 0.05 AND 0.07",
    "p < 99999999999999999.9", "f IN (1, 2.5, 0.00000000000000001)", "k = f", "p = k",
    "d < '1995-01-01'", "ts < '9999-12-31 23:59:59'", "d >= CAST('0001-01-01' AS DATE)",
    "coalesce(s, 'a')", "CASE WHEN k > 0 THEN s ELSE 'n' END",
]  # fmt: skip

BIGINTS = st.one_of(
    st.sampled_from([-(2**63), 2**63 - 1, 0, -1]), st.integers(-(2**63), 2**63 - 1), st.none()
)
STRINGS = st.one_of(
    st.sampled_from(["", "\\", "%", "_", "x" * 10_000, "é" * 5000, "\x00"]), st.text(), st.none()
)
DECIMALS = st.one_of(
    st.sampled_from(["-9999999999999.99", "9999999999999.99", "0"]),
    st.decimals(-(10**13) + 1, 10**13 - 1, places=2, allow_nan=False).map(str),
    st.none(),
)
DOUBLES = st.one_of(st.sampled_from(["nan", "inf", "-inf", "1e308", "-0.0"]), st.none())
DATES = st.sampled_from(["5881580-07-10", "-5877641-06-25", "infinity", "-infinity", "1995-01-01"])
TIMESTAMPS = st.sampled_from(["294247-01-10 04:00:54", "-290308-12-22", "infinity", "2000-01-01"])


TYPES = {"k": "BIGINT", "s": "VARCHAR", "p": "DECIMAL(15,2)", "f": "DOUBLE", "d": "DATE"}
TYPES["ts"] = "TIMESTAMP"


@pytest.mark.parametrize("text", ALLOWED_EXPRESSIONS)
def test_allowed_expressions_are_plain(text: str):
    sql = f"SELECT * FROM s.t WHERE ({text}) IS NOT NULL"
    tree = qualify(sqlglot.parse_one(sql, read="duckdb"), schema={"s": {"t": TYPES}})
    assert not can_fail_before_filter(tree, {id(t): TYPES for t in tree.find_all(exp.Table)})


@settings(max_examples=30, deadline=None, derandomize=True)
@given(k=BIGINTS, s=STRINGS, p=DECIMALS, f=DOUBLES, d=DATES, ts=TIMESTAMPS)
def test_allowed_expressions_cannot_fail_on_extreme_values(k, s, p, f, d, ts):
    """DuckDB runs every allowed expression over extreme values without failing."""
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t AS SELECT ?::BIGINT AS k, ?::VARCHAR AS s, ?::DECIMAL(15,2) AS p, "
        "?::DOUBLE AS f, ?::DATE AS d, ?::TIMESTAMP AS ts",
        [k, s, p, f, d, ts],
    )
    con.execute(f"SELECT {', '.join(ALLOWED_EXPRESSIONS)} FROM t").fetchall()
