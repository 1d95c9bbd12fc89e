"""Row filters must hide rows from every expression of the consumer's query, even when DuckDB
evaluates the consumer's predicates before the filter (it pushes them below the semi join that
an IN-subquery filter becomes). A predicate that fails on some values would otherwise be an
oracle: the query fails only when a hidden row exists (GOVERNANCE.md, attack class 9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshsim.mesh import Mesh

FAILING_PREDICATES = (
    "CAST({column} AS INTEGER) = 0",
    "strptime({column}, '%Y') IS NULL",
)


@pytest.fixture(scope="module")
def mesh(built_workspace: Path) -> Mesh:
    return Mesh.open(built_workspace)


def hidden_key(mesh: Mesh, sql: str) -> int:
    (row,) = mesh.sql("governance_admin", sql).fetchall()
    return row[0]


@pytest.mark.parametrize("predicate", FAILING_PREDICATES)
def test_a_failing_predicate_cannot_probe_hidden_orders(mesh: Mesh, predicate: str):
    key = hidden_key(
        mesh,
        "SELECT min(o.o_orderkey) FROM sales.orders o JOIN customer.customer c "
        "ON o.o_custkey = c.c_custkey JOIN customer.nation n ON c.c_nationkey = n.n_nationkey "
        "JOIN customer.region r ON n.n_regionkey = r.r_regionkey WHERE r.r_name <> 'EUROPE'",
    )
    probe = predicate.format(column="o_comment")
    for sql in (
        f"SELECT count(*) FROM sales.orders WHERE o_orderkey = {key} AND {probe}",
        f"SELECT count(*) FROM sales.orders AT (VERSION => 0) WHERE o_orderkey = {key} AND {probe}",
        f"SELECT count(*) FROM sales.orders o LEFT JOIN customer.customer c "
        f"ON o.o_custkey = c.c_custkey AND {predicate.format(column='o.o_comment')} "
        f"WHERE o.o_orderkey = {key}",
    ):
        assert mesh.sql("eu_marketing_analyst", sql).fetchall() == [(0,)], sql


@pytest.mark.parametrize("predicate", FAILING_PREDICATES)
def test_a_failing_predicate_cannot_probe_hidden_customers(mesh: Mesh, predicate: str):
    key = hidden_key(
        mesh,
        "SELECT min(c.c_custkey) FROM customer.customer c JOIN customer.nation n "
        "ON c.c_nationkey = n.n_nationkey JOIN customer.region r ON n.n_regionkey = r.r_regionkey "
        "WHERE r.r_name <> 'EUROPE'",
    )
    probe = predicate.format(column="c_comment")
    sql = f"SELECT count(*) FROM customer.customer WHERE c_custkey = {key} AND {probe}"
    assert mesh.sql("eu_marketing_analyst", sql).fetchall() == [(0,)]
