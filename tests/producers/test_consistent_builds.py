"""A killed build never leaves consumers on a half-built mesh (issue 10, "Consistent builds").

The build runs in a child process that dies (``os._exit``, no handler runs) right after the
Delta commit of its Nth table: its new versions are on disk, the pins in ``workspace.json``
are not moved. Every query must still read the previous build, and the next build finishes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from meshsim.cli import main
from meshsim.mesh import Mesh
from meshsim.storage import delta
from tests.conftest import EXAMPLE_MESH, edit

#: the example's tables are written in spec order: customer, nation, region, then sales.orders
KILL_AFTER_WRITES = 4

_DYING_BUILD = """
import os, sys
import meshsim.build as build
from meshsim.mesh import Mesh

real, writes = build._write_table, []

def write_then_die(*args, **kwargs):
    result = real(*args, **kwargs)
    writes.append(result)
    if len(writes) == int(sys.argv[3]):
        os._exit(9)  # killed: no exception handler, no finally, no state written after this
    return result

build._write_table = write_then_die
Mesh.build(sys.argv[1], sys.argv[2], scale=float(sys.argv[4]))
"""

COUNTS = "SELECT (SELECT count(*) FROM customer.customer), (SELECT count(*) FROM sales.orders)"


def _killed_build(workspace: Path, scale: float) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _DYING_BUILD, str(EXAMPLE_MESH), str(workspace)]
        + [str(KILL_AFTER_WRITES), str(scale)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 9, result.stderr


def test_a_killed_build_leaves_the_previous_build_visible(capsys, workspace: Path):
    before = Mesh.open(workspace).sql("governance_admin", COUNTS).fetchall()
    assert before == [(1500, 15000)]  # scale 0.01
    _killed_build(workspace, 0.02)
    # the killed build did commit scale-0.02 versions of the first tables...
    customer = workspace / "accounts" / "customer" / "customer"
    orders = workspace / "accounts" / "sales" / "orders"
    assert delta.latest_version(customer) == 1 and delta.latest_version(orders) == 1
    # ...but no consumer sees them: every table is read at the previous build's version
    mesh = Mesh.open(workspace)
    assert mesh.sql("governance_admin", COUNTS).fetchall() == before
    assert mesh.sql("eu_marketing_analyst", "SELECT count(*) FROM sales.orders").num_rows == 1
    tables = {t.ref: t for t in mesh.tables()}
    assert tables["customer.customer"].version == 0 and tables["customer.customer"].rows == 1500
    assert tables["sales.lineitem"].version == 0
    # nor by time travel: an unpublished version is not a version consumers may name
    travel = "SELECT count(*) FROM customer.customer AT (VERSION => 1)"
    code = main(["sql", "--as", "governance_admin", travel, "--workspace", str(workspace)])
    assert (
        code == 1
        and "version 1 of customer.customer is not published yet" in capsys.readouterr().err
    )
    # the next build finishes the job, and then everything moves together
    resumed = Mesh.build(EXAMPLE_MESH, workspace, scale=0.02)
    actions = {t.ref: t.action for t in resumed.last_build.tables}
    assert actions["customer.customer"] == "unchanged"  # written by the killed build, reused
    assert actions["sales.lineitem"] == "written"
    assert resumed.sql("governance_admin", COUNTS).fetchall() == [(3000, 30000)]
    assert {t.ref: t.version for t in resumed.tables()}["customer.customer"] == 1
    resumed.close()


def test_a_killed_build_is_not_damage_to_the_doctor(capsys, workspace: Path):
    _killed_build(workspace, 0.02)
    code = main(["doctor", "--workspace", str(workspace), "--format", "json"])
    out, _ = capsys.readouterr()
    assert code == 0, out
    checks = {c["check"]: c for c in json.loads(out)}
    customer = checks["table customer.customer"]
    assert customer["status"] == "ok"
    assert "version 0" in customer["detail"] and "not published" in customer["detail"]


def test_a_write_during_a_build_is_kept_on_the_tables_the_build_leaves_alone(
    workspace: Path, mesh_copy: Path, monkeypatch
):
    import pyarrow as pa

    import meshsim.build as build

    edit(
        mesh_copy / "sales" / "products" / "order_history.yaml",
        "description: One row per order line.",
        "description: One row per order line (edited).",
    )
    mesh = Mesh.open(workspace, mesh_dir=mesh_copy)
    real = build._write_table

    written = []

    def write_meanwhile(*args, **kwargs):  # a producer writes while the build runs
        if not written:  # once: the build writes sales.customer_revenue, derived, after it
            row = pa.table({"r_regionkey": [5], "r_name": ["ANTARCTICA"], "r_comment": ["cold"]})
            written.append(mesh.write("customer.region", row))
        return real(*args, **kwargs)

    monkeypatch.setattr(build, "_write_table", write_meanwhile)
    rebuilt = Mesh.build(mesh_copy, workspace, scale=0.01)
    actions = {t.ref: t.action for t in rebuilt.last_build.tables}
    assert actions["sales.lineitem"] == "written" and actions["customer.region"] == "unchanged"
    count = "SELECT count(*) FROM customer.region"
    assert rebuilt.sql("governance_admin", count).fetchall() == [(6,)]
    assert rebuilt.published_version("customer.region") == 1
    rebuilt.close()


def test_a_write_after_a_killed_build_survives_the_next_build_at_the_published_scale(
    workspace: Path,
):
    _killed_build(workspace, 0.02)  # customer.customer is pending at scale 0.02
    mesh = Mesh.open(workspace)
    mesh.delete("customer.customer", "c_custkey <= 100")
    counts = "SELECT count(*) FROM customer.customer"
    assert mesh.sql("governance_admin", counts).fetchall() == [(1400,)]  # 0.01, minus 100
    mesh.close()
    rebuilt = Mesh.build(EXAMPLE_MESH, workspace, scale=0.01)  # the published scale
    actions = {t.ref: t.action for t in rebuilt.last_build.tables}
    assert actions["customer.customer"] == "unchanged"  # the producer's delete is kept
    assert rebuilt.sql("governance_admin", counts).fetchall() == [(1400,)]
    rebuilt.close()


_DYING_BATCH = """
import os, sys
from meshsim.mesh import Mesh

mesh = Mesh.open(sys.argv[1])
with mesh.writes(by="customer-data") as batch:
    batch.delete("customer.region", "r_regionkey = 4")
    os._exit(9)  # killed between the two writes of one batch
"""


def test_a_killed_multi_table_write_publishes_nothing(workspace: Path):
    result = subprocess.run(
        [sys.executable, "-c", _DYING_BATCH, str(workspace)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 9, result.stderr
    assert delta.latest_version(workspace / "accounts" / "customer" / "region") == 1
    mesh = Mesh.open(workspace)
    both = "SELECT (SELECT count(*) FROM customer.region), (SELECT count(*) FROM customer.nation)"
    assert mesh.sql("governance_admin", both).fetchall() == [(5, 25)]
    with mesh.writes() as batch:  # the lock died with the process; the next batch runs
        batch.delete("customer.region", "r_regionkey = 4")
        batch.delete("customer.nation", "n_regionkey = 4")
    assert mesh.sql("governance_admin", both).fetchall() == [(4, 20)]
