"""The Mesh facade's SQL surface on the example mesh: inspection statements follow
subscriptions as queries do (one answer per question), and parameters pass through."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshsim.errors import AccessDenied
from meshsim.mesh import Mesh


def test_listings_follow_an_approved_subscription(workspace: Path):
    mesh = Mesh.open(workspace)
    partner = mesh.session("external_partner")
    before = [name for (name,) in partner.sql("SHOW TABLES").fetchall()]
    assert "customer.customer" not in before
    with pytest.raises(AccessDenied):
        partner.sql("DESCRIBE customer.customer")
    request = mesh.catalog.request(
        "external_partner",
        "customer.customer_profiles",
        "segment analysis",
        tables=["customer.customer"],
        columns=["c_custkey", "c_mktsegment"],
    )
    if request.state == "pending":
        mesh.catalog.approve(request.id, by="customer-data")
    after = [name for (name,) in partner.sql("SHOW TABLES").fetchall()]
    assert after == sorted([*before, "customer.customer"])
    described = [r[0] for r in partner.sql("DESCRIBE customer.customer").fetchall()]
    assert described == ["c_custkey", "c_mktsegment"]
    columns = partner.sql(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'customer' "
        "ORDER BY ordinal_position"
    ).fetchall()
    assert [c for (c,) in columns] == described
    mesh.catalog.revoke(request.id, by="customer-data")
    assert [name for (name,) in partner.sql("SHOW TABLES").fetchall()] == before


def test_parameters_through_the_facade(built_workspace: Path):
    mesh = Mesh.open(built_workspace)
    analyst = mesh.session("eu_marketing_analyst")
    sql = "SELECT count(*) FROM sales.orders WHERE o_orderstatus = $status"
    assert (
        analyst.sql(sql, {"status": "F"}).fetchall()
        == mesh.sql("eu_marketing_analyst", sql.replace("$status", "'F'")).fetchall()
    )
    assert "o_orderstatus" in str(analyst.explain(sql, {"status": "F"}))
