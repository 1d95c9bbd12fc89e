"""Differential oracle: the governed engine against plain DuckDB over a per-consumer copy of
the data materialised another way (polars: filter rows, mask, drop denied columns)."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from meshsim.policy.access import resolve_access
from tests.query.meshdata import EUROPE, MeshData, region_of_nation

QUERIES = [
    "SELECT c_mktsegment, count(*), sum(c_custkey) FROM customer.customer GROUP BY 1 ORDER BY 1",
    "SELECT c.c_nationkey, count(*) FROM customer.customer c JOIN sales.orders o "
    "ON o.o_custkey = c.c_custkey GROUP BY 1 ORDER BY 1",
    "SELECT c_phone, c_address FROM customer.customer ORDER BY c_custkey",
    "SELECT o_orderkey FROM sales.orders WHERE o_custkey IN (SELECT c_custkey FROM "
    "customer.customer WHERE c_mktsegment = 'BUILDING') ORDER BY 1",
    "SELECT n_name, count(*) FROM customer.nation n JOIN customer.customer c "
    "ON c.c_nationkey = n.n_nationkey GROUP BY 1 ORDER BY 1",
    "SELECT count(*) FROM (SELECT o_custkey FROM sales.orders UNION SELECT c_custkey "
    "FROM customer.customer)",
]


def materialise(mesh: MeshData, consumer: str) -> duckdb.DuckDBPyConnection:
    """A plain DuckDB with one table per mesh table, holding what ``consumer`` may see."""
    con = duckdb.connect()
    eu = consumer == "eu_marketing_analyst"
    europe = {i for i in range(25) if region_of_nation(i) == EUROPE}
    customers = pl.from_arrow(mesh.read("customer.customer"))
    eu_keys = customers.filter(pl.col("c_nationkey").is_in(list(europe)))["c_custkey"]
    for table in mesh.spec.tables():
        access = resolve_access(mesh.spec, consumer, table.ref)
        if not access.granted:
            continue
        df = pl.from_arrow(mesh.read(table.ref))
        if eu and table.ref == "customer.customer":
            df = df.filter(pl.col("c_nationkey").is_in(list(europe)))
        if eu and table.ref == "sales.orders":
            df = df.filter(pl.col("o_custkey").is_in(eu_keys.to_list()))
        if "c_phone" in df.columns and eu:
            df = df.with_columns(
                pl.concat_str(
                    pl.lit("****"),
                    pl.col("c_phone").fill_null("").str.slice(-4).str.pad_start(4, "*"),
                ).alias("c_phone")
            )
        if "c_address" in df.columns and eu:
            df = df.with_columns(pl.lit("****").alias("c_address"))
        df = df.select(access.visible_columns)
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {table.domain}")
        con.register("tmp_frame", df.to_arrow())
        con.execute(f"CREATE TABLE {table.ref} AS SELECT * FROM tmp_frame")
        con.unregister("tmp_frame")
    return con


@pytest.mark.parametrize("consumer", ["eu_marketing_analyst", "governance_admin"])
@pytest.mark.parametrize("sql", QUERIES)
def test_governed_equals_materialised_copy(engine, mesh: MeshData, consumer: str, sql: str):
    con = materialise(mesh, consumer)
    want = con.sql(sql).fetchall()
    con.close()
    got = engine.session(consumer).sql(sql).fetchall()
    assert got == want
