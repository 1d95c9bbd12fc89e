"""The outside review's findings: sample values and observations a viewer may not see, the
gate of rules that reference a changed table, RE2 regexes, the refusal's hint, the status
``show`` lists, and the small spec messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshsim.errors import MeshsimError, QualityGateError, SpecError
from meshsim.mesh import Mesh, validate
from meshsim.quality.results import HIDDEN
from tests.cli.clihelpers import assert_clean_error, run
from tests.conftest import edit
from tests.quality.conftest import ORDERS, add_rules

ORDERS_FILTER = (
    "    - {name: analyst_open_orders, consumers: [analyst], table: shop.orders,"
    " predicate: \"status = 'open'\"}\n"
)


def _result(run, rule: str):
    return next(r for r in run.results if r.rule == rule)


def _filter_orders_for_the_analyst(mesh_dir: Path) -> None:
    text = (mesh_dir / "mesh.yaml").read_text()
    (mesh_dir / "mesh.yaml").write_text(text + ORDERS_FILTER)


# --- 1: custom SQL samples ----------------------------------------------------------------


def test_custom_sql_samples_show_no_value_to_a_non_admin(quality_ws):
    mesh_dir, ws = quality_ws
    # the analyst reads shop.orders in full, but shop.items hides its qty = 1 rows from it
    add_rules(
        mesh_dir / ORDERS,
        "orders",
        '      - {sql: "SELECT order_id FROM shop.items WHERE qty < 2", name: single_lines,'
        " severity: warn}\n",
    )
    with Mesh.open(ws) as mesh:
        analyst = _result(mesh.check("shop.sales", as_consumer="analyst"), "single_lines")
        operator = _result(mesh.check("shop.sales"), "single_lines")
        admin = _result(mesh.check("shop.sales", as_consumer="admin"), "single_lines")
    assert admin.samples == [["10"], ["12"]]
    assert analyst.samples == operator.samples == [[HIDDEN], [HIDDEN]]
    assert analyst.hidden_columns == ["order_id"]
    assert analyst.failing_rows == 2


# --- 2: observed values, and who may check ------------------------------------------------


def test_a_freshness_observation_is_hidden_unless_the_viewer_reads_the_column_in_full(
    quality_ws, capsys
):
    mesh_dir, ws = quality_ws
    _filter_orders_for_the_analyst(mesh_dir)
    add_rules(
        mesh_dir / ORDERS,
        "orders",
        "      - {freshness: 1d, column: ordered_at, name: fresh_orders, severity: warn}\n",
    )
    with Mesh.open(ws) as mesh:
        admin = _result(mesh.check("shop.sales", as_consumer="admin"), "fresh_orders")
        analyst = _result(mesh.check("shop.sales", as_consumer="analyst"), "fresh_orders")
        operator = _result(mesh.check("shop.sales"), "fresh_orders")
        shown = {r["rule"]: r for r in mesh.show("shop.sales", as_consumer="analyst").quality}
        operator_shown = {r["rule"]: r for r in mesh.show("shop.sales").quality}
        admin_shown = {r["rule"]: r for r in mesh.show("shop.sales", as_consumer="admin").quality}
    assert "2026-01-05T14:00:00" in admin.observed and "old, more than 1d" in admin.message
    for hidden in (analyst, operator):
        assert hidden.observed == HIDDEN and "d old" not in hidden.message
        assert hidden.status == "failed"
    assert shown["fresh_orders"]["observed"] == HIDDEN
    assert operator_shown["fresh_orders"]["observed"] == HIDDEN
    assert "2026-01-05T14:00:00" in admin_shown["fresh_orders"]["observed"]
    code, out, _ = run(capsys, "check", "shop.sales", "--as", "analyst", "--workspace", str(ws))
    assert "2026-01-05" not in out


def test_a_row_count_observation_is_hidden_from_a_row_filtered_viewer(quality_ws):
    mesh_dir, ws = quality_ws
    _filter_orders_for_the_analyst(mesh_dir)
    with Mesh.open(ws) as mesh:
        analyst = _result(mesh.check("shop.sales", as_consumer="analyst"), "row_count")
        admin = _result(mesh.check("shop.sales", as_consumer="admin"), "row_count")
    assert admin.observed == "5" and analyst.observed == HIDDEN


def test_a_consumer_without_a_grant_on_the_product_cannot_check_it(quality_ws, capsys):
    mesh_dir, ws = quality_ws
    edit(mesh_dir / "mesh.yaml", "  - {name: analyst}\n", "  - {name: analyst}\n  - {name: nosy}\n")
    code, out, err = run(capsys, "check", "shop.sales", "--as", "nosy", "--workspace", str(ws))
    assert_clean_error(code, err, "'nosy' has no grant on any table of 'shop.sales'")
    assert "row_count" not in out
    code, out, err = run(
        capsys,
        "check", "shop.sales", "--as", "analyst", "--version", "shop.orders=0",
        "--workspace", str(ws),
    )  # fmt: skip
    assert code == 0, err  # version 0 is the published one
    with Mesh.open(ws) as mesh:
        every = mesh.check(as_consumer="nosy")  # every product it may read: none
        shown = {r["rule"]: r for r in mesh.show("shop.sales", as_consumer="nosy").quality}
    assert every.products == [] and every.results == []
    assert shown["row_count"]["observed"] == HIDDEN  # the catalog lists it, not its size


def test_an_unpublished_version_is_checked_only_by_an_admin_or_the_owner(quality_ws):
    mesh_dir, ws = quality_ws
    with Mesh.open(ws) as mesh:
        unpublished = _refused_version(mesh)
        with pytest.raises(MeshsimError, match="not published"):
            mesh.check("shop.sales", as_consumer="analyst", versions={"shop.orders": unpublished})
        owner = mesh.check("shop.sales", as_consumer="shop", versions={"shop.orders": unpublished})
    assert _result(owner, "accepted_values_status").failing_rows == 1


def _refused_version(mesh: Mesh) -> int:
    """The version of shop.orders a refused write made (unpublished)."""
    with pytest.raises(QualityGateError) as refused:
        mesh.write("shop.orders", _bad_order(), mode="append")
    return next(r.version for r in refused.value.run.results if r.table == "shop.orders")


def _bad_order():
    import pyarrow as pa

    return pa.table(
        {
            "order_id": pa.array([15], pa.int64()),
            "customer_id": pa.array([1], pa.int64()),
            "status": ["lost"],
            "amount": pa.array([1.0]),
            "discount": pa.array([0.0]),
            "code": ["MNO"],
            "ordered_at": pa.array([None], pa.timestamp("us")),
        }
    )


# --- 3: a write that breaks another product's reference -----------------------------------

RETURNS = """name: returns
description: Returned orders.
owner: shop-team
tables:
  - name: returns
    description: One row per returned order.
    primary_key: [order_id]
    source: {csv: shop/data/returns.csv, header: true}
    quality:
      - {references: shop.orders, columns: [order_id], to: [order_id], name: returns_have_orders}
    columns:
      - {name: order_id, type: bigint, classification: internal, description: Order.}
