"""Column lineage of derived products: each output column's inputs and how it is computed
(direct, expression, aggregate), the filter-only inputs, and the governance in between."""

from __future__ import annotations

from pathlib import Path

from meshsim.lineage import ColumnRef, mesh_lineage
from meshsim.lineage.columns import column_edges
from meshsim.spec.loader import load_mesh
from tests.conftest import EXAMPLE_MESH
from tests.lineage.conftest import derive, spec_of


def _edges(mesh_dir: Path, ref: str) -> set[tuple[str, str, str]]:
    spec = spec_of(mesh_dir)
    table = spec.table(ref)
    assert table is not None
    return {(str(e.source), str(e.target), e.kind) for e in column_edges(spec, table)}


def test_customer_revenue_matches_the_hand_written_lineage():
    revenue = "sales.customer_revenue"
    rows = revenue  # a filter-only input decides the rows, not one column
    expected = {
        ("customer.customer.c_custkey", f"{revenue}.c_custkey", "direct"),
        ("customer.customer.c_name", f"{revenue}.c_name", "direct"),
        ("customer.nation.n_name", f"{revenue}.nation", "direct"),
        ("sales.orders.o_orderkey", f"{revenue}.orders", "aggregate"),
        ("sales.lineitem.l_extendedprice", f"{revenue}.revenue", "aggregate"),
        ("sales.lineitem.l_discount", f"{revenue}.revenue", "aggregate"),
        # JOIN ... ON keys and the WHERE column reach no output column
        ("sales.lineitem.l_orderkey", rows, "filter"),
        ("sales.orders.o_custkey", rows, "filter"),
        ("customer.customer.c_nationkey", rows, "filter"),
        ("customer.nation.n_nationkey", rows, "filter"),
        ("sales.lineitem.l_returnflag", rows, "filter"),
    }
    assert _edges(EXAMPLE_MESH, revenue) == expected


def test_customer_revenue_reads_names_through_the_pii_mask_of_sales():
    lineage = mesh_lineage(load_mesh(EXAMPLE_MESH))
    governance = [(str(g.source), str(g.target), g.kind, g.policy) for g in lineage.governance]
    # sales has no region attribute, so no regional row filter; c_name is pii, keyed-hashed
    assert governance == [
        (
            "customer.customer.c_name",
            "sales.customer_revenue.c_name",
            "mask",
            "pii_keyed_hash",
        )
    ]
    assert {g.consumer for g in lineage.governance} == {"sales"}


def test_each_transformation_kind(marketing: Path):
    derive(
        marketing,
        "kinds",
        "SELECT order_id AS id, upper(region) AS area, sum(amount) AS total, "
        "CAST(ordered_on AS varchar) AS day FROM shop.orders "
        "WHERE customer_email IS NOT NULL GROUP BY order_id, region, ordered_on",
        {"id": "bigint", "area": "varchar", "total": "decimal(38,2)", "day": "varchar"},
    )
    assert _edges(marketing, "marketing.kinds") == {
        ("shop.orders.order_id", "marketing.kinds.id", "direct"),
        ("shop.orders.region", "marketing.kinds.area", "expression"),
        ("shop.orders.amount", "marketing.kinds.total", "aggregate"),
        ("shop.orders.ordered_on", "marketing.kinds.day", "expression"),
        ("shop.orders.customer_email", "marketing.kinds", "filter"),
    }


def test_kinds_through_ctes_take_the_strongest_step(marketing: Path):
    # the aggregate happens in the CTE, the outer query only renames: still an aggregate;
    # a CTE column nobody selects is read by nothing (no filter edge either)
    derive(
        marketing,
        "by_region",
        "WITH t AS (SELECT region, max(amount) AS top, min(ordered_on) AS unused "
        "FROM shop.orders GROUP BY region) SELECT region AS r, top FROM t WHERE top > 0",
        {"r": "varchar", "top": "decimal(10,2)"},
    )
    assert _edges(marketing, "marketing.by_region") == {
        ("shop.orders.region", "marketing.by_region.r", "direct"),
        ("shop.orders.amount", "marketing.by_region.top", "aggregate"),
    }


def test_star_and_a_filter_in_a_subquery(marketing: Path):
    derive(
        marketing,
        "eu",
        "SELECT * FROM (SELECT order_id, amount FROM shop.orders WHERE region = 'EU') AS o",
        {"order_id": "bigint", "amount": "decimal(10,2)"},
    )
    assert _edges(marketing, "marketing.eu") == {
        ("shop.orders.order_id", "marketing.eu.order_id", "direct"),
        ("shop.orders.amount", "marketing.eu.amount", "direct"),
        ("shop.orders.region", "marketing.eu", "filter"),
    }


def test_a_derived_input_read_masked_and_row_filtered_says_so(marketing: Path):
    derive(
        marketing,
        "contacts",
        "SELECT customer_email, amount FROM shop.orders",
        {"customer_email": "varchar", "amount": "decimal(10,2)"},
    )
    lineage = mesh_lineage(spec_of(marketing))
    found = {(str(g.source), str(g.target), g.kind, g.policy, g.detail) for g in lineage.governance}
    assert found == {
        (
            "shop.orders.customer_email",
            "marketing.contacts.customer_email",
            "mask",
            "hash_pii",
            "keyed_hash",
        ),
        (
            "shop.orders",
            "marketing.contacts",
            "row_filter",
            "own_region",
            "region = consumer.region",
        ),
    }


def test_derived_from_derived_is_followed_both_ways(marketing: Path):
    derive(
        marketing,
        "totals",
        "SELECT region, sum(amount) AS total FROM shop.orders GROUP BY region",
        {"region": "varchar", "total": "decimal(38,2)"},
    )
    derive(
        marketing,
        "top_region",
        "SELECT region FROM marketing.totals ORDER BY total DESC LIMIT 1",
        {"region": "varchar"},
    )
    lineage = mesh_lineage(spec_of(marketing))
    up = lineage.upstream(ColumnRef(table="marketing.top_region", column="region"))
    assert {(str(e.source), str(e.target)) for e in up.columns} == {
        ("marketing.totals.region", "marketing.top_region.region"),
        ("shop.orders.region", "marketing.totals.region"),
        # ORDER BY total: read, but by no output column; its own inputs are upstream too
        ("marketing.totals.total", "marketing.top_region"),
        ("shop.orders.amount", "marketing.totals.total"),
    }
    assert [(s.kind, s.target) for s in up.sources] == [("csv", "shop.orders")]
    down = lineage.downstream(ColumnRef(table="shop.orders", column="amount"))
    assert down.targets() == ["marketing.top_region", "marketing.totals"]
    # a column no derived product reads reaches nothing
    unused = lineage.downstream(ColumnRef(table="shop.orders", column="ordered_on"))
    assert unused.targets() == []
    # an ORDER BY ... LIMIT column is a filter: it decides which rows
    assert ("marketing.totals.total", "marketing.top_region", "filter") in {
        (str(e.source), str(e.target), e.kind) for e in up.columns
    }
