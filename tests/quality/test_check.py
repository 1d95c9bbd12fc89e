"""``meshsim check``: the report, its JSON shape, its exit code, sample keys that never show
a value the viewer may not see, and one ``Error:`` line for every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshsim.mesh import Mesh
from meshsim.quality.results import HIDDEN
from tests.cli.clihelpers import assert_clean_error, run
from tests.quality.conftest import ORDERS, add_rules

RESULT_KEYS = {
    "product",
    "table",
    "rule",
    "kind",
    "severity",
    "status",
    "version",
    "checked_at",
    "failing_rows",
    "observed",
    "sample_columns",
    "samples",
    "hidden_columns",
    "message",
}


def _result(run, rule: str):
    return next(r for r in run.results if r.rule == rule)


@pytest.fixture
def small_qty(quality_ws) -> Path:
    """The quality mesh with a failing warn rule on shop.items, which a row filter narrows
    for the analyst."""
    mesh_dir, ws = quality_ws
    add_rules(
        mesh_dir / ORDERS,
        "items",
        "      - {range: {max: 2}, column: qty, name: small_qty, severity: warn}\n",
    )
    return ws


def test_a_masked_column_is_never_shown_to_a_consumer_who_sees_it_masked(quality_ws):
    _, ws = quality_ws
    with Mesh.open(ws) as mesh:
        admin = _result(mesh.check("crm.customers", as_consumer="admin"), "one_customer_per_email")
        analyst = _result(
            mesh.check("crm.customers", as_consumer="analyst"), "one_customer_per_email"
        )
        operator = _result(mesh.check("crm.customers"), "one_customer_per_email")
    assert (admin.samples, admin.hidden_columns) == ([["bob@example.com"]], [])
    assert (analyst.samples, analyst.hidden_columns) == ([[HIDDEN]], ["email"])
    assert operator.samples == [[HIDDEN]]  # masked for the non-admin consumers
    assert analyst.failing_rows == admin.failing_rows == 2  # counts are not data values


def test_a_row_filtered_table_shows_a_consumer_no_sample_key(small_qty):
    with Mesh.open(small_qty) as mesh:
        analyst = _result(mesh.check("shop.sales", as_consumer="analyst"), "small_qty")
        admin = _result(mesh.check("shop.sales", as_consumer="admin"), "small_qty")
        operator = _result(mesh.check("shop.sales"), "small_qty")
        unfiltered = _result(mesh.check("shop.sales", as_consumer="analyst"), "regex_code")
    assert admin.samples == [["11", "1"], ["14", "1"]]
    assert analyst.samples == [[HIDDEN, HIDDEN]] * 2
    assert operator.samples == admin.samples  # every consumer reads the keys in full
    assert unfiltered.samples == [["12"]]  # shop.orders has no row filter for the analyst


def test_the_json_report_lists_every_result_and_exits_zero_when_only_warn_rules_fail(
    built_quality, capsys, tmp_path
):
    import shutil

    shutil.copytree(built_quality / "ws", tmp_path / "ws")
    code, out, err = run(capsys, "check", "--workspace", str(tmp_path / "ws"), "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert set(report) == {"trigger", "started_at", "viewer", "products", "results"}
    assert report["trigger"] == "check" and report["products"] == ["crm.customers", "shop.sales"]
    assert all(set(r) == RESULT_KEYS for r in report["results"])
    failed = [r["rule"] for r in report["results"] if r["status"] != "passed"]
    assert failed == ["one_customer_per_email", "regex_code"]  # both warn


def test_a_failing_error_rule_fails_the_check(quality_ws, capsys):
    mesh_dir, ws = quality_ws
    add_rules(mesh_dir / ORDERS, "orders", "      - {row_count: {max: 3}, name: at_most_three}\n")
    code, out, err = run(capsys, "check", "shop.sales", "--workspace", str(ws), "--format", "json")
    assert_clean_error(code, err, "1 error rule(s) failed", "rule 'at_most_three'")
    assert json.loads(out)["results"]  # the report is printed first, for CI
    code, out, err = run(capsys, "check", "shop.sales", "--workspace", str(ws))
    assert code == 1
    assert "quality: 9 passed, 2 failed, 0 could not run" in out


def test_a_rule_that_cannot_run_is_an_error_result_not_a_crash(quality_ws):
    mesh_dir, ws = quality_ws
    add_rules(
        mesh_dir / ORDERS,
        "orders",
        '      - {sql: "SELECT CAST(code AS INTEGER) AS x FROM shop.orders", name: broken}\n',
    )
    with Mesh.open(ws) as mesh:
        broken = _result(mesh.check("shop.sales"), "broken")
    assert broken.status == "error" and broken.blocks
    assert broken.message.startswith("could not run:")


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["nope.sales"], ["product 'nope.sales' is not defined", "shop.sales"]),
        (["shop.sales", "--version", "shop.orders"], ["is not TABLE=VERSION"]),
        (["shop.sales", "--version", "shop.orders=99"], ["has no version 99", "0 to 0"]),
        (["shop.sales", "--version", "crm.customers=0"], ["names a table of the products"]),
        (["--as", "nobody"], ["nobody"]),
        (["--format", "xml"], ["xml"]),
    ],
)
def test_every_bad_input_is_one_error_line(built_quality, capsys, args, needles):
    code, _, err = run(capsys, "check", "--workspace", str(built_quality / "ws"), *args)
    assert_clean_error(code, err, *needles)
    assert len([line for line in err.splitlines() if line.startswith("Error:")]) == 1
