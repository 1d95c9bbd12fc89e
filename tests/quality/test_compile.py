"""Golden SQL: each rule kind compiles to the syntax tree of its failing rows (or of the one
value it measures), over the relations ``checked`` and ``referenced``."""

from __future__ import annotations

import pytest

from meshsim.quality import compile as rules_sql
from meshsim.quality.bound import BoundRule, bound_rules
from meshsim.spec.loader import TableSpec
from meshsim.spec.models import Table

COLUMNS = [
    {"name": "order_id", "type": "bigint"},
    {"name": "status", "type": "varchar"},
    {"name": "Super Name", "type": "varchar"},
]


def _rule(rule: dict[str, object]) -> BoundRule:
    table = Table.model_validate(
        {"name": "orders", "primary_key": ["order_id"], "columns": COLUMNS, "quality": [rule]}
    )
    return bound_rules(TableSpec("shop", "sales", table, {}))[0]


GOLDEN = [
    (
        {"not_null": ["order_id", "status"]},
        'SELECT * FROM checked WHERE "order_id" IS NULL OR "status" IS NULL',
    ),
    (
        {"unique": ["order_id"]},
        'SELECT * FROM (SELECT *, COUNT(*) OVER (PARTITION BY "order_id") AS "__meshsim_copies" '
        'FROM checked WHERE NOT "order_id" IS NULL) AS keyed WHERE "__meshsim_copies" > 1',
    ),
    (
        {"accepted_values": ["F", "O"], "column": "status"},
        "SELECT * FROM checked WHERE NOT \"status\" IN ('F', 'O')",
    ),
    ({"range": {"min": 0}, "column": "order_id"}, 'SELECT * FROM checked WHERE "order_id" < 0'),
    (
        {"regex": "^[A-Z]$", "column": "Super Name"},
        "SELECT * FROM checked WHERE NOT REGEXP_FULL_MATCH(CAST(\"Super Name\" AS TEXT), '^[A-Z]$')",
    ),
    (
        {"references": "shop.customers", "columns": ["order_id"], "to": ["id"]},
        'SELECT * FROM checked WHERE NOT "checked"."order_id" IS NULL AND NOT EXISTS(SELECT 1 '
        'FROM referenced WHERE "referenced"."id" = "checked"."order_id")',
    ),
    (
        {"sql": "SELECT * FROM shop.orders WHERE status = 'x'"},
        "SELECT * FROM shop.orders WHERE status = 'x'",
    ),
]


@pytest.mark.parametrize(("rule", "sql"), GOLDEN, ids=[next(iter(r)) for r, _ in GOLDEN])
def test_each_row_rule_compiles_to_its_failing_rows(rule, sql):
    assert rules_sql.failing_rows(_rule(rule)).sql(dialect="duckdb") == sql


def test_measures_compile_to_one_value():
    assert (
        rules_sql.measure(_rule({"row_count": {"min": 1}})).sql() == "SELECT COUNT(*) FROM checked"
    )
    freshness = _rule({"freshness": "1d", "column": "status"})
    assert rules_sql.measure(freshness).sql() == 'SELECT MAX("status") FROM checked'


def test_counts_and_samples_wrap_the_failing_rows():
    failing = rules_sql.failing_rows(_rule({"not_null": ["status"]}))
    assert rules_sql.count_of(failing).sql() == (
        'SELECT COUNT(*) FROM (SELECT * FROM checked WHERE "status" IS NULL) AS failing'
    )
    assert rules_sql.samples_of(failing, ["order_id"], 5).sql() == (
        'SELECT DISTINCT "order_id" FROM (SELECT * FROM checked WHERE "status" IS NULL) AS '
        'failing ORDER BY "order_id" LIMIT 5'
    )


def test_a_reference_reads_the_distinct_keys_of_the_other_table():
    rule = _rule({"references": "crm.customers", "columns": ["order_id"], "to": ["id"]})
    assert rules_sql.referenced_keys(rule).sql() == 'SELECT DISTINCT "id" FROM "crm"."customers"'


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("DELETE FROM shop.orders", "DELETE statement"),
        ("SELECT 1; SELECT 2", "2 statements"),
        ("SELECT FROM WHERE (", "does not parse"),
    ],
)
def test_a_custom_rule_is_one_query(sql, why):
    with pytest.raises(ValueError, match=why):
        rules_sql.parse_custom(sql)
