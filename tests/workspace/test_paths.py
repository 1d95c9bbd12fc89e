"""Workspace paths storage cannot hold tables under are refused up front, naming the
character: not a deltalake panic, and not a build that succeeds into a workspace where every
query is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from meshsim.errors import StorageError
from meshsim.storage import delta
from tests.cli.clihelpers import run

CHARACTERS = ["[", "]", "?", "*", "%41", "|", "\\"]


@pytest.mark.parametrize("char", CHARACTERS)
def test_build_refuses_a_workspace_path_naming_the_character(capsys, tmp_path: Path, char: str):
    workspace = tmp_path / f"team{char}x" / "ws"
    code, out, err = run(capsys, "build", "--workspace", str(workspace), "--scale", "0.01")
    assert code == 1, out
    assert err.startswith(f"Error: workspace path '{workspace}' contains '{char[0]}', "), err
    assert "choose a path without" in err
    assert not workspace.exists(), "nothing is written before the path is refused"


@pytest.mark.parametrize("char", ["?", "*", "%41"])
def test_a_built_workspace_moved_under_such_a_path_is_refused_at_open(
    capsys, workspace: Path, char: str
):
    moved = workspace.parent / f"moved{char}" / "ws"
    moved.parent.mkdir()
    shutil.move(workspace, moved)
    for args in (("tables",), ("sql", "--as", "governance_admin", "SELECT 1")):
        code, _, err = run(capsys, *args, "--workspace", str(moved))
        assert code == 1
        assert err.startswith(f"Error: workspace path '{moved}' contains '{char[0]}'"), err


def test_storage_refuses_such_a_table_location(tmp_path: Path):
    with pytest.raises(StorageError, match=r"table 'x.t': location '.*' contains '\['"):
        delta.write(tmp_path / "a[b" / "t", pa.table({"x": [1]}), mode="create", table="x.t")
    assert not (tmp_path / "a[b").exists()


def test_a_registered_location_under_such_a_path_names_the_character(tmp_path: Path):
    with pytest.raises(StorageError, match=r"location '.*' contains '\?'"):
        delta.exists(tmp_path / "a?b" / "t")
