"""``meshsim doctor`` finds what is wrong with a workspace and ``--repair`` fixes it without
losing anything: products, requests, decisions and every audited query come back."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from meshsim.catalog.backup import backup_path
from meshsim.mesh import Mesh
from tests.cli.clihelpers import run
from tests.workspace.conftest import run_readonly
from tests.workspace.test_data_files import damage, data_file

QUERY = "SELECT count(*) FROM customer.customer"


def doctor(capsys, workspace: Path, *extra: str) -> tuple[int, dict[str, dict]]:
    code, out, err = run(
        capsys, "doctor", "--workspace", str(workspace), "--format", "json", *extra
    )
    assert err == "" or not err.startswith("Error"), err
    return code, {row["check"]: row for row in json.loads(out)}


def history(workspace: Path) -> dict[str, object]:
    """What a lost catalog would lose: products, requests and their states, every audit row."""
    with Mesh.open(workspace) as mesh:
        return {
            "products": [p["product"] for p in mesh.catalog.products()],
            "requests": [(r.id, r.state, r.consumer) for r in mesh.catalog.requests()],
            "audit": [
                (a["id"], a["kind"], a["sql"], a["decision"])
                for a in mesh.audit(as_consumer="governance_admin")
            ],
        }


@pytest.fixture
def used(workspace: Path) -> Path:
    """A workspace with a decided request (backed up) and queries after it (journaled)."""
    with Mesh.open(workspace) as mesh:
        request = mesh.catalog.request(
            "external_partner", "customer.customer_profiles", "campaign analysis"
        )
        mesh.catalog.approve(request.id, by="customer-data")
        for consumer in ("external_partner", "governance_admin", "eu_marketing_analyst"):
            mesh.sql(consumer, QUERY)
    return workspace


def test_a_healthy_workspace(capsys, used: Path):
    code, checks = doctor(capsys, used)
    assert code == 0
    assert {c["status"] for c in checks.values()} == {"ok"}, checks
    for name in ("workspace.json", "mesh", "mesh.key", "catalog", "catalog backup"):
        assert name in checks
    assert "table sales.lineitem" in checks and "audit journal" in checks
    journaled = int(checks["audit journal"]["detail"].split(" query record(s)")[0])
    assert journaled >= 3  # the fixture's queries (the shared workspace may hold more)


@pytest.mark.parametrize("how", ["deleted", "emptied", "garbage-header", "truncated"])
def test_repair_restores_a_lost_catalog_with_everything_in_it(capsys, used: Path, how: str):
    from tests.workspace.test_catalog_health import _damage, _lose

    before = history(used)
    (_lose if how in ("deleted", "emptied") else _damage)(used, how)
    code, checks = doctor(capsys, used)
    assert code == 1
    assert checks["catalog"]["status"] == "error"
    assert "--repair restores it from its backup" in checks["catalog"]["next"]
    code, checks = doctor(capsys, used, "--repair")
    assert code == 0, checks
    assert checks["catalog"]["next"].startswith("restored from its backup, ")
    assert "query record(s) added from the audit journal" in checks["catalog"]["next"]
    assert history(used) == before
    if how not in ("deleted",):
        kept = list((used / "governance").glob("catalog.db.damaged-*"))
        assert kept, "the damaged catalog is kept, not deleted"


def test_repair_without_a_backup_says_what_is_lost(capsys, used: Path):
    before = history(used)
    (used / "governance" / "catalog.db").unlink()
    backup_path(used / "governance").unlink()
    code, checks = doctor(capsys, used, "--repair")
    assert code == 0, checks
    repaired = checks["catalog"]["next"]
    assert repaired.startswith("no backup existed: started an empty catalog and the products")
    assert "requests, subscriptions and decisions could not be recovered" in repaired
    after = history(used)
    assert after["products"] == before["products"] and after["requests"] == []
    queries = [a for a in before["audit"] if a[1] == "query"]
    assert [a for a in after["audit"] if a[1] == "query"] == queries


def test_bad_mesh_key_is_found_and_replaced(capsys, workspace: Path):
    (workspace / "governance" / "mesh.key").write_text("zz")
    code, checks = doctor(capsys, workspace)
    assert code == 1 and checks["mesh.key"]["status"] == "error"
    code, checks = doctor(capsys, workspace, "--repair")
    assert code == 0
    assert "hashed values differ" in checks["mesh.key"]["next"]
    with Mesh.open(workspace) as mesh:
        assert mesh.sql("eu_marketing_analyst", "SELECT c_name FROM customer.customer").fetchall()


def test_bad_state_is_moved_aside_and_a_build_writes_it_again(capsys, workspace: Path):
    from tests.conftest import EXAMPLE_MESH

    (workspace / "workspace.json").write_text("[]")
    code, checks = doctor(capsys, workspace)
    assert code == 1 and "must be an object" in checks["workspace.json"]["detail"]
    code, checks = doctor(capsys, workspace, "--repair")
    assert code == 1  # still not built: the build is the user's to run, with its mesh and scale
    assert checks["workspace.json"]["next"].startswith("moved aside to ")
    Mesh.build(EXAMPLE_MESH, workspace, scale=0.01).close()
    code, checks = doctor(capsys, workspace)
    assert code == 0, checks


@pytest.mark.parametrize("how", ["deleted", "truncated", "garbled"])
def test_damaged_data_files_are_found_and_rewritten(capsys, workspace: Path, how: str):
    path = data_file(workspace, "supply/part")
    damage(path, how)
    code, checks = doctor(capsys, workspace)
    assert code == 1
    check = checks["table supply.part"]
    assert check["status"] == "error" and f"'{path}'" in check["detail"]
    assert "--repair rewrites it" in check["next"]
    code, checks = doctor(capsys, workspace, "--repair")
    assert code == 0, checks
    assert checks["table supply.part"]["next"] == "repaired by 'meshsim build' at scale 0.01"
    with Mesh.open(workspace) as mesh:
        assert mesh.sql("governance_admin", "SELECT count(*) FROM supply.part").fetchall() == [
            (2000,)
        ]


def test_damaged_audit_export_is_dropped_and_exported_again(capsys, used: Path):
    count = "SELECT count(*) FROM meshsim.audit"
    with Mesh.open(used) as mesh:
        mesh.sql("governance_admin", count)
    export = used / "governance" / "system" / "audit"
    damage(sorted(export.glob("*.parquet"))[-1], "truncated")
    code, checks = doctor(capsys, used, "--repair")
    assert code == 0 and checks["audit export"]["next"].startswith("dropped")
    with Mesh.open(used) as mesh:
        assert mesh.sql("governance_admin", count).fetchall()[0][0] > 0


def test_doctor_works_on_a_read_only_workspace(capsys, used: Path):
    Mesh.open(used).catalog.store.close()
    result = run_readonly(used, "doctor", "--workspace", str(used), "--format", "json")
    assert result.returncode == 0, result.stderr
    assert {row["status"] for row in json.loads(result.stdout)} == {"ok"}


def test_integrity_failure_is_found(capsys, workspace: Path):
    db = workspace / "governance" / "catalog.db"
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode = DELETE")
    page_size = con.execute("PRAGMA page_size").fetchone()[0]
    con.close()
    data = bytearray(db.read_bytes())
    data[3 * page_size : 3 * page_size + 64] = b"\x07" * 64  # a b-tree page's header
    db.write_bytes(bytes(data))
    code, checks = doctor(capsys, workspace)
    assert code == 1 and checks["catalog"]["status"] == "error", checks["catalog"]
