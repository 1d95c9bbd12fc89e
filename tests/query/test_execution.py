"""Governed results against an independent reference computed with pyarrow/polars over
deltalake's own reader."""

from __future__ import annotations

import polars as pl
import pytest

from meshsim.errors import AccessDenied, QueryError
from tests.query.meshdata import EUROPE, EXTRA_ORDERS, N_ORDERS, MeshData, region_of_nation


def europe_customers(mesh: MeshData) -> pl.DataFrame:
    df = pl.from_arrow(mesh.read("customer.customer"))
    return df.filter(
        pl.col("c_nationkey").map_elements(
            lambda n: region_of_nation(n) == EUROPE, return_dtype=pl.Boolean
        )
    )


def test_eu_analyst_sees_europe_only_with_masks(run, mesh: MeshData) -> None:
    result = run(
        "eu_marketing_analyst",
        "SELECT c_custkey, c_phone, c_address, c_comment FROM customer.customer ORDER BY c_custkey",
    ).pl()
    expected = europe_customers(mesh).sort("c_custkey")
    assert result["c_custkey"].to_list() == expected["c_custkey"].to_list()
    want_phone = ["****" + (p or "")[-4:].rjust(4, "*") for p in expected["c_phone"].to_list()]
    assert result["c_phone"].to_list() == want_phone
    assert set(result["c_address"].to_list()) == {"****"}
    assert result["c_comment"].to_list() == expected["c_comment"].to_list()


def test_eu_analyst_refused_acctbal(run) -> None:
    with pytest.raises(AccessDenied):
        run("eu_marketing_analyst", "SELECT c_acctbal FROM customer.customer")


def test_eu_analyst_star_excludes_denied(run) -> None:
    cols = run("eu_marketing_analyst", "SELECT * FROM customer.customer LIMIT 1").columns
    assert "c_acctbal" not in cols and "c_name" in cols


def test_eu_analyst_orders_are_filtered(run, mesh: MeshData) -> None:
    orders = pl.from_arrow(mesh.read("sales.orders"))
    eu = set(europe_customers(mesh)["c_custkey"].to_list())
    expected = orders.filter(pl.col("o_custkey").is_in(list(eu)))["o_totalprice"].sum()
    got = run("eu_marketing_analyst", "SELECT sum(o_totalprice) FROM sales.orders").fetchall()
    assert got == [(expected,)]


def test_finance_sees_balances_and_masked_pii(run, mesh: MeshData) -> None:
    ref = pl.from_arrow(mesh.read("customer.customer"))
    got = run(
        "finance_controller",
        "SELECT sum(c_acctbal), count(*), count(DISTINCT c_name) FROM customer.customer",
    )
    assert got.fetchall() == [(ref["c_acctbal"].sum(), ref.height, ref.height)]
    names = run("finance_controller", "SELECT c_name, c_phone FROM customer.customer").pl()
    assert not any("SECRETPII" in n for n in names["c_name"].to_list())
    assert all(len(n) == 64 for n in names["c_name"].to_list())


def test_supply_planner(run, mesh: MeshData) -> None:
    ref = pl.from_arrow(mesh.read("sales.lineitem"))
    got = run(
        "supply_planner",
        "SELECT sum(l_extendedprice * (1 - l_discount)) "
        "FROM sales.lineitem WHERE l_shipdate <= DATE '1996-01-01'",
    ).fetchall()[0][0]
    import datetime

    want = sum(
        r["l_extendedprice"] * (1 - r["l_discount"])
        for r in ref.to_dicts()
        if r["l_shipdate"] <= datetime.date(1996, 1, 1)
    )
    assert got == want
    with pytest.raises(AccessDenied):
        run("supply_planner", "SELECT count(*) FROM sales.orders")
    with pytest.raises(AccessDenied):
        run("supply_planner", "SELECT max(s_acctbal) FROM supply.supplier")
    assert run("supply_planner", "SELECT count(*) FROM supply.supplier").fetchall() == [(10,)]


def test_external_partner_sees_part_only(run, mesh: MeshData) -> None:
    assert run("external_partner", "SELECT count(*) FROM supply.part").fetchall() == [(50,)]
    for ref in [
        "supply.supplier",
        "supply.partsupp",
        "customer.customer",
        "sales.orders",
        "customer.nation",
    ]:
        with pytest.raises(AccessDenied):
            run("external_partner", f"SELECT count(*) FROM {ref}")


