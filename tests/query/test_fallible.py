"""Which queries need gated row-filtered scans (:mod:`meshsim.query.fallible`)."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp
from sqlglot.optimizer.qualify import qualify

from meshsim.query.fallible import can_fail_before_filter, mask_can_fail

SCHEMA = {"s": {"t": {"k": "BIGINT", "name": "VARCHAR", "d": "DATE", "p": "DECIMAL(15,2)"}}}


def needs_gate(sql: str) -> bool:
    tree = qualify(sqlglot.parse_one(sql, read="duckdb"), schema=SCHEMA, dialect="duckdb")
    types = {id(t): SCHEMA["s"]["t"] for t in tree.find_all(exp.Table) if t.name == "t"}
    return can_fail_before_filter(tree, types)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT k, CAST(name AS INT) / 0 FROM s.t",  # the outermost projection runs last
        "SELECT * FROM s.t WHERE d <= DATE '1998-12-01' - INTERVAL '90' DAY",
        "SELECT * FROM s.t WHERE p BETWEEN 0.06 - 0.01 AND 0.06 + 0.01 AND k < 24",
        "SELECT * FROM s.t WHERE name LIKE '%a%' AND name NOT IN ('x', 'y') AND d IS NULL",
        "SELECT * FROM s.t WHERE d > '1995-01-01' AND EXTRACT(year FROM d) = 1995",
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
    ],
)
def test_queries_that_could_fail_before_a_filter(sql: str):
    assert needs_gate(sql)


def test_masks_that_could_fail_gate_the_scan():
    raw = exp.column("c")
    safe = sqlglot.parse_one("CAST('****' || lpad(right(coalesce(c, ''), 4), 4, '*') AS TEXT)")
    assert not mask_can_fail(safe.transform(lambda n: raw if n == raw else n), "VARCHAR")
    assert mask_can_fail(sqlglot.parse_one("CAST('0x' || substring(c, 1, 8) AS BIGINT)"), "VARCHAR")
