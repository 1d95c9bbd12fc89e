"""validate's exposure checks: consumer attributes in predicates and masks, masks that return
the raw value, and the explicit waiver of the PII rule (issue 10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshsim.errors import SpecError
from meshsim.spec.lint import lint
from meshsim.spec.loader import load_mesh
from tests.conftest import edit


def messages(mesh_dir: Path) -> list[str]:
    problems = [p for p in lint(load_mesh(mesh_dir)) if "bound to OS users" not in p.message]
    return [f"{p.severity}: {p.message}" for p in problems]


REGIONAL_CUSTOMERS = "WHERE r.r_name = consumer.region)\n    - name: regional_orders"


def test_misspelt_attribute_in_a_predicate_is_an_error(mesh_copy: Path):
    """consumer.regin bound NULL and hid every row of customer.customer, without a word."""
    edit(
        mesh_copy / "mesh.yaml",
        REGIONAL_CUSTOMERS,
        REGIONAL_CUSTOMERS.replace("consumer.region", "consumer.regin"),
    )
    found = messages(mesh_copy)
    assert found == [
        "error: row filter 'regional_customers': predicate reads 'consumer.regin', which no "
        "consumer it selects has (eu_marketing_analyst); it would be NULL and hide every row; "
        "did you mean 'region'?"
    ]


def test_attribute_some_selected_consumers_lack_is_a_warning(mesh_copy: Path):
    edit(
        mesh_copy / "mesh.yaml",
        "      table: customer.customer\n      when: consumer.region IS NOT NULL\n",
        "      table: customer.customer\n      consumers: [eu_marketing_analyst, supply_planner]\n",
    )
    found = messages(mesh_copy)
    assert found == [
        "warning: row filter 'regional_customers': predicate reads 'consumer.region', which "
        "supply_planner does not have; for them it is NULL"
    ]


def test_misspelt_attribute_in_a_custom_mask(mesh_copy: Path):
    edit(
        mesh_copy / "mesh.yaml",
        "      function: redact\n",
        "      function: custom\n"
        "      expression: \"CASE WHEN consumer.departmnt = 'x' THEN {column} ELSE '*' END\"\n",
    )
    found = messages(mesh_copy)
    assert (
        "error: mask 'marketing_address_redacted': expression reads 'consumer.departmnt', which "
        "no consumer it selects has (eu_marketing_analyst); it would be NULL; did you mean "
        "'department'?" in found
    )


@pytest.mark.parametrize(
    "expression",
    [
        "{column}",
        "CAST({column} AS VARCHAR)",
        "{column} || ''",
        "coalesce({column}, 'n/a')",
        "upper({column})",
        "trim({column})",
        "CASE WHEN consumer.department = 'marketing' THEN {column} ELSE '****' END",
    ],
)
def test_a_mask_that_returns_the_value_is_no_protection(mesh_copy: Path, expression: str):
    edit(
        mesh_copy / "mesh.yaml",
        "      columns: [customer.customer.c_address]\n      function: redact\n",
        "      columns: [customer.customer.c_address]\n      function: custom\n"
        f'      expression: "{expression}"\n',
    )
    found = messages(mesh_copy)
    assert found == [
        "error: PII column 'customer.customer.c_address' is visible unmasked to "
        "'eu_marketing_analyst': mask 'marketing_address_redacted' returns the raw value "
        "(custom expression); add a mask that hides it or exclude the column"
    ]


@pytest.mark.parametrize(
    "expression",
    [
        "'****'",
        "left({column}, 0) || '****'",
        "CASE WHEN consumer.department = 'x' THEN {column} END",
    ],
)
def test_a_mask_that_hides_the_value_passes(mesh_copy: Path, expression: str):
    edit(
        mesh_copy / "mesh.yaml",
        "      columns: [customer.customer.c_address]\n      function: redact\n",
        "      columns: [customer.customer.c_address]\n      function: custom\n"
        f'      expression: "{expression}"\n',
    )
    assert messages(mesh_copy) == []


def _unmask_finance(mesh_copy: Path) -> None:
    edit(
        mesh_copy / "mesh.yaml",
        "      except: [governance_admin]\n      classification: pii",
        "      except: [governance_admin, finance_controller]\n      classification: pii",
    )


WAIVER = (
    "allow_unmasked: {consumers: [finance_controller], "
    "reason: 'KYC checks need the real name (ticket FIN-12)'}, "
)


def test_waiver_allows_a_named_consumer_with_a_reason(mesh_copy: Path):
    _unmask_finance(mesh_copy)
    edit(
        mesh_copy / "customer" / "products" / "customer_profiles.yaml",
        "- {name: c_name, ",
        "- {name: c_name, " + WAIVER,
    )
    found = [m for m in messages(mesh_copy) if "PII column" in m]
    assert len(found) == 3  # c_address, c_phone and the derived sales.customer_revenue.c_name
    assert not any("customer.customer.c_name" in m for m in found)


def test_waiver_needs_a_reason(mesh_copy: Path):
    edit(
        mesh_copy / "customer" / "products" / "customer_profiles.yaml",
        "- {name: c_name, ",
        "- {name: c_name, allow_unmasked: {consumers: [finance_controller], reason: ''}, ",
    )
    with pytest.raises(SpecError, match=r"allow_unmasked\.reason"):
        load_mesh(mesh_copy)


def test_waiver_consumers_are_checked(mesh_copy: Path):
    _unmask_finance(mesh_copy)
    edit(
        mesh_copy / "customer" / "products" / "customer_profiles.yaml",
        "- {name: c_name, ",
        "- {name: c_name, " + WAIVER.replace("finance_controller", "finance_controler"),
    )
    found = messages(mesh_copy)
    assert any(
        "column 'customer.customer.c_name': allow_unmasked names consumer 'finance_controler', "
        "which is not defined; did you mean 'finance_controller'?" in m
        for m in found
    )
    # the waiver is void, so the exposure is still an error
    assert any(
        "'customer.customer.c_name' is visible unmasked to 'finance_controller'" in m for m in found
    )


def test_a_waiver_that_waives_nothing_is_reported(mesh_copy: Path):
    edit(
        mesh_copy / "customer" / "products" / "customer_profiles.yaml",
        "- {name: c_name, ",
        "- {name: c_name, " + WAIVER,
    )
    assert messages(mesh_copy) == [
        "warning: column 'customer.customer.c_name': allow_unmasked waives nothing for "
        "finance_controller (they do not see it unmasked); remove the waiver"
    ]
