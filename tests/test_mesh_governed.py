"""The Mesh facade end to end on the example mesh: governed SQL, the subscription workflow,
the audit log as a governed table, and cache invalidation when policies or data change."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from meshsim.demo import DEMO_QUERY
from meshsim.errors import AccessDenied
from meshsim.mesh import Mesh
from meshsim.query import pipeline
from meshsim.query.pipeline import Rule
from meshsim.storage import delta
from tests.conftest import EXAMPLE_MESH, edit

EUROPE = {"FRANCE", "GERMANY", "ROMANIA", "RUSSIA", "UNITED KINGDOM"}


def test_the_demo_query_differs_by_consumer(built_workspace: Path):
    mesh = Mesh.open(built_workspace)
    admin = mesh.sql("governance_admin", DEMO_QUERY.replace("LIMIT 5", ""))
    eu = mesh.sql("eu_marketing_analyst", DEMO_QUERY.replace("LIMIT 5", ""))
    finance = mesh.sql("finance_controller", DEMO_QUERY.replace("LIMIT 5", ""))
    assert len(admin) == 25 and finance.fetchall() == admin.fetchall()
    assert {row[0] for row in eu.fetchall()} == EUROPE
    by_nation = {row[0]: row for row in admin.fetchall()}
    for row in eu.fetchall():
        assert row == by_nation[row[0]]  # same answer for the rows the analyst may see


def test_masks_hold_in_joins_and_filters(built_workspace: Path):
    mesh = Mesh.open(built_workspace)
    rows = mesh.sql(
        "eu_marketing_analyst",
        "SELECT c.c_phone, c.c_address FROM customer.customer c JOIN sales.orders o "
        "ON o.o_custkey = c.c_custkey WHERE c.c_phone LIKE '%1' LIMIT 20",
    ).fetchall()
    assert rows and all(p.startswith("****") and len(p) == 8 and a == "****" for p, a in rows)
    raw = mesh.sql("governance_admin", "SELECT c_phone FROM customer.customer").fetchall()
    assert not {p for p, _ in rows} & {p for (p,) in raw}


def test_subscription_workflow_is_enforced_at_once(workspace: Path):
    mesh = Mesh.open(workspace)
    query = "SELECT count(*) FROM customer.customer"
    with pytest.raises(AccessDenied, match="has no grant on table 'customer.customer'"):
        mesh.sql("external_partner", query)
    request = mesh.catalog.request(
        "external_partner",
        "customer.customer_profiles",
        "segment analysis",
        tables=["customer.customer"],
        columns=["c_custkey", "c_name", "c_mktsegment"],
    )
    assert request.state == "pending"  # c_name is PII: the owner decides
    with pytest.raises(
        AccessDenied, match=f"request {request.id} for customer.customer_profiles is still pending"
    ):
        mesh.sql("external_partner", query)
    mesh.catalog.approve(
        request.id,
        by="customer-data",
        columns=["c_custkey", "c_mktsegment"],
        comment="segments yes, names no",
    )
    assert mesh.sql("external_partner", query).fetchall() == [(1500,)]
    with pytest.raises(AccessDenied, match="may not read column 'c_name'"):
        mesh.sql("external_partner", "SELECT c_name FROM customer.customer")
    mesh.catalog.revoke(request.id, by="customer-data")
    with pytest.raises(
        AccessDenied,
        match=f"request {request.id} for customer.customer_profiles was revoked by customer-data",
    ):
        mesh.sql("external_partner", query)


def test_every_attempt_is_audited_and_admins_query_the_audit(workspace: Path):
    mesh = Mesh.open(workspace)
    start = max((r["id"] for r in mesh.audit(as_consumer="governance_admin")), default=0)
    mesh.sql("supply_planner", "SELECT count(*) FROM sales.lineitem")
    with pytest.raises(AccessDenied):
        mesh.sql("supply_planner", "SELECT count(*) FROM sales.orders")
    records = [r for r in mesh.audit(as_consumer="governance_admin") if r["kind"] == "query"]
    assert [(r["consumer"], r["decision"]) for r in records[:2]] == [
        ("supply_planner", "refused"),
        ("supply_planner", "allowed"),
    ]
    assert records[1]["tables"] == [["sales.lineitem", 0]] and records[1]["rows"] == 1
    assert "sales.orders" in records[0]["reason"]
    rows = mesh.sql(
        "governance_admin",
        "SELECT consumer, decision, count(*) FROM meshsim.audit WHERE kind = 'query' "
        f"AND id > {start} GROUP BY consumer, decision ORDER BY decision",
    ).fetchall()
    assert rows == [("supply_planner", "allowed", 1), ("supply_planner", "refused", 1)]
    with pytest.raises(AccessDenied, match="only governance admins"):
        mesh.sql("finance_controller", "SELECT count(*) FROM meshsim.audit")


def test_policy_edits_take_effect_on_the_next_query(workspace: Path, mesh_copy: Path):
    mesh = Mesh.open(workspace, mesh_dir=mesh_copy)
    before = mesh.sql("finance_controller", "SELECT c_acctbal FROM customer.customer LIMIT 1")
    assert before.num_rows == 1
    edit(
        mesh_copy / "mesh.yaml",
        "      product: customer.customer_profiles\n    - name: finance_order_history",
        "      product: customer.customer_profiles\n      exclude_columns: [customer.customer.c_acctbal]\n"
        "    - name: finance_order_history",
    )
    with pytest.raises(AccessDenied, match="may not read column 'c_acctbal'"):
        mesh.sql("finance_controller", "SELECT c_acctbal FROM customer.customer LIMIT 1")


def test_new_table_versions_are_read_on_the_next_query(workspace: Path):
    mesh = Mesh.open(workspace)
    count = "SELECT count(*) FROM customer.region"
    assert mesh.sql("eu_marketing_analyst", count).fetchall() == [(5,)]
    extra = pa.table(
        {"r_regionkey": pa.array([5], pa.int64()), "r_name": ["ANTARCTICA"], "r_comment": ["cold"]}
    )
    version = mesh.write("customer.region", extra, mode="append").version
    assert mesh.sql("eu_marketing_analyst", count).fetchall() == [(6,)]
    pinned = f"SELECT count(*) FROM customer.region AT (VERSION => {version - 1})"
    assert mesh.sql("eu_marketing_analyst", pinned).fetchall() == [(5,)]


def test_a_commit_nobody_published_is_not_read(workspace: Path):
    mesh = Mesh.open(workspace)
    count = "SELECT count(*) FROM customer.region"
    extra = pa.table(
        {"r_regionkey": pa.array([5], pa.int64()), "r_name": ["ANTARCTICA"], "r_comment": ["cold"]}
    )
    delta.write(mesh.locate("customer.region"), extra, mode="append", table="customer.region")
    assert mesh.sql("eu_marketing_analyst", count).fetchall() == [(5,)]
    assert mesh.tables()[2].ref == "customer.region" and mesh.tables()[2].version == 0


def test_explain_names_tables_versions_policies_and_hides_the_key(built_workspace: Path):
    mesh = Mesh.open(built_workspace)
    text = str(mesh.explain("eu_marketing_analyst", "SELECT c_phone FROM customer.customer"))
    assert "customer.customer @ version 0" in text
    assert "c_phone: masked (mask marketing_phone_last4 (show_last))" in text
    assert "regional_customers" in text and "'EUROPE'" in text
    assert mesh.workspace.mesh_key().hex() not in text and "<mesh-key>" in text


def test_a_moved_workspace_still_works(example_build: Path, tmp_path: Path):
    moved = tmp_path / "elsewhere"
    shutil.copytree(example_build, moved)
    assert Mesh.open(moved).sql(
        "governance_admin", "SELECT count(*) FROM supply.part"
    ).fetchall() == [(2000,)]


def test_mesh_from_the_example_folder_is_the_default(built_workspace: Path):
    assert Mesh.open(built_workspace).mesh_dir == EXAMPLE_MESH.resolve()


def test_a_session_held_across_a_spec_edit_follows_the_new_spec(workspace: Path, mesh_copy: Path):
    mesh = Mesh.open(workspace, mesh_dir=mesh_copy)
    held = mesh.session("eu_marketing_analyst")
    nations = "SELECT DISTINCT n.n_name FROM customer.customer c JOIN customer.nation n ON c.c_nationkey = n.n_nationkey"
    assert {r[0] for r in held.sql(nations).fetchall()} == EUROPE
    edit(mesh_copy / "mesh.yaml", "attributes: {region: EUROPE,", "attributes: {region: ASIA,")
    assert {r[0] for r in held.sql(nations).fetchall()} == {
        "CHINA",
        "INDIA",
        "INDONESIA",
        "JAPAN",
        "VIETNAM",
    }


def test_a_commit_during_planning_does_not_leave_a_stale_plan(workspace: Path, monkeypatch):
    mesh = Mesh.open(workspace)
    count = "SELECT count(*) FROM customer.region"
    engine = mesh.engine
    extra = pa.table(
        {"r_regionkey": pa.array([9], pa.int64()), "r_name": ["X"], "r_comment": ["x"]}
    )

    def verify_then_commit(engine, attempt):
        pipeline.verify_plan(engine, attempt)
        mesh.write("customer.region", extra, mode="append")

    engine.plan_rules = tuple(
        Rule(r.name, verify_then_commit) if r.name == "verify-plan" else r
        for r in pipeline.PLAN_RULES
    )
    assert mesh.sql("governance_admin", count).fetchall() == [(5,)]  # planned before the commit
    engine.plan_rules = pipeline.PLAN_RULES
    assert mesh.sql("governance_admin", count).fetchall() == [(6,)]  # the plan is stale now


def test_policies_are_read_once_per_plan(workspace: Path, monkeypatch):
    mesh = Mesh.open(workspace)
    query = "SELECT count(*) FROM sales.orders"
    request = mesh.catalog.request("external_partner", "sales.order_history", "volumes")
    mesh.catalog.revoke(request.id, by="sales-ops")  # auto-approved (no PII): start without it
    engine = mesh.engine

    def approve_while_resolving(engine, attempt):
        again = mesh.catalog.request("external_partner", "sales.order_history", "volumes")
        try:
            pipeline.resolve(engine, attempt)
        finally:
            mesh.catalog.revoke(again.id, by="sales-ops")

    engine.plan_rules = tuple(
        Rule(r.name, approve_while_resolving) if r.name == "resolve" else r
        for r in pipeline.PLAN_RULES
    )
    with pytest.raises(AccessDenied):  # planned under the policies its cache key holds
        mesh.sql("external_partner", query)
    engine.plan_rules = pipeline.PLAN_RULES
    with pytest.raises(AccessDenied):
        mesh.sql("external_partner", query)


@pytest.mark.parametrize("consumer", ["governance_admin", "eu_marketing_analyst"])
def test_a_warmed_up_consumer_s_first_query_compiles_no_scan(
    built_workspace: Path, consumer: str, monkeypatch
):
    """``warm_up`` compiles each scan with the policies a query reads: the first query (a
    notebook's, a cold benchmark run's) finds them all compiled."""
    from meshsim.query import rewrite

    mesh = Mesh.open(built_workspace)
    mesh.warm_up([consumer])
    compiled: list[str] = []
    real = rewrite.governed_select

    def counting(table_access, *args, **kwargs):
        compiled.append(table_access.table)
        return real(table_access, *args, **kwargs)

    monkeypatch.setattr(rewrite, "governed_select", counting)
    mesh.sql(
        consumer,
        "SELECT count(*) FROM sales.orders JOIN customer.customer ON o_custkey = c_custkey",
    )
    assert compiled == []
    mesh.close()