def test_admin_sees_everything(run, mesh: MeshData) -> None:
    got = run("governance_admin", "SELECT * FROM customer.customer ORDER BY c_custkey").arrow()
    ref = mesh.read("customer.customer").sort_by("c_custkey")
    assert got.to_pylist() == ref.select(got.column_names).to_pylist()
    assert got.column_names == ref.column_names


def test_time_travel_under_same_policies(run, mesh: MeshData) -> None:
    now = run("governance_admin", "SELECT count(*) FROM sales.orders").fetchall()
    then = run("governance_admin", "SELECT count(*) FROM sales.orders AT (VERSION => 0)").fetchall()
    assert now == [(N_ORDERS + EXTRA_ORDERS,)] and then == [(N_ORDERS,)]
    eu_then = run(
        "eu_marketing_analyst", "SELECT o_comment FROM sales.orders AT (VERSION => 0)"
    ).pl()
    assert not any("CANARY" in c for c in eu_then["o_comment"].to_list())


def test_tpch_q1_shape(run, mesh: MeshData) -> None:
    sql = """
        SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty,
               sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
               avg(l_discount) AS avg_disc, count(*) AS count_order
        FROM sales.lineitem
        WHERE l_shipdate <= DATE '1998-12-01' - INTERVAL '90' DAY
        GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus"""
    got = run("supply_planner", sql).pl()
    ref = (
        pl.from_arrow(mesh.read("sales.lineitem"))
        .group_by("l_returnflag", "l_linestatus")
        .agg(pl.len().alias("n"))
        .sort("l_returnflag", "l_linestatus")
    )
    assert got["count_order"].to_list() == ref["n"].to_list()


def test_result_api(run) -> None:
    r = run("external_partner", "SELECT p_partkey, p_name FROM supply.part ORDER BY 1 LIMIT 2")
    assert r.columns == ["p_partkey", "p_name"] and r.num_rows == 2
    assert r.fetchall() == [(0, "part 0"), (1, "part 1")]
    assert "2 rows" in repr(r) and "<table>" in r._repr_html_()
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(QueryError):
            r.df()


def test_explain(engine) -> None:
    e = engine.session("eu_marketing_analyst").explain("SELECT c_phone FROM customer.customer")
    (table,) = e.tables
    assert table["table"] == "customer.customer"
    assert table["columns"]["c_phone"]["state"] == "masked"
    assert table["columns"]["c_acctbal"]["state"] == "denied"
    assert any(f.startswith("regional_customers") for f in table["row_filters"])
    assert engine.planner.mesh_key.hex() not in e.governed_sql and "<mesh-key>" in e.governed_sql


def test_audit_records_everything(engine, audit) -> None:
    s = engine.session("supply_planner")
    before = len(audit)
    s.sql("SELECT count(*) FROM supply.part")
    with pytest.raises(AccessDenied):
        s.sql("SELECT * FROM sales.orders")
    with pytest.raises(QueryError):
        s.sql("DROP TABLE x")
    records = audit.records[before:]
    assert [r.decision for r in records] == ["allowed", "refused", "refused"]
    assert records[0].tables == (("supply.part", 0),) and records[0].rows == 1
    assert "sales.orders" in records[1].reason


def test_a_governed_statement_is_parsed_once_and_answers_the_same(mesh: MeshData) -> None:
    from tests.query.meshfixtures import make_engine

    engine, _ = make_engine(mesh)
    sql = "SELECT c_custkey, c_phone FROM customer.customer ORDER BY c_custkey"
    try:
        session = engine.session("eu_marketing_analyst")
        first = session.sql(sql).arrow()
        parsed = engine.duck.parsed
        plan_sql = engine.plan(engine.attempt("eu_marketing_analyst", sql)).sql
        statement = parsed.of(engine.connection, plan_sql)
        again = session.sql(sql).arrow()
        assert again.equals(first)
        assert len(parsed) == 1 and parsed.of(engine.connection, plan_sql) is statement
    finally:
        engine.close()


def test_parsed_statements_keep_the_latest_and_never_merge_statements() -> None:
    import duckdb

    from meshsim.engine import ParsedStatements

    con = duckdb.connect()
    try:
        parsed = ParsedStatements(size=2)
        one = parsed.of(con, "SELECT 1")
        parsed.of(con, "SELECT 2")
        assert parsed.of(con, "SELECT 1") is one  # used last: kept
        parsed.of(con, "SELECT 3")  # drops SELECT 2
        assert len(parsed) == 2 and parsed.of(con, "SELECT 1") is one
        assert parsed.of(con, "SELECT 1; SELECT 2") == "SELECT 1; SELECT 2"
        assert con.sql(one).fetchall() == [(1,)]
    finally:
        con.close()
