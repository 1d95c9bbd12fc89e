"""Golden tests for the pure rules: validate, resolve, authorize, masks, filters."""

from __future__ import annotations

import pytest
from sqlglot import exp

from meshsim.errors import AccessDenied, PolicyError, QueryError
from meshsim.query.masks import bind_consumer, mask_expression
from meshsim.query.names import resolve
from meshsim.query.validate import parse_query
from meshsim.spec.loader import load_mesh
from meshsim.spec.models import Mask
from tests.query.meshdata import ROOT

SPEC = load_mesh(ROOT / "domains")


def qualified(sql: str) -> str:
    return resolve(parse_query(sql), SPEC).tree.sql(dialect="duckdb")


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "SELECT c_name FROM Customer.CUSTOMER c WHERE c_nationkey = 3",
            'SELECT "c"."c_name" AS "c_name" FROM "customer"."customer" AS "c" '
            'WHERE "c"."c_nationkey" = 3',
        ),
        (
            "WITH customer AS (SELECT c_name FROM customer.customer) SELECT * FROM customer",
            'WITH "customer" AS (SELECT "customer"."c_name" AS "c_name" FROM '
            '"customer"."customer" AS "customer") SELECT * FROM "customer" AS "customer"',
        ),
        (
            "SELECT n_name FROM customer.nation AT (VERSION => 0) ORDER BY n_name",
            'SELECT "nation"."n_name" AS "n_name" FROM "customer"."nation" AS "nation" '
            'AT (VERSION => 0) ORDER BY "n_name"',
        ),
    ],
)
def test_qualify_golden(sql: str, expected: str) -> None:
    assert qualified(sql) == expected


def test_rules_do_not_mutate_the_callers_tree() -> None:
    tree = parse_query("SELECT c_name FROM customer.customer")
    before = tree.sql()
    resolve(tree, SPEC)
    assert tree.sql() == before


def test_table_uses_and_columns() -> None:
    r = resolve(
        parse_query(
            "SELECT c.c_name FROM customer.customer c WHERE c.c_custkey IN "
            "(SELECT o_custkey FROM sales.orders AT (VERSION => 0))"
        ),
        SPEC,
    )
    uses = {u.ref: (u.version, sorted(u.columns or ())) for u in r.uses}
    assert uses == {
        "customer.customer": (None, ["c_custkey", "c_name"]),
        "sales.orders": (0, ["o_custkey"]),
    }


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; SELECT 2",
        "CREATE TABLE x AS SELECT 1",
        "SELECT * INTO t FROM customer.nation",
        "SELECT t FROM customer.nation t",
        "SELECT rowid FROM customer.nation",
        "SELECT * FROM nation",
        "SELECT * FROM x.customer.nation",
        "SELECT n_name FROM customer.nation t(a, b)",
        "SELECT COLUMNS('n_.*') FROM customer.nation",
    ],
)
def test_refused_shapes(sql: str) -> None:
    with pytest.raises(QueryError):
        resolve(parse_query(sql), SPEC)


def test_access_denied_message_names_everything(engine) -> None:
    with pytest.raises(AccessDenied) as info:
        engine.session("eu_marketing_analyst").sql(
            "SELECT count(*) FROM customer.customer GROUP BY c_acctbal"
        )
    err = info.value
    assert (err.consumer, err.table, err.column) == (
        "eu_marketing_analyst",
        "customer.customer",
        "c_acctbal",
    )
    assert "meshsim request --as eu_marketing_analyst customer.customer_profiles" in str(err)


def test_bind_consumer_uses_literals_and_null() -> None:
    import sqlglot

    tree = sqlglot.parse_one("consumer.region = 'x' OR consumer.missing IS NULL", read="duckdb")
    out = bind_consumer(tree, {"region": "E'; DROP TABLE x; --"})
    assert out.sql(dialect="duckdb") == "'E''; DROP TABLE x; --' = 'x' OR NULL IS NULL"
    assert "consumer" in tree.sql()  # pure


@pytest.mark.parametrize(
    ("function", "dtype", "extra", "expected"),
    [
        ("redact", "varchar", {}, "CAST('****' AS TEXT)"),
        ("nullify", "bigint", {}, "CAST(NULL AS BIGINT)"),
        (
            "show_last",
            "varchar",
            {"n": 4},
            "CAST('****' || LPAD(RIGHT(COALESCE(\"v\", ''), 4), 4, '*') AS TEXT)",
        ),
        ("year_only", "date", {}, 'CAST(MAKE_DATE(YEAR("v"), 1, 1) AS DATE)'),
        (
            "custom",
            "varchar",
            {"expression": "left({column}, 1) || consumer.region"},
            "CAST(LEFT(\"v\", 1) || 'EU' AS TEXT)",
        ),
    ],
)
def test_mask_golden(function: str, dtype: str, extra: dict, expected: str) -> None:
    mask = Mask(name="m", function=function, columns=["a.b.c"], **extra)
    out = mask_expression(
        mask,
        exp.column("v", quoted=True),
        exp.DataType.build(dtype),
        key=b"k" * 16,
        column_ref="a.b.c",
        attributes={"region": "EU"},
    )
    assert out.sql(dialect="duckdb") == expected


def test_keyed_hash_binds_key_and_column_ref() -> None:
    mask = Mask(name="m", function="keyed_hash", columns=["a.b.c"])
    out = mask_expression(
        mask,
        exp.column("v"),
        exp.DataType.build("varchar"),
        key=b"k" * 16,
        column_ref="a.b.c",
        attributes={},
    )
    assert out.sql(dialect="duckdb") == (
        f"CAST(SHA256('{(b'k' * 16).hex()}|a.b.c|' || CAST(v AS TEXT)) AS TEXT)"
    )


@pytest.mark.parametrize(
    "expression", ["read_text({column})", "(SELECT 1)", "{column} || other_column"]
)
def test_custom_mask_is_validated(expression: str) -> None:
    mask = Mask(name="m", function="custom", columns=["a.b.c"], expression=expression)
    with pytest.raises(PolicyError):
        mask_expression(
            mask,
            exp.column("v"),
            exp.DataType.build("varchar"),
            key=b"k" * 16,
            column_ref="a.b.c",
            attributes={},
        )
