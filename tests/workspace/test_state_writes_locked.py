"""Every replacement of ``workspace.json`` happens under the publishing lock: a read, change
and write of the state outside it can drop a publish that lands between the read and the
write (an outside review found two: the first build's catalog record, and the record
``doctor --repair`` writes)."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest

from meshsim.pins import PUBLISH_LOCK
from meshsim.workspace import Workspace
from tests.conftest import EXAMPLE_MESH


@pytest.fixture
def unlocked_writes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The workspaces whose state was written while the publishing lock was free."""
    found: list[Path] = []
    write_state = Workspace.write_state

    def checked(self: Workspace, state: object) -> None:
        lock = self.governance / PUBLISH_LOCK
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:  # another descriptor: it gets the lock only if nobody holds it
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            found.append(self.root)
        finally:
            os.close(fd)
        write_state(self, state)  # type: ignore[arg-type]

    monkeypatch.setattr(Workspace, "write_state", checked)
    return found


def test_a_first_build_writes_its_state_under_the_lock(
    tmp_path: Path, unlocked_writes: list[Path]
) -> None:
    from meshsim.mesh import Mesh

    Mesh.build(EXAMPLE_MESH, tmp_path / "ws", scale=0.01).close()
    assert unlocked_writes == []


def test_doctor_repair_writes_the_catalog_record_under_the_lock(
    workspace: Path, unlocked_writes: list[Path]
) -> None:
    from meshsim.doctor import repair

    state = json.loads((workspace / "workspace.json").read_text())
    state["catalog_created_at"] = None
    (workspace / "workspace.json").write_text(json.dumps(state))
    report = repair(workspace)
    assert report.repairs == ("catalog record: recorded in workspace.json",)
    assert unlocked_writes == []
