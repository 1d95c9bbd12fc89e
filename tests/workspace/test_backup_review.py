"""An outside review of the catalog backup and its repair: a backup lagging one change (killed
between the catalog's commit and the backup's), one integrity check for the repair decision,
a damaged backup never relied on, a bounded wait for the backup lock, uncommitted query
records told from lost ones, a bounded change log and stale temporary copies."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from meshsim.catalog import backup as backup_module
from meshsim.catalog.backup import backup_path, stored_revision
from meshsim.cli import main
from meshsim.mesh import Mesh
from tests.workspace.test_durability import doctor

PII_PRODUCT = "customer.customer_profiles"
QUERY = "SELECT count(*) FROM customer.customer"


def _catalog(workspace: Path) -> Path:
    return workspace / "governance" / "catalog.db"


def _revision(path: Path) -> int:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(con.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()[0])
    finally:
        con.close()


def _checkpoint(workspace: Path) -> None:
    con = sqlite3.connect(_catalog(workspace))
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def _approve_without_backup(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """A request backed up, then its approval committed but killed before its backup (the
    backup is not written: as a SIGKILL between the two leaves it)."""
    with Mesh.open(workspace) as mesh:
        request = mesh.catalog.request("external_partner", PII_PRODUCT, "campaign analysis")
    with monkeypatch.context() as patch:
        patch.setattr(backup_module, "write_backup", lambda *args, **kwargs: None)
        with Mesh.open(workspace) as mesh:
            mesh.catalog.approve(request.id, by="customer-data")
    _checkpoint(workspace)
    governance = workspace / "governance"
    assert stored_revision(backup_path(governance)) == _revision(_catalog(workspace)) - 1
    return request.id


def _garble(workspace: Path) -> None:
    db = _catalog(workspace)
    data = db.read_bytes()
    db.write_bytes(data[:4096] + bytes(b ^ 0x5A for b in data[4096:]))


# -- F1: a backup lagging a committed change -------------------------------------------------


def test_doctor_reports_a_lagging_backup_and_repair_brings_it_up_to_date(
    capsys, workspace: Path, monkeypatch: pytest.MonkeyPatch
):
    _approve_without_backup(workspace, monkeypatch)
    code, checks = doctor(capsys, workspace)
    assert code == 1
    check = checks["catalog backup"]
    assert check["status"] == "error", check
    assert "behind the catalog" in check["detail"] and "--repair" in check["next"]
    code, checks = doctor(capsys, workspace, "--repair")
    assert code == 0, checks
    governance = workspace / "governance"
    assert stored_revision(backup_path(governance)) == _revision(_catalog(workspace))


def test_the_next_command_brings_a_lagging_backup_up_to_date(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
):
    _approve_without_backup(workspace, monkeypatch)
    with Mesh.open(workspace) as mesh:
        mesh.sql("governance_admin", QUERY)  # a query: no backed-up change of its own
    governance = workspace / "governance"
    assert stored_revision(backup_path(governance)) == _revision(_catalog(workspace))
    con = sqlite3.connect(backup_path(governance))
    states = [r[0] for r in con.execute("SELECT state FROM requests")]
    con.close()
    assert states == ["approved"]


def test_a_restore_from_a_lagging_backup_says_which_revisions_may_be_lost(
    capsys, workspace: Path, monkeypatch: pytest.MonkeyPatch
):
    request_id = _approve_without_backup(workspace, monkeypatch)
    lost = _revision(_catalog(workspace))
    kept = stored_revision(backup_path(workspace / "governance"))
    con = sqlite3.connect(_catalog(workspace))
    lost_record = con.execute("SELECT max(id) FROM audit WHERE kind = 'decision'").fetchone()[0]
    con.close()
    _garble(workspace)
    code, checks = doctor(capsys, workspace, "--repair")
    assert code == 1, "a restore that may have lost changes is not healthy"
    report = checks["catalog"]["next"] + " " + checks["catalog history"]["detail"]
    assert f"revision {kept + 1}..{lost}" in report or f"revision {lost}" in report, report
    assert checks["catalog history"]["status"] == "error"
    # the lost revisions and ids are not reused by the next change
    assert _revision(_catalog(workspace)) > lost
    with Mesh.open(workspace) as mesh:
        assert [r.state for r in mesh.catalog.requests()] == ["pending"]
        mesh.catalog.approve(request_id, by="customer-data")
        decisions = [a["id"] for a in mesh.catalog.audit() if a["kind"] == "decision"]
    assert max(decisions) > lost_record


# -- F2: one integrity check for the repair decision ---------------------------------------


def _damage_an_index(workspace: Path) -> None:
    """A table row changed behind its index's back: quick_check passes, integrity_check
    does not."""
    _checkpoint(workspace)
    con = sqlite3.connect(_catalog(workspace), isolation_level=None)
    sql = con.execute("SELECT sql FROM sqlite_master WHERE name = 'audit_kind'").fetchone()[0]
    root = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'audit_kind'").fetchone()
    con.execute("PRAGMA writable_schema = ON")
    con.execute("DELETE FROM sqlite_master WHERE name = 'audit_kind'")
    con.close()
    con = sqlite3.connect(_catalog(workspace), isolation_level=None)
    con.execute("UPDATE audit SET kind = 'write' WHERE id = (SELECT min(id) FROM audit)")
    con.execute("PRAGMA writable_schema = ON")
    con.execute(
        "INSERT INTO sqlite_master VALUES ('index', 'audit_kind', 'audit', ?, ?)", (root[0], sql)
    )
    con.close()
    con = sqlite3.connect(_catalog(workspace))
    assert con.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    assert con.execute("PRAGMA integrity_check").fetchone()[0] != "ok"
    con.close()


def test_repair_replaces_a_catalog_only_integrity_check_finds_damaged(capsys, workspace: Path):
    _damage_an_index(workspace)
    code, checks = doctor(capsys, workspace)
    assert code == 1 and checks["catalog"]["status"] == "error"
    code, checks = doctor(capsys, workspace, "--repair")
    assert code == 0, checks
    assert checks["catalog"]["next"].startswith("restored from its backup"), checks["catalog"]
    con = sqlite3.connect(_catalog(workspace))
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


# -- F3: a damaged backup is never relied on -----------------------------------------------


def _garble_backup(workspace: Path) -> None:
    path = backup_path(workspace / "governance")
    data = path.read_bytes()
    path.write_bytes(data[:8192] + bytes(b ^ 0x5A for b in data[8192:]))


def test_a_damaged_backup_and_catalog_keep_the_catalog_and_name_the_backup(capsys, workspace: Path):
    _garble_backup(workspace)
    _checkpoint(workspace)
    _garble(workspace)
    before = _catalog(workspace).read_bytes()
    code, checks = doctor(capsys, workspace, "--repair")
    assert code == 1
    governance = workspace / "governance"
    assert _catalog(workspace).read_bytes() == before, "never moved aside for a bad backup"
    assert not list(governance.glob("*.restoring"))
    repaired = checks["catalog"]["next"]
    assert str(backup_path(governance)) in repaired and "backup" in repaired, repaired
    assert "the catalog '" + str(backup_path(governance)) not in repaired
    assert "move it away" in repaired or "moves it aside" in repaired or "mv " in repaired


def test_a_damaged_backup_is_written_again_when_the_catalog_is_healthy(capsys, workspace: Path):
    _garble_backup(workspace)
    code, checks = doctor(capsys, workspace)
    assert code == 1 and checks["catalog backup"]["status"] == "error"
    code, checks = doctor(capsys, workspace, "--repair")
    assert code == 0, checks
    assert checks["catalog backup"]["status"] == "ok"


# -- F4: a bounded wait for the backup lock ------------------------------------------------


def test_a_held_backup_lock_fails_the_backup_clearly_after_the_change_is_saved(
    capsys, workspace: Path, monkeypatch: pytest.MonkeyPatch
):
    from meshsim import locks

    monkeypatch.setattr(locks, "LOCK_TIMEOUT_S", 0.2)
    lock = workspace / "governance" / "catalog-backup.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a stopped process holding it
    try:
        code = main(
            ["request", PII_PRODUCT, "--as", "external_partner", "--reason", "x",
             "--workspace", str(workspace)]
        )  # fmt: skip
    finally:
        os.close(fd)
    out, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("Error: ") and "Traceback" not in err
    assert "was saved" in err and "catalog-backup.lock" in err, err
    assert "next:" in err
    with Mesh.open(workspace) as mesh:
        assert [r.state for r in mesh.catalog.requests()] == ["pending"]
    # nothing held any more: the next command brings the backup up to date
    with Mesh.open(workspace) as mesh:
        mesh.sql("governance_admin", QUERY)
    governance = workspace / "governance"
    assert stored_revision(backup_path(governance)) == _revision(_catalog(workspace))


def test_the_lock_wait_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from meshsim import locks

    monkeypatch.setattr(locks, "LOCK_TIMEOUT_S", 0.1)
    path = tmp_path / "x.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(locks.LockTimeout, match="x.lock"), locks.exclusive(path, bounded=True):
            pass
    finally:
        os.close(fd)


# -- F5: a query killed after its journal line, before its commit --------------------------


def test_a_query_killed_before_its_commit_is_not_reported_as_lost(capsys, workspace: Path):
    script = textwrap.dedent(
        f"""
        import os, signal
        import meshsim.catalog.backup as b
        import meshsim.catalog.catalog as c
        real = b.journal_audit
        def killed(*args, **kwargs):
            real(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)
        b.journal_audit = c.journal_audit = killed
        from meshsim.mesh import Mesh
        Mesh.open({str(workspace)!r}).sql("governance_admin", {QUERY!r})
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == -9, result.stderr
    code, checks = doctor(capsys, workspace)
    check = checks["catalog history"]
    assert "committed records were lost" not in check["detail"], check
    assert "not committed" in check["detail"] or "before its commit" in check["detail"]
    assert check["status"] == "warning"
    code, checks = doctor(capsys, workspace, "--repair")
    assert code == 0, checks


