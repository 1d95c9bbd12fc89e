"""A command that succeeds leaves stderr empty, and closes what it opened (issue 9: a 40-line
'nanobind: leaked instances' block after some successful queries)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.clihelpers import MESHSIM, run

# --- stderr after success ----------------------------------------------------------------------


def test_one_shot_sql_leaves_stderr_empty(workspace: Path):
    for query in ("SELECT 1", "SELECT count(*) FROM customer.customer"):
        proc = subprocess.run(
            [*MESHSIM, "sql", "--as", "eu_marketing_analyst", "--format", "csv", query]
            + ["--workspace", str(workspace)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""


def test_python_process_exits_without_leaked_engine_objects(workspace: Path):
    # a query's timeout timer thread that outlived the query held its DuckDB cursor at exit,
    # and DuckDB's bindings printed a 40-line 'nanobind: leaked instances' block
    script = (
        "import meshsim\n"
        f"session = meshsim.open({str(workspace)!r}).session('governance_admin')\n"
        "for _ in range(30):\n"
        "    session.sql('SELECT 1')\n"
    )
    for _ in range(3):
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        assert "nanobind" not in proc.stderr
        assert proc.stderr == ""


def test_no_timer_thread_outlives_its_query():
    import threading

    from meshsim import engine

    con = engine.connect([])
    try:
        for _ in range(50):
            engine.run_arrow(con, "SELECT 1", timeout_s=30)
            assert not [t for t in threading.enumerate() if isinstance(t, threading.Timer)]
    finally:
        con.close()


def test_cli_closes_the_mesh_it_opened(capsys, monkeypatch, built_workspace: Path):
    from meshsim.mesh import Mesh

    closed: list[Mesh] = []
    original = Mesh.close

    def close(self):
        closed.append(self)
        original(self)

    monkeypatch.setattr(Mesh, "close", close)
    code, _, err = run(
        capsys,
        "--debug",
        "sql",
        "--as",
        "governance_admin",
        "SELECT 1",
        "--workspace",
        str(built_workspace),
    )
    assert code == 0, err
    assert closed, "the mesh the command opened was not closed"


def _open_files(under: Path) -> list[str]:
    fds = Path("/proc/self/fd")
    targets = []
    for fd in fds.iterdir():
        try:
            targets.append(os.readlink(fd))
        except OSError:
            continue
    return [t for t in targets if t.startswith(str(under))]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_closing_the_mesh_closes_its_catalog_connection(workspace: Path):
    # an open SQLite connection in a process that also copies or reads catalog.db loses its
    # POSIX locks when that other file handle closes; a closed mesh must hold none
    from meshsim.mesh import Mesh

    mesh = Mesh.open(workspace)
    mesh.session("governance_admin").sql("SELECT 1")
    assert _open_files(workspace / "governance")
    mesh.close()
    assert _open_files(workspace / "governance") == []


def test_last_build_is_declared_on_every_mesh(workspace: Path):
    # mypy found it: Mesh.build set an attribute Mesh never declared, so an opened mesh had none
    from meshsim.mesh import Mesh

    with Mesh.open(workspace) as mesh:
        assert mesh.last_build is None