"""


def test_a_delete_that_breaks_another_products_reference_is_refused(quality_mesh, tmp_path):
    (quality_mesh / "shop/products/returns.yaml").write_text(RETURNS)
    (quality_mesh / "shop/data/returns.csv").write_text("order_id\n13\n")
    with Mesh.build(quality_mesh, tmp_path / "ws", scale=1) as mesh:
        before = mesh.published_version("shop.orders")
        with pytest.raises(QualityGateError) as refused:
            mesh.delete("shop.orders", "order_id = 13")
        assert "returns_have_orders" in refused.value.message
        assert f"--version shop.orders={before + 1}" in (refused.value.hint or "")
        assert "meshsim check shop.returns" in (refused.value.hint or "")
        assert mesh.sql("admin", "SELECT count(*) FROM shop.orders").fetchall() == [(5,)]


# --- 4: regexes run on RE2 -----------------------------------------------------------------


@pytest.mark.parametrize("pattern", [r"(?=a)\w+", r"(a)\1"])
def test_a_regex_re2_cannot_run_is_refused_by_validate(quality_mesh, pattern):
    add_rules(
        quality_mesh / ORDERS,
        "orders",
        f"      - {{regex: '{pattern}', column: code, name: re2}}\n",
    )
    errors = [p for p in validate(quality_mesh) if p.severity == "error"]
    assert len(errors) == 1, [str(e) for e in errors]
    assert "RE2" in errors[0].message and pattern in errors[0].message


def test_an_re2_pattern_python_refuses_is_accepted(quality_mesh):
    add_rules(
        quality_mesh / ORDERS, "orders", "      - {regex: '\\pL+', column: code, name: letters}\n"
    )
    assert [str(p) for p in validate(quality_mesh) if p.severity == "error"] == []


# --- 5: the refusal's hint -----------------------------------------------------------------


def test_a_refusal_of_a_rule_without_rows_names_no_failing_rows(quality_ws):
    mesh_dir, ws = quality_ws
    add_rules(mesh_dir / ORDERS, "orders", "      - {row_count: {max: 5}, name: at_most_five}\n")
    with Mesh.open(ws) as mesh, pytest.raises(QualityGateError) as refused:
        mesh.write("shop.orders", _bad_order().set_column(2, "status", [["open"]]))
    version = next(r.version for r in refused.value.run.results if r.rule == "at_most_five")
    hint = refused.value.hint or ""
    assert "see the failing rows" not in hint
    assert f"--version shop.orders={version}" in hint


def test_the_hint_names_the_changed_tables_candidate_versions(quality_ws):
    mesh_dir, ws = quality_ws
    with Mesh.open(ws) as mesh:
        items = mesh.published_version("shop.items")
        orders = mesh.published_version("shop.orders")
        with pytest.raises(QualityGateError) as refused:
            mesh.delete("shop.orders", "order_id = 11")  # items 11 lose their order
    hint = refused.value.hint or ""
    assert f"--version shop.orders={orders + 1}" in hint
    assert f"shop.items={items}" not in hint


# --- 6: show lists the published version's status -----------------------------------------


def test_show_lists_the_published_versions_status(quality_ws):
    _, ws = quality_ws
    with Mesh.open(ws) as mesh:
        refused = _refused_version(mesh)
        published = mesh.published_version("shop.orders")  # the restored rows, not checked yet
        unchecked = {r["rule"]: r for r in mesh.show("shop.sales").quality}
        mesh.check("shop.sales")
        mesh.check("shop.sales", versions={"shop.orders": refused})
        latest = {r["rule"]: r for r in mesh.show("shop.sales").quality}
    assert unchecked["accepted_values_status"]["status"] == "unchecked"
    status = latest["accepted_values_status"]
    assert (status["status"], status["version"]) == ("passed", published)
    assert f"version {refused}" in status["unpublished"]
    assert "failed" in status["unpublished"]


# --- 7: small spec messages ----------------------------------------------------------------


def test_a_yaml_date_bound_is_accepted_as_iso(quality_mesh):
    add_rules(
        quality_mesh / ORDERS, "orders", "      - {range: {min: 2026-01-01}, column: ordered_at}\n"
    )
    assert [str(p) for p in validate(quality_mesh) if p.severity == "error"] == []


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("{accepted_values: [open, null], column: status}", "null is not a value to compare"),
        ("{range: {min: [1]}, column: amount}", "a bound or accepted value is a number, a date"),
        ("{freshness: 0m}", "allows no age at all: give more than 0"),
    ],
)
def test_a_bad_value_gives_one_clear_message(quality_mesh, rule, message):
    add_rules(quality_mesh / ORDERS, "orders", f"      - {rule}\n")
    with pytest.raises(SpecError) as refused:
        validate(quality_mesh)
    problems = [line for line in str(refused.value).splitlines() if "sales.yaml:" in line]
    assert len(problems) == 1, problems
    assert message in problems[0]


def test_custom_sql_over_a_table_function_names_the_function(quality_mesh):
    add_rules(
        quality_mesh / ORDERS,
        "orders",
        "      - {sql: \"SELECT * FROM read_csv('/etc/passwd')\"}\n",
    )
    (error,) = [p for p in validate(quality_mesh) if p.severity == "error"]
    assert "reads the table function read_csv" in error.message
    assert "reads ''" not in error.message


def test_a_repeated_version_is_an_error(built_quality, capsys):
    code, _, err = run(
        capsys,
        "check", "shop.sales", "--version", "shop.orders=0", "--version", "shop.orders=0",
        "--workspace", str(built_quality / "ws"),
    )  # fmt: skip
    assert_clean_error(code, err, "--version names 'shop.orders' twice")
