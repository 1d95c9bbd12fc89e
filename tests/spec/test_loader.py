from __future__ import annotations

from pathlib import Path

import pytest

from meshsim.errors import SpecError
from meshsim.spec.loader import load_mesh, load_policies
from tests.conftest import EXAMPLE_MESH, edit


def test_example_mesh_loads_with_every_table_of_the_issue():
    spec = load_mesh(EXAMPLE_MESH)
    assert [t.ref for t in spec.tables()] == [
        "customer.customer",
        "customer.nation",
        "customer.region",
        "sales.customer_revenue",
        "sales.orders",
        "sales.lineitem",
        "supply.part",
        "supply.supplier",
        "supply.partsupp",
    ]
    assert [p.ref for p in spec.products()] == [
        "customer.customer_profiles",
        "sales.customer_revenue",
        "sales.order_history",
        "supply.supply_catalog",
    ]
    assert spec.consumer_names() == [
        "governance_admin",
        "eu_marketing_analyst",
        "finance_controller",
        "supply_planner",
        "external_partner",
        "sales",
    ]
    customer = spec.table("customer.customer")
    pii = {c.name for c in customer.columns if c.classification == "pii"}
    assert pii == {"c_name", "c_address", "c_phone"}
    assert customer.column_tags(customer.column("c_acctbal"))["confidentiality"] == "sensitive"
    part = spec.table("supply.part")
    assert part.table_tags() == {"channel": "b2b", "confidentiality": "public"}
    supplier = spec.table("supply.supplier")
    assert {c.name for c in supplier.columns if c.classification == "pii"} == {
        "s_address",
        "s_phone",
    }


def test_misspelt_key_reports_file_line_path_and_suggestion(mesh_copy: Path):
    product = mesh_copy / "customer" / "products" / "customer_profiles.yaml"
    edit(
        product,
        "classification: pii, description: Phone number.",
        "clasification: pii, description: Phone number.",
    )
    with pytest.raises(SpecError) as info:
        load_mesh(mesh_copy)
    (problem,) = info.value.problems
    assert problem.startswith(f"{product}:25: tables[0].columns[4].clasification: unknown key")
    assert "did you mean 'classification'?" in problem


def test_every_problem_of_every_file_is_reported_at_once(mesh_copy: Path):
    edit(mesh_copy / "mesh.yaml", "name: retail", "name: Retail Mesh")
    edit(mesh_copy / "sales" / "domain.yaml", "owner_team: sales-ops", "owner_teem: sales-ops")
    edit(mesh_copy / "supply" / "products" / "supply_catalog.yaml", "type: integer", "type: intger")
    with pytest.raises(SpecError) as info:
        load_mesh(mesh_copy)
    problems = info.value.problems
    assert len(problems) == 3
    assert any("mesh.yaml:3: name: 'Retail Mesh' is not a valid name" in p for p in problems)
    assert any(
        "domain.yaml:2: owner_teem: unknown key 'owner_teem'; did you mean 'owner_team'?" in p
        for p in problems
    )
    assert any(
        "unknown column type 'intger'" in p and "supply_catalog.yaml:" in p for p in problems
    )


def test_invalid_yaml_names_the_line(mesh_copy: Path):
    (mesh_copy / "sales" / "domain.yaml").write_text("name: sales\nowner_team: [unclosed\n")
    with pytest.raises(SpecError) as info:
        load_mesh(mesh_copy)
    assert "sales/domain.yaml:3: invalid YAML" in info.value.problems[0]


def test_grant_needs_exactly_one_scope(mesh_copy: Path):
    edit(
        mesh_copy / "mesh.yaml",
        "      all: true\n",
        "      all: true\n      tables: [sales.orders]\n",
    )
    with pytest.raises(
        SpecError, match=r"mesh.yaml:\d+: policies.grants\[0\]: a grant needs exactly one of"
    ):
        load_mesh(mesh_copy)


def test_domain_name_must_match_its_folder(mesh_copy: Path):
    edit(mesh_copy / "sales" / "domain.yaml", "name: sales", "name: selling")
    with pytest.raises(SpecError, match="domain 'selling' must match its folder name 'sales'"):
        load_mesh(mesh_copy)


def test_missing_mesh_yaml_says_what_to_pass(tmp_path: Path):
    with pytest.raises(SpecError) as info:
        load_mesh(tmp_path)
    assert "no mesh.yaml" in str(info.value) and "--mesh" in str(info.value)


def test_fingerprint_changes_with_any_file(mesh_copy: Path):
    before = load_mesh(mesh_copy).fingerprint
    edit(mesh_copy / "sales" / "domain.yaml", "Orders and", "All orders and")
    assert load_mesh(mesh_copy).fingerprint != before


def test_standalone_policies_file(tmp_path: Path):
    path = tmp_path / "policies.yaml"
    path.write_text(
        "grants:\n  - consumers: [supply_planner]\n    tables: [sales.orders]\n    colour: red\n"
    )
    with pytest.raises(SpecError, match=r"policies.yaml:4: grants\[0\].colour: unknown key"):
        load_policies(path)
