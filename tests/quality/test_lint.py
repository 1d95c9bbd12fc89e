"""``meshsim validate`` checks quality rules against their tables, with the product file, the
line and the rule's key path in every problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshsim.mesh import validate
from tests.conftest import edit
from tests.quality.conftest import ORDERS, add_rules

BAD_RULES = [
    ("{accepted_values: [open]}", "a table rule of kind 'accepted_values' needs 'column'"),
    ("{not_null: true}", "a table rule of kind 'not_null' needs a list of columns"),
    ("{references: shop.items}", "a table rule of kind 'references' needs 'columns'"),
    ("{not_null: [stauts]}", "'stauts' is not a column of 'shop.orders'; did you mean 'status'?"),
    ("{range: {min: a}, column: amount}", "'a' cannot be compared with column 'amount'"),
    ("{range: {min: 0.5}, column: order_id}", "0.5 cannot be compared with column 'order_id'"),
    ("{range: {min: 2, max: 1}, column: amount}", "min 2 is above max 1"),
    ("{range: {min: '2026-13-01'}, column: ordered_at}", "give timestamps (ISO 8601)"),
    (
        "{accepted_values: [1, 2], column: status, name: numbers}",
        "1, 2 cannot be compared with column 'status'",
    ),
    (
        "{row_count: {min: -1}, name: negative}",
        "row count bounds must be whole numbers, 0 or more: -1",
    ),
    ("{freshness: 1d, column: code}", "freshness column 'code' is varchar"),
    ("{regex: 'x', column: amount}", "regex needs a text column; 'amount' is decimal(10,2)"),
    ("{references: shop.itms, columns: [order_id]}", "table 'shop.itms' is not defined"),
    (
        "{references: shop.items, columns: [order_id], to: [order_id, line]}",
        "'to' lists 2 column(s) for 1 column(s)",
    ),
    ("{references: shop.items, columns: [status], to: [line]}", "'status' (varchar) cannot be"),
    ("{references: crm.customers, columns: [customer_id], to: [mail]}", "no column 'mail'"),
    ("{sql: 'DROP TABLE shop.orders'}", "it is a DROP statement, not a query"),
    ("{sql: 'SELECT * FROM shop.nope'}", "reads 'shop.nope', which is not a mesh table"),
    ("{unique: [order_id]}", "2 quality rules are named 'unique_order_id'"),
]


@pytest.mark.parametrize(("rule", "message"), BAD_RULES, ids=[m for _, m in BAD_RULES])
def test_a_bad_rule_is_an_error_with_its_file_and_line(quality_mesh: Path, rule, message):
    add_rules(quality_mesh / ORDERS, "orders", f"      - {rule}\n")
    errors = [p for p in validate(quality_mesh) if p.severity == "error"]
    assert len(errors) == 1, [str(e) for e in errors]
    assert message in errors[0].message
    assert errors[0].where.startswith(f"{quality_mesh / ORDERS}:")


def test_a_rule_on_a_column_implies_it(quality_mesh: Path):
    edit(
        quality_mesh / ORDERS,
        'quality: [{regex: "^[A-Z]{3}$", severity: warn}]',
        'quality: [{regex: "^[A-Z]{3}$", column: status}]',
    )
    (error,) = [p for p in validate(quality_mesh) if p.severity == "error"]
    assert "on column 'code' the column is implied; it names status" in error.message
    assert "tables[0].columns[5].quality[0]" in error.message


def test_a_governed_rule_needs_the_domains_consumer_and_its_grant(quality_mesh: Path):
    edit(
        quality_mesh / "mesh.yaml",
        "crm.customers, shop.orders, shop.items]}\n    - {name: analyst",
        "shop.orders, shop.items]}\n    - {name: analyst",
    )
    add_rules(
        quality_mesh / ORDERS,
        "orders",
        "      - {references: crm.customers, columns: [customer_id], to: [customer_id]}\n",
    )
    (error,) = [p for p in validate(quality_mesh) if p.severity == "error"]
    assert "the domain's consumer 'shop' has no grant on 'crm.customers'" in error.message
    edit(quality_mesh / "mesh.yaml", "  - {name: shop,", "  - {name: shopper,")
    edit(quality_mesh / "mesh.yaml", "consumers: [shop]", "consumers: [shopper]")
    messages = [p.message for p in validate(quality_mesh) if p.severity == "error"]
    assert any("as the consumer 'shop' (named after the domain)" in m for m in messages)


def test_a_masked_key_cannot_be_referenced(quality_mesh: Path):
    add_rules(
        quality_mesh / ORDERS,
        "orders",
        "      - {references: crm.customers, columns: [code], to: [email]}\n",
    )
    (error,) = [p for p in validate(quality_mesh) if p.severity == "error"]
    assert "reads 'crm.customers.email' masked, so keys cannot be compared" in error.message
