"""Each rule kind, passing and failing, executed on DuckDB and compared with a reference
computed another way: the Delta table read with deltalake into pyarrow, the rule checked in
plain Python."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meshsim.mesh import Mesh
from meshsim.quality.gate import mesh_reader
from meshsim.quality.runner import run_checks
from meshsim.storage import delta
from tests.quality.conftest import ORDERS, QUALITY_MESH, add_rules

VARIANTS = """\
      - {not_null: [order_id], name: not_null_passes, severity: warn}
      - {not_null: [customer_id], name: not_null_fails, severity: warn}
      - {unique: [order_id], name: unique_passes, severity: warn}
      - {unique: [customer_id], name: unique_fails, severity: warn}
      - {unique: [customer_id, status], name: unique_pair_passes, severity: warn}
      - {accepted_values: [open, shipped, returned], column: status, name: accepted_passes, severity: warn}
      - {accepted_values: [open], column: status, name: accepted_fails, severity: warn}
      - {range: {min: 0, max: 1000}, column: amount, name: range_passes, severity: warn}
      - {range: {max: 50}, column: amount, name: range_fails, severity: warn}
      - {range: {min: '2026-01-03 00:00:00'}, column: ordered_at, name: range_time_fails, severity: warn}
      - {regex: '^[A-Za-z0-9]{3}$', column: code, name: regex_passes, severity: warn}
      - {regex: '^[A-Z]{3}$', column: code, name: regex_fails, severity: warn}
      - {row_count: {min: 5, max: 5}, name: row_count_passes, severity: warn}
      - {row_count: {max: 4}, name: row_count_fails, severity: warn}
      - {references: crm.customers, columns: [customer_id], name: references_fails, severity: warn}
      - {sql: "SELECT * FROM shop.orders WHERE amount < 0", name: sql_passes, severity: warn}
      - {sql: "SELECT order_id, status FROM shop.orders WHERE status = 'open'", name: sql_fails, severity: warn}
      - {sql: "SELECT status, amount FROM shop.orders WHERE amount > 90", name: sql_no_key, severity: warn}
      - {freshness: 1d, column: ordered_at, name: freshness_column, severity: warn}
"""


@pytest.fixture(scope="module")
def kinds(tmp_path_factory: pytest.TempPathFactory):
    import shutil

    root = tmp_path_factory.mktemp("kinds")
    shutil.copytree(QUALITY_MESH, root / "mesh")
    add_rules(root / "mesh" / ORDERS, "orders", VARIANTS)
    with Mesh.build(root / "mesh", root / "ws", scale=1) as mesh:
        yield mesh


def _rows(mesh: Mesh, ref: str) -> list[dict]:
    return delta.read_table(mesh.locate(ref), table=ref).to_pylist()


def _results(mesh: Mesh) -> dict[str, object]:
    return {r.rule: r for r in mesh.check("shop.sales", as_consumer="admin").results}


def _reference(mesh: Mesh) -> dict[str, int]:
    """Failing rows of each variant, computed in Python over deltalake's rows."""
    orders = _rows(mesh, "shop.orders")
    customers = {c["customer_id"] for c in _rows(mesh, "crm.customers")}
    keys = [o["order_id"] for o in orders]
    repeated = [o["customer_id"] for o in orders if o["customer_id"] is not None]
    pairs = [(o["customer_id"], o["status"]) for o in orders if o["customer_id"] is not None]
    return {
        "not_null_passes": sum(o["order_id"] is None for o in orders),
        "not_null_fails": sum(o["customer_id"] is None for o in orders),
        "unique_passes": sum(keys.count(k) > 1 for k in keys),
        "unique_fails": sum(repeated.count(c) > 1 for c in repeated),
        "unique_pair_passes": sum(pairs.count(p) > 1 for p in pairs),
        "accepted_passes": sum(o["status"] not in ("open", "shipped", "returned") for o in orders),
        "accepted_fails": sum(o["status"] != "open" for o in orders),
        "range_passes": sum(not 0 <= o["amount"] <= 1000 for o in orders),
        "range_fails": sum(o["amount"] > 50 for o in orders),
        "range_time_fails": sum(o["ordered_at"] < datetime(2026, 1, 3) for o in orders),
        "regex_passes": sum(not re.fullmatch("[A-Za-z0-9]{3}", o["code"]) for o in orders),
        "regex_fails": sum(not re.fullmatch("[A-Z]{3}", o["code"]) for o in orders),
        "references_fails": sum(
            o["customer_id"] is not None and o["customer_id"] not in customers for o in orders
        ),
        "sql_passes": sum(o["amount"] < 0 for o in orders),
        "sql_fails": sum(o["status"] == "open" for o in orders),
    }


