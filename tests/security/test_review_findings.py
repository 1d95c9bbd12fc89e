"""Findings of the outside review after the file-path fix, each a regression test."""

from __future__ import annotations

import time

import pytest

from meshsim.errors import QueryError
from tests.query.meshfixtures import refused

EU = "eu_marketing_analyst"


def test_star_fan_out_over_duplicate_names_is_refused_fast(run) -> None:
    """Each level of ``SELECT * FROM a AS l, a AS r`` doubled the columns DuckDB's binder built
    (uninterruptible): a 754-character query held the process for 70 s and 1.8 GB."""
    levels = ["a0 AS (SELECT 1 AS x)"] + [
        f"a{i} AS (SELECT * FROM a{i - 1} AS l, a{i - 1} AS r)" for i in range(1, 18)
    ]
    sql = "WITH " + ", ".join(levels) + " SELECT count(*) FROM a17"
    started = time.perf_counter()
    records = run.engine.audit.records
    with pytest.raises(QueryError, match="two columns with the same name"):
        run("external_partner", sql)
    assert records[-1].decision == "refused"
    assert time.perf_counter() - started < 5


def test_star_over_distinct_names_still_expands(run) -> None:
    sql = (
        "WITH a AS (SELECT n_nationkey AS k, n_name AS name FROM customer.nation), "
        "b AS (SELECT l.k AS lk, r.k AS rk FROM a AS l, a AS r) SELECT count(*) FROM "
        "(SELECT * FROM b) AS t"
    )
    assert run(EU, sql).fetchall() == [(625,)]


@pytest.mark.parametrize(
    "sql",
    [
        # sqlglot qualified the outer column with the LATERAL's own alias: authorise never saw
        # it and the audit recorded no column
        "SELECT (SELECT l.c_phone FROM (SELECT 1) AS x, LATERAL (SELECT c_phone) AS l) AS p "
        "FROM customer.customer AS l LIMIT 3",
        "SELECT count(*) FROM customer.customer, LATERAL (SELECT c_acctbal) t",  # denied too
    ],
)
def test_lateral_self_qualified_columns_are_refused(run, sql: str) -> None:
    refused(run, EU, sql, match="LATERAL|may not read column 'c_acctbal'")


def test_lateral_with_qualified_outer_columns_is_authorised_and_audited(run) -> None:
    records = run.engine.audit.records
    result = run(
        EU,
        "SELECT l.p FROM customer.customer AS c, LATERAL (SELECT c.c_phone AS p) AS l LIMIT 3",
    )
    assert all(p.startswith("****") for (p,) in result.fetchall())
    assert "customer.customer.c_phone" in records[-1].columns
    sql = "SELECT l.b FROM customer.customer AS c, LATERAL (SELECT c.c_acctbal AS b) AS l"
    refused(run, EU, sql, match="c_acctbal")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT DATE '10000-01-01' AS d",
        "SELECT CAST('infinity' AS DATE) AS d",
        "SELECT CAST('infinity' AS TIMESTAMP) AS d",
    ],
)
def test_values_python_cannot_hold_are_a_clear_error(run, sql: str) -> None:
    result = run("external_partner", sql)
    with pytest.raises(QueryError, match="column 'd' holds a value Python cannot represent"):
        result.fetchall()
    assert "d" in repr(result) and "<table>" in result._repr_html_()


def test_a_refused_command_prints_one_error_line(capsys, run, caplog) -> None:
    """Found in review: sqlglot's 'Falling back to parsing as a Command' warning printed a
    second line under meshsim's refusal."""
    import logging

    with caplog.at_level(logging.WARNING, logger="sqlglot"):
        refused(run, "governance_admin", "COPY range(100000000) sales.orders ?  ")
    assert not [r for r in caplog.records if r.name.startswith("sqlglot")]
