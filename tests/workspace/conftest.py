"""Helpers to run the CLI against a workspace the way an operator breaks it: read-only, on a
full disk. Mounts need root (CI runs as root); elsewhere permissions stand in for them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MESHSIM = str(Path(sys.executable).parent / "meshsim")


def _namespaced(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to mount the workspace")
    command = ["unshare", "--mount", "sh", "-c", script, "sh", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if "unshare failed" in result.stderr or "mount: " in result.stderr:
        pytest.skip(f"cannot mount here: {result.stderr.strip()}")
    return result


def run_readonly(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``meshsim ARGS`` with ``workspace`` mounted read-only for that process only."""
    if os.geteuid() != 0:
        for path in [workspace, *workspace.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
        try:
            return subprocess.run([MESHSIM, *args], capture_output=True, text=True, timeout=120)
        finally:
            for path in [workspace, *workspace.rglob("*")]:
                path.chmod(path.stat().st_mode | 0o200)
    script = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'
    return _namespaced(script, str(workspace), MESHSIM, *args)


def run_disk_full(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``meshsim ARGS`` with the governance folder on a file system that holds it, filled up
    before meshsim starts, whatever the folder's size. The catalog's write-ahead log is there
    and empty, as a running mesh leaves it, so meshsim opens the catalog and fails at the
    first write that needs space (a query's audit record, a request)."""
    import sqlite3

    governance = workspace / "governance"
    source = workspace.parent / "governance-copy"
    shutil.copytree(governance, source)
    # A log that a connection kept open has pages that SQLite writes over again: a write that
    # fits in them never meets the full disk. This one is folded into the catalog and emptied,
    # and stays open while it is copied (closing would delete it, and meshsim would then fail
    # creating it as it opens the catalog, before the command's own write).
    holder = sqlite3.connect(source / "catalog.db")
    try:
        holder.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        used = sum(max(f.stat().st_blocks * 512, f.stat().st_size) for f in source.rglob("*"))
        size_kib = used // 1024 + 4096  # room for each file's last page; the filler takes the rest
        script = (
            f'mount -t tmpfs -o size={size_kib}k tmpfs "$1" && cp -a "$2"/. "$1"/ '
            '&& (dd if=/dev/zero of="$1/filler" bs=4096 2>/dev/null; true) '
            '&& shift 2 && exec "$@"'
        )
        return _namespaced(script, str(governance), str(source), MESHSIM, *args)
    finally:
        holder.close()
