"""The governed SQL each consumer gets, pinned by golden files (security-critical output).

A change to masks, row filters, grants or the rewrite shows up as a diff of
``tests/query/golden/<consumer>.sql``. Storage appears as ``<table vN: k files>`` and the
mesh key as ``<mesh-key>``, so the files do not depend on where the test data lives.
Regenerate after an intended change with ``MESHSIM_UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlglot

GOLDEN = Path(__file__).parent / "golden"

QUERIES = {
    "governance_admin": [
        "SELECT c_name, c_phone, c_acctbal FROM customer.customer",
        "SELECT count(*) FROM sales.orders",
    ],
    "eu_marketing_analyst": [
        "SELECT c_name, c_phone, c_address FROM customer.customer",
        "SELECT o_orderkey, o_totalprice FROM sales.orders",
        "SELECT l_orderkey, l_extendedprice FROM sales.lineitem",
        # a predicate that could fail on a hidden row: every value of the scan is gated
        "SELECT o_orderkey FROM sales.orders WHERE CAST(o_comment AS INT) = 0",
    ],
    "finance_controller": [
        "SELECT c_name, c_phone, c_acctbal FROM customer.customer",
    ],
    "supply_planner": [
        "SELECT s_name, s_phone, s_address FROM supply.supplier",
        "SELECT l_partkey, l_quantity FROM sales.lineitem",
    ],
    "external_partner": [
        "SELECT p_partkey, p_name FROM supply.part",
    ],
}


@pytest.mark.parametrize("consumer", sorted(QUERIES))
def test_governed_sql_is_pinned(engine, consumer: str) -> None:
    session = engine.session(consumer)
    parts = []
    for sql in QUERIES[consumer]:
        governed = sqlglot.transpile(
            session.explain(sql).governed_sql, read="duckdb", write="duckdb", pretty=True
        )[0]
        parts.append(f"-- {sql}\n{governed}\n")
    text = "\n".join(parts)
    path = GOLDEN / f"{consumer}.sql"
    if os.environ.get("MESHSIM_UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"missing {path}; run with MESHSIM_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"governed SQL for {consumer} changed; review the diff"
