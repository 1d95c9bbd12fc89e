"""What ``show --as`` and ``products --as`` tell a consumer about row counts (issue 8: they
printed the totals, which reveal how many rows a row filter hides)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshsim.errors import MeshsimError
from meshsim.mesh import Mesh
from tests.cli.clihelpers import run

ANALYST = "eu_marketing_analyst"


def governed_count(mesh: Mesh, consumer: str, table: str) -> int:
    return mesh.session(consumer).sql(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def test_show_as_a_filtered_consumer_counts_only_its_rows(capsys, built_workspace: Path):
    mesh = Mesh.open(built_workspace)
    visible = governed_count(mesh, ANALYST, "customer.customer")
    total = governed_count(mesh, "governance_admin", "customer.customer")
    assert visible < total  # the row filter hides rows: their number is what must not leak
    code, out, err = run(
        capsys,
        "show",
        "customer.customer_profiles",
        "--as",
        ANALYST,
        "--workspace",
        str(built_workspace),
        "--format",
        "json",
    )
    assert code == 0, err
    [latest] = json.loads(out)["versions"]
    assert latest["rows"] == {
        "customer.customer": visible,
        "customer.nation": 25,
        "customer.region": 5,
    }
    assert str(total) not in out


def test_show_as_a_consumer_without_a_grant_counts_nothing(built_workspace: Path):
    details = Mesh.open(built_workspace).show("sales.order_history", as_consumer="external_partner")
    assert details.versions[0]["rows"] == {"sales.orders": None, "sales.lineitem": None}


def test_the_catalog_alone_never_shows_a_consumer_the_totals(built_workspace: Path):
    """``mesh.catalog.show`` cannot count through governed SQL, so as a consumer it counts
    nothing rather than falling back to the totals."""
    details = Mesh.open(built_workspace).catalog.show(
        "customer.customer_profiles", as_consumer=ANALYST
    )
    assert set(details.versions[0]["rows"].values()) == {None}


def test_products_as_a_consumer_sums_what_it_can_count(capsys, built_workspace: Path):
    mesh = Mesh.open(built_workspace)
    visible = governed_count(mesh, ANALYST, "customer.customer") + 25 + 5
    code, out, err = run(
        capsys, "products", "--as", ANALYST, "--workspace", str(built_workspace), "--format", "json"
    )
    assert code == 0, err
    rows = {p["product"]: p["rows"] for p in json.loads(out)}
    assert rows["customer.customer_profiles"] == visible
    assert rows["supply.supply_catalog"] is None  # no grant on any of its tables
    orders = governed_count(mesh, ANALYST, "sales.orders")
    lineitems = governed_count(mesh, ANALYST, "sales.lineitem")
    assert rows["sales.order_history"] == orders + lineitems


def test_products_without_as_is_the_operator_view(capsys, built_workspace: Path):
    """The same totals 'meshsim tables' reads from the Delta logs of the workspace."""
    mesh = Mesh.open(built_workspace)
    totals = {t.ref: t.rows for t in mesh.tables()}
    listed = {p["product"]: p["rows"] for p in mesh.products()}
    assert listed["customer.customer_profiles"] == sum(
        totals[t] for t in ("customer.customer", "customer.nation", "customer.region")
    )


def test_counts_for_a_consumer_are_its_own_audited_queries(workspace: Path):
    mesh = Mesh.open(workspace)
    start = max(r["id"] for r in mesh.catalog.audit())
    mesh.products(as_consumer="supply_planner")
    mine = [r for r in mesh.audit(as_consumer="supply_planner") if r["id"] > start]
    assert {r["sql"] for r in mine} >= {
        "SELECT COUNT(*) FROM supply.part AT (VERSION => 0)",
        "SELECT COUNT(*) FROM sales.lineitem AT (VERSION => 0)",
    }
    assert {r["decision"] for r in mine} == {"allowed"}  # no table it lacks a grant on is tried


def test_unknown_consumer_for_counts_suggests(built_workspace: Path):
    with pytest.raises(MeshsimError, match="did you mean 'eu_marketing_analyst'"):
        Mesh.open(built_workspace).products(as_consumer="eu_marketing_analist")
