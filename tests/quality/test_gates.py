"""The quality gates: a failing ``error`` rule keeps the previous version current on build,
write and publish; a ``warn`` rule records its result and the command goes on; results are
stored in the catalog with the version they checked, and ``meshsim show`` lists them."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from meshsim.errors import QualityGateError
from meshsim.mesh import Mesh
from tests.cli.clihelpers import assert_clean_error, run
from tests.conftest import edit
from tests.quality.conftest import ORDERS, add_rules

BAD_ROW = "15,1,lost,1.00,0.00,MNO,2026-01-06 10:00:00\n"
COUNT = "SELECT count(*) FROM shop.orders"


def _break_orders(mesh_dir: Path) -> None:
    with (mesh_dir / "shop/data/orders.csv").open("a") as f:
        f.write(BAD_ROW)


def test_a_build_whose_error_rule_fails_keeps_the_previous_version(quality_ws, capsys):
    mesh_dir, ws = quality_ws
    with Mesh.open(ws) as mesh:
        before = mesh.published_version("shop.orders")
    _break_orders(mesh_dir)
    code, _, err = run(capsys, "build", "--mesh", str(mesh_dir), "--workspace", str(ws))
    assert_clean_error(
        code,
        err,
        "quality gate: rule 'accepted_values_status'",
        "1 failing row(s)",
        "the previous version stays current",
        f"meshsim check shop.sales --version shop.orders={before + 1}",
    )
    assert len([line for line in err.splitlines() if line.startswith("Error:")]) == 1
    with Mesh.open(ws) as mesh:
        assert mesh.published_version("shop.orders") == before
        assert mesh.sql("admin", COUNT).fetchall() == [(5,)]
        latest = {r["rule"]: r for r in mesh.show("shop.sales").quality}
        # show lists the published version's status, the refused candidate's apart
        assert latest["accepted_values_status"]["status"] == "passed"
        assert latest["accepted_values_status"]["version"] == before
        assert latest["accepted_values_status"]["unpublished"].startswith(
            f"failed on version {before + 1} (not published; by build"
        )
        # the refused version can be checked, with its failing rows
        refused = mesh.check("shop.sales", versions={"shop.orders": before + 1})
        failed = next(r for r in refused.results if r.rule == "accepted_values_status")
        assert (failed.failing_rows, failed.samples) == (1, [["15"]])


def test_a_rebuild_after_the_data_is_fixed_publishes_it(quality_ws):
    mesh_dir, ws = quality_ws
    _break_orders(mesh_dir)
    with pytest.raises(QualityGateError):
        Mesh.build(mesh_dir, ws)
    edit(mesh_dir / "shop/data/orders.csv", ",lost,", ",open,")
    with Mesh.build(mesh_dir, ws) as mesh:
        assert mesh.sql("admin", COUNT).fetchall() == [(6,)]
        assert mesh.last_build is not None and mesh.last_build.quality is not None
        assert mesh.last_build.quality.passed


def test_a_first_build_that_fails_says_nothing_was_published(quality_mesh, tmp_path, capsys):
    _break_orders(quality_mesh)
    ws = tmp_path / "ws"
    code, _, err = run(capsys, "build", "--mesh", str(quality_mesh), "--workspace", str(ws))
    assert_clean_error(
        code,
        err,
        "nothing was published: this is the first build, so no table is visible yet",
        "then run 'meshsim build' again",
    )
    code, _, err = run(capsys, "tables", "--workspace", str(ws))
    assert code != 0  # no build finished: nothing to list


def test_a_warn_rule_that_fails_is_recorded_and_the_build_goes_on(built_quality: Path):
    with Mesh.open(built_quality / "ws") as mesh:
        latest = {r["rule"]: r for r in mesh.show("shop.sales").quality}
    assert latest["regex_code"]["status"] == "failed"
    assert latest["regex_code"]["severity"] == "warn"
    assert latest["regex_code"]["failing_rows"] == 1
    assert latest["unique_order_id"]["status"] == "passed"


def _bad_orders() -> pa.Table:
    return pa.table(
        {
            "order_id": pa.array([20, 21], pa.int64()),
            "customer_id": pa.array([1, 1], pa.int64()),
            "status": ["open", "lost"],
            "amount": pa.array([1, 2], pa.decimal128(10, 2)),
            "discount": [0.0, 0.5],
            "code": ["AAA", "BBB"],
            "ordered_at": pa.array([0, 0], pa.timestamp("us")),
        }
    )


def test_a_write_whose_error_rule_fails_publishes_nothing(quality_ws):
    _, ws = quality_ws
    with Mesh.open(ws) as mesh:
        before = mesh.published_version("shop.orders")
        with pytest.raises(QualityGateError) as refused:
            mesh.write("shop.orders", _bad_orders())
        message = refused.value.message
        assert "quality gate: rule 'accepted_values_status'" in message
        assert "(and 1 more blocking rule(s))" in message  # the discount of 0.5 too
        assert f"shop.orders keeps the rows of its version {before}" in message
        # the refused version is restored: consumers read the same rows, never the write's
        assert mesh.sql("admin", COUNT).fetchall() == [(5,)]
        history = {v.version: v.published for v in mesh.history("shop.orders")}
        assert history[before + 1] == "never"
        audit = mesh.audit(as_consumer="admin", limit=5)
        assert any(
            r["kind"] == "write" and r["decision"] == "refused" and "quality gate" in r["reason"]
            for r in audit
        )
        # a write that keeps the promises is published
        good = _bad_orders().slice(0, 1)
        mesh.write("shop.orders", good)
        assert mesh.sql("admin", COUNT).fetchall() == [(6,)]


def test_several_tables_written_together_are_refused_together(quality_ws):
    _, ws = quality_ws
    items = pa.table(
        {
            "order_id": pa.array([99], pa.int64()),
            "line": pa.array([1], pa.int32()),
            "qty": pa.array([1], pa.int32()),
        }
    )
    with Mesh.open(ws) as mesh:
        counts = "SELECT (SELECT count(*) FROM shop.orders), (SELECT count(*) FROM shop.items)"
        refused = pytest.raises(QualityGateError, match="items_have_orders")
        with refused, mesh.writes() as batch:
            batch.write("shop.orders", _bad_orders().slice(0, 1))
            batch.write("shop.items", items)  # order 99 does not exist
        assert mesh.sql("admin", counts).fetchall() == [(5, 5)]


def test_publish_runs_the_rules_on_the_published_versions(quality_ws, capsys):
    mesh_dir, ws = quality_ws
    add_rules(mesh_dir / ORDERS, "orders", "      - {row_count: {max: 3}, name: at_most_three}\n")
    code, _, err = run(capsys, "publish", "shop.sales", "--workspace", str(ws))
    assert_clean_error(
        code, err, "rule 'at_most_three'", "nothing was published (the catalog keeps version 1"
    )
    with Mesh.open(ws) as mesh:
        assert mesh.show("shop.sales").versions[0]["version"] == 1
    edit(mesh_dir / ORDERS, "{row_count: {max: 3}, name: at_most_three}", "{row_count: {max: 9}}")
    code, out, err = run(capsys, "publish", "shop.sales", "--workspace", str(ws))
    assert code == 0, err
    assert "published shop.sales version 2" in out


def test_show_lists_the_latest_result_of_each_rule(quality_ws, capsys):
    _, ws = quality_ws
    code, out, _ = run(capsys, "show", "shop.sales", "--workspace", str(ws))
    assert code == 0
    assert "quality rules (latest result)" in out
    assert "regex_code" in out and "items_have_orders" in out


def test_a_rule_changed_without_new_data_is_checked_by_the_build(quality_ws, capsys):
    # found writing the workshop: a rebuild after tightening a rule rewrote no table, so the
    # build's gate ran nothing and the catalog published the product with the failing rule
    mesh_dir, ws = quality_ws
    add_rules(mesh_dir / ORDERS, "orders", "      - {row_count: {max: 3}, name: at_most_three}\n")
    with Mesh.open(ws) as mesh:
        before = mesh.show("shop.sales").versions[0]["version"]
    code, _, err = run(capsys, "build", "--mesh", str(mesh_dir), "--workspace", str(ws))
    assert_clean_error(code, err, "rule 'at_most_three'", "nothing was built or published")
    with Mesh.open(ws) as mesh:
        assert mesh.show("shop.sales").versions[0]["version"] == before
        assert any(r["rule"] == "at_most_three" for r in mesh.show("shop.sales").quality)
