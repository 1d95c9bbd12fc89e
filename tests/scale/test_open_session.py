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
    original = Workspace.read_view  # what read_state reads too

    def counted(self: Workspace) -> Any:
        reads[0] += 1
        return original(self)

    monkeypatch.setattr(Workspace, "read_view", counted)
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


def test_a_revocation_in_an_open_session_reads_and_indexes_only_its_consumers_grants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an approval and after a revocation, the next query of an open session sees
    exactly the new access, reading only its consumer's subscriptions from a catalog of
    everyone's and indexing only those (never mesh.yaml's grants again)."""
    import meshsim
    from meshsim.bench.meshscale import _seed_subscriptions
    from meshsim.catalog.models import Request
    from meshsim.errors import AccessDenied
    from meshsim.mesh import Mesh
    from meshsim.policy.index import PolicyIndex

    generated = generate_mesh(tmp_path / "mesh", 20, CONSUMERS)
    workspace = tmp_path / "ws"
    Mesh.build(generated.root, workspace, scale=1).close()
    _seed_subscriptions(workspace, generated, 400)  # 10 per consumer
    consumer = generated.sample_consumer
    unsubscribed = "SELECT count(*) FROM d0001.p4_t0"
    with meshsim.open(str(workspace)) as mesh:
        session = mesh.session(consumer)
        assert session.sql(f"SELECT count(*) FROM {generated.sample_table}").fetchall() == [(3,)]
        with pytest.raises(AccessDenied):
            session.sql(unsubscribed)
        read, indexed = [0], [0]
        from_row = Request.from_row.__func__  # type: ignore[attr-defined]

        def counted_read(cls: type[Request], row: Any) -> Request:
            read[0] += 1
            return from_row(cls, row)

        init = PolicyIndex.__init__

        def counted_index(self: PolicyIndex, spec: Any, policies: Any, base: Any = None) -> None:
            indexed[0] += len(policies.grants) - (len(base.policies.grants) if base else 0)
            init(self, spec, policies, *([base] if base else []))

        monkeypatch.setattr(Request, "from_row", classmethod(counted_read))
        monkeypatch.setattr(PolicyIndex, "__init__", counted_index)
        request = mesh.catalog.request(consumer, "d0001.p4", "why")
        mesh.catalog.approve(request.id, by="d0001-team")
        read[0], indexed[0] = 0, 0
        assert session.sql(unsubscribed).fetchall() == [(3,)]
        assert 0 < read[0] <= 11 + 1, read[0]  # its 11 subscriptions (and a look at one)
        assert 0 < indexed[0] <= 11 + 2, indexed[0]  # their grants and the system's
        mesh.catalog.revoke(request.id, by="d0001-team")
        read[0], indexed[0] = 0, 0
        with pytest.raises(AccessDenied, match="revoked"):
            session.sql(unsubscribed)
        assert 0 < read[0] <= 2 * 11 + 1, read[0]  # and the refusal's explanation reads them
        assert indexed[0] <= 10 + 2, indexed[0]
