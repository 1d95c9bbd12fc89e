"""Publishing gates, versions, discovery and search ranking."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from meshsim.catalog import Catalog, PublishGateError
from meshsim.errors import CatalogError
from meshsim.spec.loader import load_mesh
from meshsim.workspace import TableRecord, Workspace, WorkspaceState
from tests.catalog.conftest import table_versions
from tests.conftest import edit


def test_gate_lists_every_problem_at_once(tmp_path: Path, mesh_copy: Path):
    product = mesh_copy / "supply" / "products" / "supply_catalog.yaml"
    edit(product, "owner: supply-chain\n", "")
    edit(product, "description: Parts, their suppliers, and supply costs.\n", "")
    edit(
        product,
        "{name: p_name, type: varchar, classification: public,",
        "{name: p_name, type: varchar,",
    )
    edit(
        mesh_copy / "mesh.yaml",
        "  grants:\n",
        "  grants:\n    - name: everyone_suppliers\n      consumers: ['*']\n"
        "      tables: [supply.supplier]\n",
    )
    spec = load_mesh(mesh_copy)
    catalog = Catalog(Workspace(tmp_path / "ws"), lambda: spec)
    with pytest.raises(PublishGateError) as info:
        catalog.publish("supply.supply_catalog", *table_versions(spec))
    exposed = (
        "sensitive column 'supply.supplier.s_acctbal' is visible unmasked to '{}' through grant "
        "everyone_suppliers, which does not name its consumers; add a mask, exclude the column, "
        "or grant it to named consumers only"
    )
    assert info.value.problems == [
        "no owner: add 'owner:' (the team that decides access requests)",
        "no description: add 'description:' so consumers can find and judge it",
        "column 'supply.part.p_name' has no classification",
        *(
            exposed.format(c)
            for c in (
                "eu_marketing_analyst",
                "finance_controller",
                "supply_planner",
                "external_partner",
                "sales",
            )
        ),
    ]
    assert str(info.value).startswith(
        "product 'supply.supply_catalog' cannot be published: 8 problem(s):"
    )
    assert "meshsim publish supply.supply_catalog" in (info.value.hint or "")
    with pytest.raises(CatalogError, match="problem"):
        catalog.publish_all(*table_versions(spec))
    assert (
        Catalog(Workspace(tmp_path / "ws"), lambda: spec).products() == []
    )  # nothing half-published


def test_named_grants_and_masks_protect_the_example(catalog: Catalog):
    assert [p["product"] for p in catalog.products()] == [
        "customer.customer_profiles",
        "sales.customer_revenue",
        "sales.order_history",
        "supply.supply_catalog",
    ]


def test_versions_move_only_when_something_changed(catalog: Catalog, spec):
    versions, rows = table_versions(spec)
    assert catalog.publish("sales.order_history", versions, rows).version == 1
    changed = {**versions, "sales.orders": 3}
    assert catalog.publish("sales.order_history", changed, rows).version == 2
    details = catalog.show("sales.order_history")
    assert [v["version"] for v in details.versions] == [2, 1]
    assert details.versions[0]["tables"] == {"sales.orders": 3, "sales.lineitem": 0}


def test_publishing_needs_built_tables(tmp_path: Path, spec):
    catalog = Catalog(Workspace(tmp_path / "ws"), lambda: spec)
    with pytest.raises(PublishGateError, match="have no version in the workspace"):
        catalog.publish("sales.order_history", {}, {})


def test_show_tells_a_consumer_what_they_would_see(catalog: Catalog, clock):
    clock.advance(hours=30)
    details = catalog.show("customer.customer_profiles", as_consumer="eu_marketing_analyst")
    assert (details.owner, details.owner_team) == ("customer-data", "customer-data")
    assert details.freshness == "stale: updated 1d ago (SLA 24h)"
    cells = {(c["table"], c["column"]): c for c in details.columns}
    assert cells[("customer.customer", "c_acctbal")]["access"] == "denied"
    assert cells[("customer.customer", "c_phone")]["access"] == "masked"
    assert cells[("customer.customer", "c_phone")]["classification"] == "pii"
    assert cells[("customer.customer", "c_custkey")]["row_filter"] == "regional_customers"
    assert {s["consumer"] for s in details.subscribers} == {
        "governance_admin",
        "eu_marketing_analyst",
        "finance_controller",
        "sales",  # its five customer columns, for sales.customer_revenue
    }


def test_unpublished_product_is_not_discoverable(tmp_path: Path, spec):
    catalog = Catalog(Workspace(tmp_path / "ws"), lambda: spec)
    with pytest.raises(CatalogError, match="product 'sales.order_history' is not published yet"):
        catalog.show("sales.order_history")
    with pytest.raises(CatalogError, match="is not published yet"):
        catalog.request("external_partner", "sales.order_history", "x")


# --- search ----------------------------------------------------------------------------------


def test_name_hits_rank_above_description_hits(catalog: Catalog):
    hits = catalog.search("nation")
    refs = [h["ref"] for h in hits]
    # 'nation' is a table name and a prefix of the *_nationkey column names; n_name only
    # mentions a nation in its description
    assert refs.index("customer.nation") < refs.index("customer.nation.n_name")
    assert refs.index("customer.customer.c_nationkey") < refs.index("customer.nation.n_name")
    assert [h["rank"] for h in hits] == list(range(1, len(hits) + 1))
    assert catalog.search("nation") == hits  # deterministic


def test_search_covers_tags_classifications_and_owners(catalog: Catalog):
    assert {h["ref"] for h in catalog.search("sensitive acctbal")} == {
        "customer.customer.c_acctbal",
        "supply.supplier.s_acctbal",
    }
    assert {h["product"] for h in catalog.search("supply chain")} == {"supply.supply_catalog"}
    assert catalog.search("c_phone")[0]["ref"] == "customer.customer.c_phone"
    assert catalog.search("zebra") == []
    with pytest.raises(CatalogError, match="has no words"):
        catalog.search("--")


def test_publish_reads_table_versions_from_the_workspace(tmp_path: Path, spec, clock):
    workspace = Workspace(tmp_path / "ws")
    built = datetime(2026, 2, 20, tzinfo=UTC)
    workspace.write_state(
        WorkspaceState(
            mesh_dir=str(spec.root),
            mesh_name=spec.name,
            scale=1,
            spec_fingerprint=spec.fingerprint,
            tables={
                t.ref: TableRecord(
                    location=str(tmp_path), external=False, version=2, rows=5, built_at=built
                )
                for t in spec.tables()
            },
        )
    )
    catalog = Catalog(workspace, lambda: spec, clock=clock)
    published = catalog.publish_all()
    assert {v.product: v.tables for v in published}["sales.order_history"] == {
        "sales.orders": 2,
        "sales.lineitem": 2,
    }
    assert catalog.show("supply.supply_catalog").freshness == "stale: updated 9d ago (SLA 7d)"
    assert {r["grant"] for r in catalog.subscriptions()} >= {
        "admin_everything",
        "partner_public_b2b",
    }


def test_a_mask_that_returns_the_value_does_not_pass_the_gate(tmp_path: Path, mesh_copy: Path):
    edit(
        mesh_copy / "mesh.yaml",
        "      columns: [customer.customer.c_address]\n      function: redact\n",
        "      columns: [customer.customer.c_address]\n      function: custom\n"
        '      expression: "upper({column})"\n',
    )
    spec = load_mesh(mesh_copy)
    catalog = Catalog(Workspace(tmp_path / "ws"), lambda: spec)
    with pytest.raises(PublishGateError) as info:
        catalog.publish("customer.customer_profiles", *table_versions(spec))
    assert info.value.problems == [
        "pii column 'customer.customer.c_address' is visible unmasked to 'eu_marketing_analyst': "
        "mask 'marketing_address_redacted' returns the raw value (custom expression); add a mask "
        "that hides it or exclude the column"
    ]


def test_a_waiver_satisfies_the_gate(tmp_path: Path, mesh_copy: Path):
    edit(
        mesh_copy / "mesh.yaml",
        "  grants:\n",
        "  grants:\n    - name: everyone_suppliers\n      consumers: ['*']\n"
        "      tables: [supply.supplier]\n",
    )
    edit(
        mesh_copy / "supply" / "products" / "supply_catalog.yaml",
        "{name: s_acctbal, ",
        "{name: s_acctbal, allow_unmasked: {consumers: [eu_marketing_analyst, finance_controller, "
        "supply_planner, external_partner, sales], reason: balances are public in this exercise}, ",
    )
    spec = load_mesh(mesh_copy)
    catalog = Catalog(Workspace(tmp_path / "ws"), lambda: spec)
    catalog.publish("supply.supply_catalog", *table_versions(spec))
