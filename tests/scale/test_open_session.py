"""Issue 17: opening a workspace, a session and its first query read per-table state once.
Each test pins a count, never a wall-clock time, on a mesh made by the benchmark's generator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshsim.bench.meshgen import GeneratedMesh, generate_mesh

CONSUMERS = 40


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[GeneratedMesh, Path]:
    from meshsim.mesh import Mesh

    root = tmp_path_factory.mktemp("open-session")
    generated = generate_mesh(root / "mesh", 30, CONSUMERS)
    Mesh.build(generated.root, root / "ws", scale=1).close()
    return generated, root / "ws"


def _counting_state_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from meshsim.workspace import Workspace

    reads = [0]
    original = Workspace.read_state

    def counted(self: Workspace) -> Any:
        reads[0] += 1
        return original(self)

    monkeypatch.setattr(Workspace, "read_state", counted)
    return reads


def test_open_a_session_and_its_first_query_parse_workspace_json_once(
    built: tuple[GeneratedMesh, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """workspace.json holds a record per table (10,000 of them at enterprise size, tens of
    milliseconds to validate): the open parsed it twice (its state, then whether the first
    build finished) and the first query a third time (the published versions)."""
    import meshsim

    generated, workspace = built
    reads = _counting_state_reads(monkeypatch)
    with meshsim.open(str(workspace)) as mesh:
        session = mesh.session(generated.sample_consumer)
        assert session.sql(f"SELECT count(*) FROM {generated.sample_table}").fetchall() == [(3,)]
    assert reads[0] == 1
