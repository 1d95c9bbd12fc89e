"""Committed work is never lost silently: a catalog that fell behind its backup or its audit
journal (a lost or damaged write-ahead log) is reported by ``doctor``, refused by every command
until ``doctor --repair`` restores it, and never allowed to overwrite the newer backup."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from meshsim.catalog.backup import backup_path, journal_path
from meshsim.cli import main
from meshsim.errors import CatalogError
from meshsim.mesh import Mesh

QUERY = "SELECT count(*) FROM customer.customer"


def doctor(capsys, workspace: Path, *extra: str) -> tuple[int, dict[str, dict]]:
    code = main(["doctor", "--workspace", str(workspace), "--format", "json", *extra])
    out, err = capsys.readouterr()
    assert not err.startswith("Error"), err
    return code, {row["check"]: row for row in json.loads(out)}


def _killed_after_work(workspace: Path) -> None:
    """Queries, a request and its approval, then SIGKILL: the committed work lives only in
    the write-ahead log (a clean close would checkpoint it into catalog.db)."""
    script = textwrap.dedent(
        f"""
        import os, signal
        from meshsim.mesh import Mesh
        mesh = Mesh.open({str(workspace)!r})
        for consumer in ("governance_admin", "eu_marketing_analyst"):
            mesh.sql(consumer, {QUERY!r})
        request = mesh.catalog.request(
            "external_partner", "customer.customer_profiles", "campaign analysis"
        )
        mesh.catalog.approve(request.id, by="customer-data")
        mesh.sql("external_partner", {QUERY!r})
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == -9, result.stderr


def _journal_ids(workspace: Path) -> set[int]:
    text = journal_path(workspace / "governance").read_text()
    return {json.loads(line)["id"] for line in text.splitlines()}


def _wal(workspace: Path) -> Path:
    return workspace / "governance" / "catalog.db-wal"


def _lose_wal(workspace: Path, how: str) -> None:
    wal = _wal(workspace)
    assert wal.stat().st_size > 0
    if how == "deleted":
        wal.unlink()
    elif how == "truncated":
        with wal.open("r+b") as handle:
            handle.truncate(32)
    elif how == "garbled":
        data = wal.read_bytes()
        wal.write_bytes(data[:32] + bytes(b ^ 0x5A for b in data[32:]))
    wal.with_name("catalog.db-shm").unlink(missing_ok=True)


def _history(workspace: Path) -> tuple[list, list]:
    with Mesh.open(workspace) as mesh:
        requests = [(r.id, r.state) for r in mesh.catalog.requests()]
        audit = sorted(a["id"] for a in mesh.catalog.audit())
    return requests, audit


