"""Files meshsim may not read (permissions) or must not read (a device or pipe in place of a
small file): one clear error naming the file, never a traceback, and ``doctor`` reports it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshsim.cli import main
from tests.workspace.conftest import MESHSIM

NOBODY = 65534
QUERY = "SELECT count(*) FROM customer.customer"


def run_as_nobody(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``meshsim ARGS`` as an unprivileged user (root reads any file whatever its mode)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("needs setpriv to run meshsim as another user")
    if os.geteuid() != 0:
        command = [MESHSIM, *args]
    else:
        command = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        command += [MESHSIM, *args]
    env = {**os.environ, "HOME": str(workspace.parent)}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture
def owned(workspace: Path) -> Iterator[Path]:
    """The workspace, moved out of pytest's temporary root (which each pytest session that
    starts makes owner-only again, so another user could lose its way in mid-test) into a
    folder of its own that ``nobody`` owns."""
    if os.geteuid() != 0:
        yield workspace
        return
    home = Path(tempfile.mkdtemp(prefix="meshsim-nobody-"))
    try:
        home.chmod(0o755)
        moved = home / workspace.name
        shutil.move(workspace, moved)
        subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(home)], check=True)
        yield moved
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _assert_clear(result: subprocess.CompletedProcess[str], names: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("Error: "), result.stderr
    assert names in result.stderr, result.stderr
    assert "internal error" not in result.stderr


def _doctor_reports(workspace: Path, names: str) -> None:
    result = run_as_nobody(workspace, "doctor", "--workspace", str(workspace))
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, result.stdout
    assert names in result.stdout.replace("\n", ""), result.stdout


def test_unreadable_governance_folder(owned: Path):
    governance = owned / "governance"
    governance.chmod(0)
    try:
        for args in (("products",), ("sql", "--as", "governance_admin", QUERY)):
            _assert_clear(run_as_nobody(owned, *args, "--workspace", str(owned)), str(governance))
        _doctor_reports(owned, "governance")
    finally:
        governance.chmod(0o755)


@pytest.mark.parametrize("what", ["commit", "folder"])
def test_unreadable_delta_log(owned: Path, what: str):
    log = owned / "accounts" / "customer" / "customer" / "_delta_log"
    target = next(log.glob("*.json")) if what == "commit" else log
    target.chmod(0)
    try:
        args = ("sql", "--as", "governance_admin", QUERY, "--workspace", str(owned))
        _assert_clear(run_as_nobody(owned, *args), "_delta_log")
        _doctor_reports(owned, "_delta_log")
    finally:
        target.chmod(0o755)


@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
def test_mesh_key_that_is_not_a_small_file(capsys, workspace: Path, special: str):
    key = workspace / "governance" / "mesh.key"
    key.unlink()
    if special == "fifo":
        os.mkfifo(key)
    else:
        key.symlink_to(special)
    code = main(["sql", "--as", "governance_admin", QUERY, "--workspace", str(workspace)])
    _, err = capsys.readouterr()
    assert code == 1
    assert f"the mesh key '{key}'" in err and "regular file" in err, err
    # JSON: a table wraps a long temporary path's message across lines
    code = main(["doctor", "--workspace", str(workspace), "--format", "json"])
    out, _ = capsys.readouterr()
    assert code == 1
    assert any("regular file" in check["detail"] for check in json.loads(out)), out
