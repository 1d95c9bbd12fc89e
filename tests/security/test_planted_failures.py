"""Property: an expression planted to fail only on one hidden row sends no signal.

Row-filtered scans are a plain WHERE (predicates pushed into storage) only when no expression
DuckDB could run before the filter can fail (:mod:`meshsim.query.fallible`); otherwise every
value leaves the scan gated. Hypothesis plants a failing expression (division by zero, a cast,
``error()``, a string compared with a number) that fails exactly on the row with key ``K``, in
each place DuckDB can evaluate early (WHERE, JOIN ... ON, a derived table's projection or
grouping filtered above, a CTE, IN and EXISTS subqueries, HAVING on a key). For a hidden ``K``
the query must not fail, must answer exactly what it answers for a key no row has (no
row-count signal), and must run over gated scans, where the expression sees only NULLs for
hidden rows, so its cost cannot depend on a hidden value either (no timing signal; the plan is
chosen from the text, never from data). For a visible ``K`` the same text does fail: the
planted expression is real.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshsim.errors import MeshsimError
from meshsim.mesh import Mesh
from meshsim.query.scans import VISIBLE_FLAG

CONSUMER = "eu_marketing_analyst"
NO_SUCH_KEY = -7

#: fails on the row whose ``{key}`` column equals ``{k}``, and nowhere else
FAILURES = {
    "division by zero": "1 // ({key} - {k}) IS NOT NULL",
    "modulo by zero": "(5 % ({key} - {k})) IS NOT NULL",
    "cast": "CAST(CASE WHEN {key} = {k} THEN 'x' ELSE '1' END AS INTEGER) = 1",
    "strptime": "strptime(CASE WHEN {key} = {k} THEN 'x' ELSE '1999' END, '%Y') IS NOT NULL",
    "string = number": "(CASE WHEN {key} = {k} THEN 'x' ELSE '1' END) = 1",
}

#: each place DuckDB may evaluate a predicate before the row filter; {p} is the planted one
PLACES = {
    "orders": {
        "where": "SELECT count(*) FROM sales.orders WHERE {sel} AND {p}",
        "or": "SELECT count(*) FROM sales.orders WHERE {sel} AND ({p} OR o_orderkey < 0)",
        "join on": "SELECT count(*) FROM sales.orders o JOIN customer.customer c "
        "ON o.o_custkey = c.c_custkey AND {p} WHERE {sel}",
        "left join on": "SELECT count(*) FROM customer.customer c LEFT JOIN sales.orders o "
        "ON o.o_custkey = c.c_custkey AND {sel} AND {p} WHERE o.o_orderkey IS NOT NULL",
        "derived": "SELECT count(*) FROM (SELECT o_orderkey, {p} AS ok FROM sales.orders) t "
        "WHERE t.ok AND t.o_orderkey = {k}",
        "cte": "WITH t AS (SELECT * FROM sales.orders WHERE {p}) "
        "SELECT count(*) FROM t WHERE {sel}",
        "in subquery": "SELECT count(*) FROM customer.customer WHERE c_custkey IN "
        "(SELECT o_custkey FROM sales.orders WHERE {sel} AND {p})",
        "exists": "SELECT count(*) FROM customer.customer c WHERE EXISTS "
        "(SELECT 1 FROM sales.orders o WHERE o.o_custkey = c.c_custkey AND {sel} AND {p})",
        "having": "SELECT o_orderkey, count(*) FROM sales.orders GROUP BY o_orderkey "
        "HAVING {sel} AND {p}",
        "group key": "SELECT count(*) FROM (SELECT {p} AS g FROM sales.orders "
        "WHERE {sel} GROUP BY g) t WHERE t.g",
    },
    "customer": {
        "where": "SELECT count(*) FROM customer.customer WHERE {sel} AND {p}",
        "masked column": "SELECT count(*) FROM customer.customer WHERE {sel} "
        "AND CASE WHEN c_phone = '****1234' THEN true ELSE {p} END",
    },
}
KEY_COLUMN = {"orders": "o_orderkey", "customer": "c_custkey"}


@pytest.fixture(scope="module")
def mesh(built_workspace: Path) -> Mesh:
    return Mesh.open(built_workspace)


def _keys(mesh: Mesh, table: str, visible: bool) -> list[int]:
    region = "=" if visible else "<>"
    join = {
        "orders": "FROM sales.orders o JOIN customer.customer c ON o.o_custkey = c.c_custkey",
        "customer": "FROM customer.customer c",
    }[table]
    sql = (
        f"SELECT {KEY_COLUMN[table]} {join} JOIN customer.nation n "
        f"ON c.c_nationkey = n.n_nationkey JOIN customer.region r ON n.n_regionkey = "
        f"r.r_regionkey WHERE r.r_name {region} 'EUROPE' ORDER BY 1 LIMIT 5"
    )
    return [row[0] for row in mesh.sql("governance_admin", sql).fetchall()]


@pytest.fixture(scope="module")
def keys(mesh: Mesh) -> dict[tuple[str, bool], list[int]]:
    return {(t, v): _keys(mesh, t, v) for t in KEY_COLUMN for v in (True, False)}


def _query(table: str, place: str, failure: str, k: int) -> str:
    key = KEY_COLUMN[table]
    planted = FAILURES[failure].format(key=key, k=k)
    return PLACES[table][place].format(sel=f"{key} = {k}", p=planted, k=k)


PLANTS = st.sampled_from(
    [(table, place) for table, places in PLACES.items() for place in places]
).flatmap(
    lambda tp: st.tuples(
        st.just(tp[0]), st.just(tp[1]), st.sampled_from(sorted(FAILURES)), st.integers(0, 4)
    )
)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(plant=PLANTS)
def test_a_failure_planted_on_a_hidden_row_sends_no_signal(mesh: Mesh, keys, plant):
    table, place, failure, index = plant
    hidden = keys[(table, False)][index]
    sql = _query(table, place, failure, hidden)
    answer = mesh.sql(CONSUMER, sql).fetchall()
    assert answer == mesh.sql(CONSUMER, _query(table, place, failure, NO_SUCH_KEY)).fetchall()
    assert VISIBLE_FLAG in mesh.explain(CONSUMER, sql).governed_sql


@pytest.mark.parametrize("table", sorted(KEY_COLUMN))
@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_the_planted_failure_fails_on_a_visible_row(mesh: Mesh, keys, table, failure):
    visible = keys[(table, True)][0]
    with pytest.raises(MeshsimError):
        mesh.sql(CONSUMER, _query(table, "where", failure, visible)).fetchall()


SAFE_PREDICATES = st.sampled_from(
    [
        "o_orderdate < DATE '1995-03-15'",
        "o_orderdate >= CAST('1995-01-01' AS DATE)",
        "o_totalprice BETWEEN 1000 AND 100000.5",
        "o_orderstatus IN ('F', 'O')",
        "o_comment LIKE '%special%'",
        "o_comment NOT LIKE '%request%'",
        "o_clerk = 'Clerk#000000951'",
        "o_orderpriority IS NOT NULL",
        "o_totalprice > -5 AND o_orderkey < 999999999999999999",
        "upper(o_clerk) = 'CLERK#000000951'",
        "o_orderkey = o_custkey",
        "o_orderdate > '1996-01-01'",
    ]
)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(predicates=st.lists(SAFE_PREDICATES, min_size=1, max_size=3), disjunct=st.booleans())
def test_a_query_that_cannot_fail_reads_a_plain_filter_with_the_same_answer(
    mesh: Mesh, predicates, disjunct
):
    condition = (" OR " if disjunct else " AND ").join(f"({p})" for p in predicates)
    sql = f"SELECT count(*), sum(o_totalprice) FROM sales.orders WHERE {condition}"
    plan = mesh.explain(CONSUMER, sql).governed_sql
    assert VISIBLE_FLAG not in plan
    reference = (
        f"SELECT count(*), sum(o_totalprice) FROM sales.orders o JOIN customer.customer c "
        f"ON o.o_custkey = c.c_custkey JOIN customer.nation n ON c.c_nationkey = n.n_nationkey "
        f"JOIN customer.region r ON n.n_regionkey = r.r_regionkey "
        f"WHERE r.r_name = 'EUROPE' AND ({condition})"
    )
    assert mesh.sql(CONSUMER, sql).fetchall() == mesh.sql("governance_admin", reference).fetchall()
