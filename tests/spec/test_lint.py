from __future__ import annotations

from pathlib import Path

from meshsim.spec.lint import lint
from meshsim.spec.loader import load_mesh
from tests.conftest import EXAMPLE_MESH, edit


def messages(mesh_dir: Path) -> list[str]:
    """Every problem but the note that the example's identities are asserted (that one is
    tested in tests/test_identity.py)."""
    problems = [p for p in lint(load_mesh(mesh_dir)) if "bound to OS users" not in p.message]
    return [f"{p.severity}: {p.message}" for p in problems]


def test_example_mesh_is_clean():
    """Clean but for the note that its identities are asserted (tests/test_identity.py)."""
    problems = lint(load_mesh(EXAMPLE_MESH))
    assert [p.message.split(",")[0] for p in problems] == ["no principal is bound to OS users"]


def test_undefined_consumer_gets_a_suggestion(mesh_copy: Path):
    edit(
        mesh_copy / "mesh.yaml",
        "consumers: [finance_controller]\n      product: customer",
        "consumers: [finance_controler]\n      product: customer",
    )
    assert messages(mesh_copy) == [
        "error: grant 'finance_customer_profiles': consumer 'finance_controler' is not defined; "
        "did you mean 'finance_controller'? (consumers: governance_admin, eu_marketing_analyst, "
        "finance_controller, supply_planner, external_partner, sales)"
    ]


def test_unknown_column_and_table_in_policies(mesh_copy: Path):
    edit(
        mesh_copy / "mesh.yaml",
        "exclude_columns: [customer.customer.c_acctbal]",
        "exclude_columns: [customer.customer.c_acctbl]",
    )
    edit(mesh_copy / "mesh.yaml", "tables: [sales.lineitem]", "tables: [sales.lineitems]")
    found = messages(mesh_copy)
    assert (
        "error: grant 'marketing_customer_profiles': column 'customer.customer.c_acctbl' is not defined; did you mean 'c_acctbal'?"
        in found
    )
    assert (
        "error: grant 'planner_lineitem': table 'sales.lineitems' is not defined; did you mean 'sales.lineitem'?"
        in found
    )


def test_undefined_tag_and_value(mesh_copy: Path):
    edit(
        mesh_copy / "supply" / "products" / "supply_catalog.yaml",
        "tags: {channel: b2b, confidentiality: public}",
        "tags: {chanel: b2b, confidentiality: secret}",
    )
    found = messages(mesh_copy)
    assert any("tag 'chanel' is not defined; did you mean 'channel'?" in m for m in found)
    assert any("tag value 'confidentiality=secret' is not defined" in m for m in found)


def test_unprotected_pii_is_an_error(mesh_copy: Path):
    edit(
        mesh_copy / "mesh.yaml",
        "      except: [governance_admin]\n      classification: pii",
        "      except: [governance_admin, finance_controller]\n      classification: pii",
    )
    found = messages(mesh_copy)
    assert (
        "error: PII column 'customer.customer.c_name' is visible unmasked to 'finance_controller' (grant finance_customer_profiles); add a mask or exclude the column"
        in found
    )
    # and the names sales.customer_revenue keeps (keyed-hashed as sales reads them, still pii)
    assert (
        "error: PII column 'sales.customer_revenue.c_name' is visible unmasked to 'finance_controller' (grant finance_customer_revenue); add a mask or exclude the column"
        in found
    )
    assert len([m for m in found if "PII column" in m]) == 4


def test_product_without_owner(mesh_copy: Path):
    edit(mesh_copy / "sales" / "products" / "order_history.yaml", "owner: sales-ops\n", "")
    assert "error: product 'sales.order_history' has no owner; add 'owner:'" in messages(mesh_copy)


def test_duplicate_names(mesh_copy: Path):
    edit(mesh_copy / "mesh.yaml", "name: planner_lineitem", "name: planner_supply_catalog")
    edit(
        mesh_copy / "customer" / "products" / "customer_profiles.yaml",
        "- {name: c_comment,",
        "- {name: c_phone,",
    )
    found = messages(mesh_copy)
    assert "error: policy 'planner_supply_catalog' is defined 2 times" in found
    assert "error: column 'c_phone' is defined 2 times" in found


def test_row_filter_predicate_checked(mesh_copy: Path):
    edit(mesh_copy / "mesh.yaml", "c_nationkey IN (", "c_natonkey IN (")
    found = messages(mesh_copy)
    assert any(
        "predicate names column 'c_natonkey', which 'customer.customer' does not have; did you mean 'c_nationkey'?"
        in m
        for m in found
    )


def test_condition_on_unknown_attribute_is_a_warning(mesh_copy: Path):
    edit(
        mesh_copy / "mesh.yaml",
        "when: consumer.region IS NOT NULL\n      predicate: >-\n        c_nationkey",
        "when: consumer.regoin IS NOT NULL\n      predicate: >-\n        c_nationkey",
    )
    assert (
        "warning: row filter 'regional_customers': no consumer has attribute 'regoin'; did you mean 'region'?"
        in messages(mesh_copy)
    )
