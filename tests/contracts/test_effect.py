"""Access changes judged by effect on the example mesh (issue 13's reproductions)."""

from __future__ import annotations

import pytest

from meshsim.contracts.diff import diff_products
from meshsim.contracts.impact import breaking_changes
from meshsim.spec.loader import load_mesh
from meshsim.spec.models import Product
from tests.conftest import EXAMPLE_MESH

SPEC = load_mesh(EXAMPLE_MESH)


def _edited(ref: str, table: str, column: str | None, **fields: object) -> tuple[Product, Product]:
    """The product ``ref`` of the example, and a copy with ``fields`` set on a column (or on
    the table when ``column`` is None)."""
    product = SPEC.product(ref)
    assert product is not None
    data = product.product.model_dump()
    target = next(t for t in data["tables"] if t["name"] == table)
    if column is not None:
        target = next(c for c in target["columns"] if c["name"] == column)
    target.update(fields)
    return product.product, Product.model_validate(data)


def test_pii_to_sensitive_unmasks_c_name_and_is_breaking():
    old, new = _edited(
        "customer.customer_profiles", "customer", "c_name", classification="sensitive"
    )
    changes = breaking_changes(SPEC, "customer", old, new)
    assert [(c.what, c.target) for c in changes] == [
        ("protection loosened", "customer.customer.c_name")
    ]
    # everyone who read it hashed (the admin reads it raw either way)
    assert {"eu_marketing_analyst", "finance_controller"} <= set(changes[0].consumers)
    assert "governance_admin" not in changes[0].consumers
    assert "eu_marketing_analyst masked -> raw" in changes[0].detail


def test_a_custom_classification_is_judged_by_effect_too():
    old, new = _edited("customer.customer_profiles", "customer", "c_name", classification="secret")
    assert [c.what for c in breaking_changes(SPEC, "customer", old, new)] == ["protection loosened"]


def test_a_tag_change_that_cuts_a_tag_grant_breaks_its_consumer():
    old, new = _edited(
        "supply.supply_catalog",
        "part",
        None,
        tags={"channel": "b2b", "confidentiality": "internal"},
    )
    changes = breaking_changes(SPEC, "supply", old, new)
    assert changes, "cutting external_partner's tag grant must be breaking"
    assert {c.what for c in changes} == {"access removed"}
    assert {c.consumers for c in changes} == {("external_partner",)}
    part = SPEC.table("supply.part")
    assert part is not None
    assert sorted(c.target for c in changes) == sorted(
        f"supply.part.{c.name}" for c in part.columns
    )


@pytest.mark.parametrize("column", ["c_phone", "c_address"])
def test_named_masks_do_not_follow_classifications(column: str):
    # masks naming the column keep it masked for eu_marketing_analyst whatever its class
    old, new = _edited("customer.customer_profiles", "customer", column, classification="internal")
    changes = diff_products("customer", old, new, SPEC)
    loosened = [c for c in changes if c.what == "protection loosened"]
    assert [c.consumers for c in loosened] == [("finance_controller",)]
