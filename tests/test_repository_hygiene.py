"""What is committed: no merge or editor leftovers beside the code they shadow."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LEFTOVER_SUFFIXES = (".orig", ".rej", ".bak", ".swp", ".swo", "~")


def _tracked_files() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listing = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return listing.stdout.splitlines()


def test_no_merge_or_editor_leftovers_are_committed() -> None:
    leftovers = [f for f in _tracked_files() if f.endswith(LEFTOVER_SUFFIXES)]
    assert leftovers == [], f"remove with 'git rm': {leftovers}"
