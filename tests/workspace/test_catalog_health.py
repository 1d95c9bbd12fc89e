"""A lost, damaged or unwritable catalog: refused with a clear message and a way back, never
recreated empty (silent loss) and never a sqlite3 traceback."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from meshsim.errors import CatalogError
from meshsim.mesh import Mesh
from tests.cli.clihelpers import run
from tests.conftest import EXAMPLE_MESH
from tests.workspace.conftest import run_disk_full, run_readonly

LISTINGS = (
    ("products",),
    ("search", "customer"),
    ("show", "customer.customer_profiles"),
    ("audit", "--as", "governance_admin"),
    ("subscriptions",),
    ("requests",),
)


def _timeless(text: str) -> str:
    return re.sub(r"updated \d+\w+ ago", "updated ... ago", text)


def _catalog(workspace: Path) -> Path:
    return workspace / "governance" / "catalog.db"


def _lose(workspace: Path, how: str) -> None:
    db = _catalog(workspace)
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    if how == "deleted":
        db.unlink()
    elif how == "emptied":
        db.write_bytes(b"")
    elif how == "new-database":  # a valid SQLite file without meshsim's schema
        db.unlink()
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE unrelated (x)")
        con.close()


def _damage(workspace: Path, how: str) -> None:
    db = _catalog(workspace)
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    data = db.read_bytes()
    if how == "garbage-header":
        db.write_bytes(b"this is not sqlite!!" * 5 + data[100:])
    elif how == "truncated":
        db.write_bytes(data[: len(data) // 3])
    elif how == "directory":
        db.unlink()
        db.mkdir()
    elif how == "garbled-pages":
        db.write_bytes(data[:4096] + bytes(b ^ 0x5A for b in data[4096:]))


@pytest.mark.parametrize("how", ["deleted", "emptied", "new-database"])
def test_lost_catalog_is_refused_not_recreated(capsys, workspace: Path, how: str):
    _lose(workspace, how)
    before = _catalog(workspace).stat().st_size if _catalog(workspace).exists() else None
    for args in [*LISTINGS, ("sql", "--as", "governance_admin", "SELECT 1"), ("tables",)]:
        code, out, err = run(capsys, *args, "--workspace", str(workspace))
        assert code == 1, (args, out)
        assert err.startswith(f"Error: the catalog '{_catalog(workspace)}' is "), (args, err)
        assert "products, subscriptions and audit history are not there" in err
        assert "meshsim doctor --repair" in err
        assert "Traceback" not in err
    after = _catalog(workspace).stat().st_size if _catalog(workspace).exists() else None
    assert after == before, "the lost catalog was replaced by a new one"


def test_rebuild_does_not_recreate_a_lost_catalog(workspace: Path):
    _lose(workspace, "deleted")
    state = (workspace / "workspace.json").read_bytes()
    with pytest.raises(CatalogError, match="doctor --repair"):
        Mesh.build(EXAMPLE_MESH, workspace, scale=0.02)
    assert not _catalog(workspace).exists()
    assert (workspace / "workspace.json").read_bytes() == state, "refused before writing"
    assert not (workspace / "staging" / "tpch-sf0.02").exists()


@pytest.mark.parametrize("how", ["garbage-header", "truncated", "directory", "garbled-pages"])
def test_damaged_catalog_is_a_clear_error(capsys, workspace: Path, how: str):
    _damage(workspace, how)
    commands = [
        *LISTINGS,
        ("sql", "--as", "governance_admin", "SELECT 1"),
        ("request", "--as", "external_partner", "customer.customer_profiles", "--reason", "x"),
    ]
    for args in commands:
        code, out, err = run(capsys, *args, "--workspace", str(workspace))
        assert code == 1, (args, out, err)
        assert err.startswith("Error: ") and f"the catalog '{_catalog(workspace)}'" in err, (
            args,
            err,
        )
        assert "meshsim doctor" in err, err
        assert "Traceback" not in err and "sqlite3." not in err


@pytest.mark.parametrize("held_open", [False, True], ids=["closed-cleanly", "held-open"])
def test_listings_work_on_a_read_only_workspace(capsys, workspace: Path, held_open: bool):
    expected = {}
    for args in [*LISTINGS[:4], ("tables",), ("domains",)]:
        code, out, err = run(capsys, *args, "--workspace", str(workspace), "--format", "json")
        assert code == 0, err
        expected[args] = out
    Mesh.open(workspace).catalog.store.close()
    holder = None
    if held_open:  # another process has it open: its write-ahead log and index are there
        holder = sqlite3.connect(_catalog(workspace))
        holder.execute("PRAGMA wal_autocheckpoint = 0")
        holder.execute("SELECT count(*) FROM products").fetchone()
    try:
        for args, out in expected.items():
            result = run_readonly(
                workspace, *args, "--workspace", str(workspace), "--format", "json"
            )
            assert result.returncode == 0, (args, result.stderr)
            assert _timeless(result.stdout) == _timeless(out), args
    finally:
        if holder is not None:
            holder.close()


def test_query_on_a_read_only_workspace_is_refused_because_it_cannot_be_audited(workspace: Path):
    result = run_readonly(
        workspace, "sql", "--workspace", str(workspace), "--as", "governance_admin", "SELECT 1"
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: "), result.stderr
    assert "read-only" in result.stderr and "audit" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_change_on_a_read_only_workspace_is_a_clear_error(workspace: Path):
    result = run_readonly(
        workspace,
        "request",
        "--workspace",
        str(workspace),
        "--as",
        "external_partner",
        "customer.customer_profiles",
        "--reason",
        "x",
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error: the catalog '{_catalog(workspace)}' cannot be written")
    assert "read-only" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("sql", "--as", "governance_admin", "SELECT 1"),
        ("request", "--as", "external_partner", "customer.customer_profiles", "--reason", "x"),
    ],
    ids=["query", "request"],
)
def test_full_disk_is_a_clear_error(workspace: Path, args: tuple[str, ...]):
    result = run_disk_full(workspace, *args, "--workspace", str(workspace))
    assert result.returncode == 1, result.stdout
    assert result.stderr.startswith("Error: "), result.stderr
    assert "disk is full" in result.stderr or "No space left on device" in result.stderr
    assert "Traceback" not in result.stderr