@pytest.mark.parametrize("how", ["deleted", "truncated", "garbled"])
def test_lost_wal_is_reported_refused_and_repaired(capsys, workspace: Path, how: str):
    _killed_after_work(workspace)
    backup_before = backup_path(workspace / "governance").read_bytes()
    _lose_wal(workspace, how)

    code, checks = doctor(capsys, workspace)
    assert code == 1
    assert checks["catalog"]["status"] == "error", checks["catalog"]
    assert "behind" in checks["catalog"]["detail"] or "older" in checks["catalog"]["detail"]
    assert "--repair" in checks["catalog"]["next"]

    # a change must not reuse the lost ids nor overwrite the newer backup
    code = main(
        ["request", "customer.customer_profiles", "--as", "external_partner", "--reason", "x",
         "--workspace", str(workspace)]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 1
    assert "older than its backup" in err and "meshsim doctor --repair" in err, err
    assert backup_path(workspace / "governance").read_bytes() == backup_before
    with pytest.raises(CatalogError, match="older than its backup"):
        Mesh.open(workspace).catalog.requests()

    code, checks = doctor(capsys, workspace, "--repair")
    assert code == 0, checks
    requests, audit = _history(workspace)
    assert [state for _, state in requests] == ["approved"]
    assert _journal_ids(workspace) <= set(audit)


def test_queries_lost_with_the_wal_are_reported_and_their_ids_not_reused(capsys, workspace):
    """Only query records in the WAL (journaled, not backed up): the revision is unchanged,
    so the comparison with the journal must catch it, and new queries must not take the ids
    of the lost records (the journal's later line for an id would replace the lost one)."""
    con = sqlite3.connect(workspace / "governance" / "catalog.db")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the build's work is in catalog.db
    con.close()
    script = (
        f"import os, signal\nfrom meshsim.mesh import Mesh\nmesh = Mesh.open({str(workspace)!r})\n"
        f"mesh.sql('governance_admin', {QUERY!r})\nmesh.sql('governance_admin', {QUERY!r})\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert subprocess.run([sys.executable, "-c", script], check=False).returncode == -9
    _lose_wal(workspace, "deleted")
    lost = _journal_ids(workspace)
    with Mesh.open(workspace) as mesh:
        present = {a["id"] for a in mesh.catalog.audit()}
        assert not lost <= present
        mesh.sql("governance_admin", QUERY)
        newest = max(a["id"] for a in mesh.catalog.audit())
    assert newest > max(lost)
    code, checks = doctor(capsys, workspace)
    assert code == 1
    assert checks["catalog history"]["status"] == "error"
    assert "journal" in checks["catalog history"]["detail"]
    code, checks = doctor(capsys, workspace, "--repair")
    assert code == 0, checks
    assert lost <= set(_history(workspace)[1])


def test_backup_newer_than_catalog_is_never_overwritten(workspace: Path):
    from meshsim.catalog.backup import write_backup

    governance = workspace / "governance"
    with Mesh.open(workspace) as mesh:
        request = mesh.catalog.request("external_partner", "customer.customer_profiles", "x")
    newer = backup_path(governance).read_bytes()
    old = sqlite3.connect(governance / "catalog.db")
    old.execute("UPDATE meta SET value = value - 5 WHERE key = 'revision'")
    old.commit()
    with pytest.raises(CatalogError, match="newer than the catalog") as info:
        write_backup(old, governance / "catalog.db")
    old.close()
    assert "meshsim doctor --repair" in str(info.value)
    assert backup_path(governance).read_bytes() == newer
    assert request.id == 1
    assert os.path.exists(governance / "catalog.db")


def test_missing_journal_is_reported_while_the_catalog_holds_unbacked_queries(capsys, workspace):
    with Mesh.open(workspace) as mesh:
        mesh.sql("governance_admin", QUERY)  # journaled, not in the backup
    journal_path(workspace / "governance").unlink()
    code, checks = doctor(capsys, workspace)
    assert code == 1
    assert checks["audit journal"]["status"] == "error"
    assert "only the catalog" in checks["audit journal"]["detail"]
    code, checks = doctor(capsys, workspace, "--repair")
    assert code == 0, checks
    assert checks["audit journal"]["status"] == "ok"


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/null"])
def test_redirected_journal_refuses_queries_and_is_repaired(capsys, workspace, target):
    journal = journal_path(workspace / "governance")
    journal.unlink(missing_ok=True)
    journal.symlink_to(target)
    code = main(["sql", "--as", "governance_admin", QUERY, "--workspace", str(workspace)])
    out, err = capsys.readouterr()
    assert code == 1
    assert f"the audit journal '{journal}' is not a regular file" in err, err
    code, checks = doctor(capsys, workspace)
    assert code == 1
    assert checks["audit journal"]["status"] == "error"
    code, checks = doctor(capsys, workspace, "--repair")
    assert code == 0, checks
    assert not journal.is_symlink()
    assert main(["sql", "--as", "governance_admin", QUERY, "--workspace", str(workspace)]) == 0
    capsys.readouterr()
    assert journal.is_file() and journal.stat().st_size > 0


def _first_build_killed(workspace: Path) -> None:
    """What a first build killed after writing tables leaves: workspace.json without
    ``catalog_created_at``, no catalog and no backup."""
    state = json.loads((workspace / "workspace.json").read_text())
    state["catalog_created_at"] = None
    (workspace / "workspace.json").write_text(json.dumps(state))
    names = (
        "catalog.db",
        "catalog.db-wal",
        "catalog.db-shm",
        "catalog-backup.db",
        "audit-journal.jsonl",
    )
    for name in names:
        (workspace / "governance" / name).unlink(missing_ok=True)


def test_unfinished_first_build_says_build_again_and_creates_no_catalog(capsys, workspace):
    _first_build_killed(workspace)
    code, checks = doctor(capsys, workspace)
    assert code == 1
    [check] = [c for c in checks.values() if "did not finish" in c["detail"]]
    assert "meshsim build" in check["next"] and "backup" not in check["next"]
    code, checks = doctor(capsys, workspace, "--repair")
    assert code == 1 and not (workspace / "governance" / "catalog.db").exists()
    code = main(["sql", "--as", "governance_admin", QUERY, "--workspace", str(workspace)])
    _, err = capsys.readouterr()
    assert code == 1
    assert "did not finish" in err and "meshsim build" in err, err
    assert not (workspace / "governance" / "catalog.db").exists()
    code = main(["build", "--workspace", str(workspace), "--scale", "0.01"])
    capsys.readouterr()
    assert code == 0
    assert doctor(capsys, workspace)[0] == 0


def test_concurrent_repairs_of_a_missing_catalog(workspace: Path):
    from tests.workspace.conftest import MESHSIM

    for name in ("catalog.db", "catalog.db-wal", "catalog.db-shm"):
        (workspace / "governance" / name).unlink(missing_ok=True)
    command = [MESHSIM, "doctor", "--repair", "--workspace", str(workspace), "--format", "json"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(4)]
    for run in runs:
        out, _ = run.communicate(timeout=120)
        assert run.returncode == 0, out
        assert "could not be restored" not in out
    assert not list((workspace / "governance").glob("catalog.db.damaged-*"))
