"""Review finding: files meshsim writes in a workspace (temporary files renamed into place,
the catalog's revision note) followed a symlink planted by another user of the workspace, and
wrote through it into a file of the user running meshsim."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from meshsim.errors import CatalogError
from meshsim.files import create_temporary, replace_file


def test_a_temporary_file_is_never_written_through_a_planted_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import meshsim.files as files

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    target = tmp_path / "ws" / "workspace.json"
    target.parent.mkdir()
    monkeypatch.setattr(files.secrets, "token_hex", lambda n: "guessed")  # a name foreseen
    planted = target.with_name(f"{target.name}.{os.getpid()}.guessed.tmp")
    planted.symlink_to(victim)
    with pytest.raises(FileExistsError):
        create_temporary(target)
    with pytest.raises(FileExistsError):
        replace_file(target, b"{}")
    assert victim.read_text(encoding="utf-8") == "precious\n" and not target.exists()
    monkeypatch.undo()
    replace_file(target, b"{}")  # another name: written, and the planted link left alone
    assert target.read_bytes() == b"{}" and planted.is_symlink()


def test_the_workspace_state_is_not_written_through_a_planted_link(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was written to ``workspace.json.tmp``, a name anyone could foresee."""
    import meshsim.files as files
    from meshsim.workspace import Workspace

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    ws = Workspace(workspace)
    (workspace / "workspace.json.tmp").symlink_to(victim)
    ws.write_state(ws.read_state())  # the old name is not used
    monkeypatch.setattr(files.secrets, "token_hex", lambda n: "guessed")
    (workspace / f"workspace.json.{os.getpid()}.guessed.tmp").symlink_to(victim)
    with pytest.raises(FileExistsError):  # a foreseen name is refused, not followed
        ws.write_state(ws.read_state())
    assert victim.read_text(encoding="utf-8") == "precious\n"
    assert not (workspace / "workspace.json").is_symlink()


def test_the_revision_note_refuses_a_planted_link(workspace: Path, tmp_path: Path) -> None:
    from meshsim.catalog.backup import REVISION_FILE
    from meshsim.mesh import Mesh

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    note = workspace / "governance" / REVISION_FILE
    note.unlink(missing_ok=True)
    note.symlink_to(victim)
    with Mesh.open(workspace) as mesh, pytest.raises(CatalogError, match=REVISION_FILE):
        mesh.catalog.request("eu_marketing_analyst", "customer.customer_profiles", "r")
    assert victim.read_text(encoding="utf-8") == "precious\n"