def test_each_row_rule_counts_the_rows_the_reference_finds(kinds: Mesh):
    results = _results(kinds)
    for name, failing in _reference(kinds).items():
        result = results[name]
        assert result.failing_rows == failing, name
        assert result.status == ("passed" if name.endswith("passes") else "failed"), name
    assert all(results[n].failing_rows for n in _reference(kinds) if n.endswith("fails"))


def test_failing_rows_show_their_primary_key_or_the_repeated_combination(kinds: Mesh):
    results = _results(kinds)
    assert results["accepted_fails"].sample_columns == ["order_id"]
    assert results["accepted_fails"].samples == [["11"], ["12"], ["14"]]
    assert results["unique_fails"].sample_columns == ["customer_id"]
    assert results["unique_fails"].samples == [["2"]]
    assert results["references_fails"].samples == [["14"]]  # customer 9 is not a customer
    assert results["sql_fails"].samples == [["10"], ["13"]]  # the query returns the key
    no_key = results["sql_no_key"]  # else its own columns, in order
    assert (no_key.sample_columns, no_key.samples) == (
        ["status", "amount"],
        [["open", "100.00"], ["shipped", "999.99"]],
    )


def test_row_count_measures_the_rows(kinds: Mesh):
    results = _results(kinds)
    assert (results["row_count_passes"].status, results["row_count_passes"].observed) == (
        "passed",
        "5",
    )
    failed = results["row_count_fails"]
    assert (failed.status, failed.observed, failed.failing_rows) == ("failed", "5", None)
    assert "outside ..4" in failed.message


@pytest.mark.parametrize(
    ("now", "status"),
    [
        (datetime(2026, 1, 5, 20, tzinfo=UTC), "passed"),
        (datetime(2026, 1, 7, tzinfo=UTC), "failed"),
    ],
)
def test_freshness_of_a_column_is_its_newest_value_against_the_duration(kinds: Mesh, now, status):
    product = kinds.spec.product("shop.sales")
    run = run_checks(mesh_reader(kinds), [product], trigger="check", now=now)
    result = next(r for r in run.results if r.rule == "freshness_column")
    assert result.status == status
    assert "newest ordered_at 2026-01-05T14:00:00+00:00" in (result.observed or "")


def test_freshness_without_a_column_is_the_last_commit_of_the_version_checked(kinds: Mesh):
    product = kinds.spec.product("shop.sales")
    committed = kinds.snapshot("shop.orders").timestamp
    late = committed.replace(year=committed.year + 11)
    fresh = run_checks(mesh_reader(kinds), [product], trigger="check", now=committed)
    stale = run_checks(mesh_reader(kinds), [product], trigger="check", now=late)
    assert next(r for r in fresh.results if r.rule == "freshness").status == "passed"
    failed = next(r for r in stale.results if r.rule == "freshness")
    assert failed.status == "failed"
    assert "more than 3650d" in failed.message


def test_the_example_mesh_passes_every_rule(workspace: Path):
    with Mesh.open(workspace) as mesh:
        run = mesh.check()
    assert run.results and all(r.status == "passed" for r in run.results), [
        r.summary() for r in run.results if r.status != "passed"
    ]
    kinds = {r.kind for r in run.results}
    assert {"unique", "not_null", "accepted_values", "range", "references", "freshness"} <= kinds