# -- F6: the change log stays bounded between changes --------------------------------------


def test_queries_do_not_grow_the_change_log(workspace: Path):
    def logged() -> int:
        con = sqlite3.connect(_catalog(workspace))
        try:
            return int(con.execute("SELECT count(*) FROM backup_changes").fetchone()[0])
        finally:
            con.close()

    before = logged()
    with Mesh.open(workspace) as mesh:
        for _ in range(30):
            mesh.sql("governance_admin", QUERY)
        assert logged() == before  # until the next change, which copies them
        request = mesh.catalog.request("external_partner", PII_PRODUCT, "campaign analysis")
        mesh.catalog.approve(request.id, by="customer-data")
    # the queries still reach the backup with the next change
    governance = workspace / "governance"
    con = sqlite3.connect(backup_path(governance))
    copied = con.execute("SELECT count(*) FROM audit WHERE kind = 'query'").fetchone()[0]
    con.close()
    con = sqlite3.connect(_catalog(workspace))
    catalog = con.execute("SELECT count(*) FROM audit WHERE kind = 'query'").fetchone()[0]
    con.close()
    assert copied == catalog >= 30


# -- F7: stale temporary copies ------------------------------------------------------------


def test_stale_temporary_copies_are_reported_and_removed(capsys, workspace: Path):
    governance = workspace / "governance"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    stale = governance / f"catalog-backup.db.{dead.stdout.strip()}.tmp"
    stale.write_bytes(b"half a copy")
    code, checks = doctor(capsys, workspace)
    assert code == 0  # a warning: nothing is lost
    check = checks["catalog backup copies"]
    assert check["status"] == "warning" and stale.name in check["detail"], check
    code, checks = doctor(capsys, workspace, "--repair")
    assert code == 0, checks
    assert not stale.exists()
