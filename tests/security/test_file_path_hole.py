"""Regression tests for the file-path hole (issue 8).

A CTE named after a path of the workspace's files, referenced where DuckDB does not bind it as
the CTE (the anchor of a recursive CTE, the body of a recursive EXCEPT/INTERSECT), was a
replacement scan of the file for DuckDB while sqlglot's scopes saw the CTE: no governed scan
was bound and every consumer read raw rows. Every shape must be refused (and audited as
refused), for every consumer, whatever the path looks like.
"""

from __future__ import annotations

import glob
import os

import pytest

from meshsim.errors import QueryError
from tests.query.meshdata import CANARY, SECRET, MeshData
from tests.query.meshfixtures import make_engine, refused

CONSUMERS = [
    "governance_admin",
    "eu_marketing_analyst",
    "finance_controller",
    "supply_planner",
    "external_partner",
]

SHAPES = {
    "anchor": 'WITH RECURSIVE "{n}" AS (SELECT * FROM "{n}" UNION ALL SELECT * FROM "{n}" '
    'WHERE false) SELECT * FROM "{n}" LIMIT 5',
    "anchor_aggregate": 'WITH RECURSIVE "{n}" AS (SELECT count(*) AS c FROM "{n}" UNION ALL '
    'SELECT c FROM "{n}" WHERE false) SELECT * FROM "{n}"',
    "anchor_in_subquery": 'WITH RECURSIVE "{n}" AS (SELECT 1 AS a UNION ALL SELECT 1 FROM "{n}" '
    'WHERE false) SELECT * FROM customer.nation WHERE n_nationkey IN (SELECT 1 FROM "{n}")',
    "except_body": 'WITH RECURSIVE "{n}" AS (SELECT 1 AS a EXCEPT SELECT 2 FROM "{n}") '
    'SELECT count(*) FROM "{n}"',
    "intersect_body": 'WITH RECURSIVE "{n}" AS (SELECT 1 AS a INTERSECT SELECT 1 FROM "{n}") '
    'SELECT * FROM "{n}"',
    "nested_with": 'SELECT * FROM (WITH RECURSIVE "{n}" AS (SELECT * FROM "{n}" UNION ALL '
    'SELECT * FROM "{n}" WHERE false) SELECT * FROM "{n}") AS t LIMIT 5',
    "plain_cte_self": 'WITH "{n}" AS (SELECT * FROM "{n}") SELECT * FROM "{n}" LIMIT 5',
}


def _paths(mesh: MeshData) -> dict[str, str]:
    customer = mesh.path("customer.customer")
    supplier = mesh.path("supply.supplier")
    data_file = sorted(glob.glob(os.path.join(customer, "*.parquet")))[0]
    return {
        "file": data_file,
        "glob": os.path.join(customer, "*.parquet"),
        "question_mark": os.path.join(customer[:-1] + "?", "*.parquet"),
        "other_table": os.path.join(supplier, "*.parquet"),
        "delta_log": os.path.join(customer, "_delta_log", "*.json"),
        "relative": os.path.relpath(data_file, mesh.root),
        "relative_glob": os.path.join("customer", "customer", "*.parquet"),
    }


@pytest.fixture
def fresh_engine(mesh: MeshData):
    engine, audit = make_engine(mesh)
    yield engine, audit
    engine.close()


@pytest.mark.parametrize("consumer", CONSUMERS)
@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize(
    "path_kind",
    ["file", "glob", "question_mark", "other_table", "delta_log", "relative", "relative_glob"],
)
def test_path_named_cte_is_refused(
    mesh: MeshData, fresh_engine, monkeypatch, consumer: str, shape: str, path_kind: str
) -> None:
    engine, audit = fresh_engine
    monkeypatch.chdir(mesh.root)  # relative paths would resolve against the working directory
    sql = SHAPES[shape].format(n=_paths(mesh)[path_kind])
    with pytest.raises(QueryError) as info:
        result = engine.session(consumer).sql(sql)
        pytest.fail(f"query ran and returned {result.arrow().to_pylist()[:2]}")
    assert CANARY not in info.value.message and SECRET not in info.value.message
    assert [r.decision for r in audit.records] == ["refused"], info.value.message


@pytest.mark.parametrize(
    "name",
    ["a/b", "a*", "a?", "x.parquet", "data.csv", "./t", "~", "C:\\x", "s3://bucket/x"],
)
def test_path_like_cte_and_alias_names_are_refused(run, name: str) -> None:
    for sql in (
        f'WITH "{name}" AS (SELECT 1 AS a) SELECT a FROM "{name}"',
        f'SELECT "{name}".n_name FROM customer.nation AS "{name}"',
        f'SELECT t.a FROM (SELECT 1 AS a) AS "{name}"',
    ):
        refused(run, "governance_admin", sql, match="name")


def test_recursive_cte_in_the_shape_duckdb_binds_still_works(run) -> None:
    result = run(
        "governance_admin",
        "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 5) "
        "SELECT sum(n) AS s FROM r",
    )
    assert result.fetchall() == [(15,)]
    result = run(
        "eu_marketing_analyst",
        "WITH RECURSIVE r AS (SELECT 1 AS n UNION SELECT n + 1 FROM r WHERE n < 3) "
        "SELECT count(*) AS c FROM r JOIN customer.nation ON n_nationkey = n",
    )
    assert result.fetchall()[0][0] >= 0


@pytest.mark.parametrize(
    "sql, reason",
    [
        (
            "WITH RECURSIVE r AS (SELECT n + 1 AS n FROM r UNION ALL SELECT 1) SELECT * FROM r",
            "anchor",
        ),
        ("WITH RECURSIVE r AS (SELECT 1 AS n EXCEPT SELECT 2 FROM r) SELECT * FROM r", "UNION"),
        ("WITH RECURSIVE r AS (SELECT 1 AS n INTERSECT SELECT 1 FROM r) SELECT * FROM r", "UNION"),
        ("WITH RECURSIVE r AS (SELECT * FROM r) SELECT * FROM r", "UNION"),
    ],
)
def test_recursive_ctes_duckdb_binds_differently_are_refused(run, sql: str, reason: str) -> None:
    refused(run, "governance_admin", sql, match=reason)
