"""Property test: canaries planted in hidden rows, denied columns and masked PII never surface
in an accepted query's rows, column names or any error message."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshsim.errors import QueryError
from tests.query.meshdata import CANARY, SECRET

EU = "eu_marketing_analyst"
COLS = [
    "c_custkey",
    "c_name",
    "c_address",
    "c_nationkey",
    "c_phone",
    "c_acctbal",
    "c_mktsegment",
    "c_comment",
]

col = st.sampled_from(COLS)
shape = st.sampled_from(
    [
        "SELECT {a}, {b} FROM customer.customer",
        "SELECT {a}, count(*) FROM customer.customer GROUP BY {a}",
        "SELECT {a} FROM customer.customer ORDER BY {b} DESC LIMIT 3",
        "SELECT min({a}), max({b}) FROM customer.customer",
        "SELECT c.{a}, o.o_comment FROM customer.customer c JOIN sales.orders o "
        "ON o.o_custkey = c.c_custkey",
        "SELECT o_comment FROM sales.orders WHERE o_custkey IN (SELECT c_custkey FROM "
        "customer.customer WHERE {a} IS NOT NULL)",
        "WITH customer AS (SELECT * FROM customer.customer) SELECT {a}, {b} FROM customer",
        "WITH nation AS (SELECT 3 AS n_nationkey, 3 AS n_regionkey) SELECT {a} FROM customer.customer",
        "SELECT {a} FROM customer.customer UNION ALL SELECT o_comment FROM sales.orders",
        "SELECT {a} FROM customer.customer EXCEPT SELECT {b} FROM customer.customer",
        "SELECT {a}, row_number() OVER (PARTITION BY {b} ORDER BY {a}) FROM customer.customer",
        "SELECT t FROM customer.customer t",
        "SELECT * FROM customer.customer WHERE {a} = {b}",
        "SELECT x.* FROM (SELECT {a}, {b} FROM customer.customer) x",
        "SELECT {a} FROM customer.customer AT (VERSION => 0)",
        "SELECT * FROM sales.orders AT (VERSION => 0) WHERE o_comment LIKE '%CANARY%'",
    ]
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(shape=shape, a=col, b=col)
def test_no_canary_surfaces(engine, shape: str, a: str, b: str) -> None:
    sql = shape.format(a=a, b=b)
    try:
        result = engine.session(EU).sql(sql)
    except QueryError as err:
        assert CANARY not in str(err) and SECRET not in str(err) and "999999" not in str(err)
        return
    text = str(result.arrow().to_pylist()) + str(result.columns)
    assert CANARY not in text
    assert SECRET not in text
    assert "999999" not in text
