"""workspace.json and mesh.key edited by hand: one clear error naming the file and the key,
never a TypeError, KeyError or AttributeError from deep inside."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshsim.errors import WorkspaceError
from meshsim.mesh import Mesh
from meshsim.workspace import Workspace, WorkspaceState
from tests.cli.clihelpers import run


def _state(workspace: Path) -> dict:
    return json.loads((workspace / "workspace.json").read_text())


def _write(workspace: Path, value: object) -> None:
    (workspace / "workspace.json").write_text(json.dumps(value))


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda s: [], "must be an object"),
        (lambda s: {k: v for k, v in s.items() if k != "mesh_dir"}, "'mesh_dir': missing"),
        (lambda s: {**s, "mesh_dir": 3}, "'mesh_dir'"),
        (lambda s: {**s, "tables": []}, "'tables'"),
        (lambda s: {**s, "tables": {"sales.orders": "x"}}, "'tables.sales.orders'"),
        (
            lambda s: {**s, "tables": {**s["tables"], "sales.orders": {"external": False}}},
            "'tables.sales.orders.location': missing",
        ),
        (lambda s: {**s, "scale": "big"}, "'scale'"),
        (lambda s: {**s, "surprise": 1}, "'surprise': not a workspace key"),
    ],
    ids=[
        "list",
        "missing",
        "mistyped",
        "tables-list",
        "record-str",
        "record-key",
        "scale",
        "extra",
    ],
)
def test_hand_edited_state_names_the_file_and_the_key(capsys, workspace: Path, edit, expected):
    _write(workspace, edit(_state(workspace)))
    for command in ("tables", "products", "domains"):
        code, out, err = run(capsys, command, "--workspace", str(workspace))
        assert code == 1, (command, out, err)
        assert err.startswith(f"Error: '{workspace / 'workspace.json'}' is not a valid"), err
        assert expected in err, err
        assert "Traceback" not in err
        assert "meshsim doctor" in err


def test_non_utf8_state_is_a_clear_error(capsys, workspace: Path):
    (workspace / "workspace.json").write_bytes(b'{"mesh_dir": "\xff"}')
    code, _, err = run(capsys, "tables", "--workspace", str(workspace))
    assert code == 1
    assert "is not UTF-8 text" in err and str(workspace / "workspace.json") in err


def test_state_round_trips_through_the_typed_model(workspace: Path):
    state = Workspace(workspace).read_state()
    assert isinstance(state, WorkspaceState)
    assert state.tables["sales.orders"].version >= 0
    assert not state.tables["sales.orders"].external
    assert state.catalog_created_at is not None
    Workspace(workspace).write_state(state)
    assert Workspace(workspace).read_state() == state


def test_build_over_an_invalid_state_refuses_without_writing(workspace: Path):
    (workspace / "workspace.json").write_text("[]")
    before = sorted(p.name for p in (workspace / "accounts" / "sales" / "orders").iterdir())
    with pytest.raises(WorkspaceError, match="meshsim doctor"):
        Mesh.build(_state_mesh(), workspace, scale=0.01)
    after = sorted(p.name for p in (workspace / "accounts" / "sales" / "orders").iterdir())
    assert before == after


def _state_mesh() -> Path:
    from tests.conftest import EXAMPLE_MESH

    return EXAMPLE_MESH


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"not hex at all", "is not 64 hexadecimal digits"),
        (b"abcd", "is not 64 hexadecimal digits"),
        (b"", "is not 64 hexadecimal digits"),
        (b"\xff\xfe", "is not 64 hexadecimal digits"),
    ],
    ids=["garbage", "short", "empty", "binary"],
)
def test_bad_mesh_key_is_a_clear_error(capsys, workspace: Path, content: bytes, expected: str):
    (workspace / "governance" / "mesh.key").write_bytes(content)
    code, _, err = run(
        capsys, "sql", "--workspace", str(workspace), "--as", "governance_admin", "SELECT 1"
    )
    assert code == 1
    assert err.startswith(f"Error: the mesh key '{workspace / 'governance' / 'mesh.key'}'"), err
    assert expected in err
    assert "meshsim doctor" in err
