"""Issue 17: a query after a command that loaded the whole spec (a listing, ``access``) checks
the spec files a query in a freshly opened process would check, not every file of the mesh;
an edit of any file it depends on is still seen by the next query. Counts of stats, never a
wall-clock time, on a mesh made by the benchmark's generator."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from meshsim.bench.meshgen import GeneratedMesh, generate_mesh
from tests.scale.test_complexity import CONSUMERS

TABLES = 200


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[GeneratedMesh, Path]:
    from meshsim.mesh import Mesh

    root = tmp_path_factory.mktemp("after-listing")
    generated = generate_mesh(root / "mesh", TABLES, CONSUMERS)
    Mesh.build(generated.root, root / "ws", scale=1).close()
    return generated, root / "ws"


def _counting_stats(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    import meshsim.spec.watch as watch

    calls = [0]
    original = watch.status

    def counted(path: Path) -> Any:
        calls[0] += 1
        return original(path)

    monkeypatch.setattr(watch, "status", counted)
    return calls


_LISTINGS: dict[str, Callable[[Any], object]] = {
    "tables": lambda mesh: mesh.tables(),
    "access": lambda mesh: mesh.access(),
    "products": lambda mesh: mesh.products(),
    "domains": lambda mesh: mesh.domains(),
}


@pytest.mark.parametrize("listing", sorted(_LISTINGS))
def test_a_query_after_a_listing_stats_what_a_fresh_query_stats(
    built: tuple[GeneratedMesh, Path], monkeypatch: pytest.MonkeyPatch, listing: str
) -> None:
    """After a listing loaded every domain, every later query stat'ed every spec file of the
    mesh (8,006 at 10,000 tables: 20 ms added to each query); now as many as before it. The
    stat path, as where no watch can be trusted (an NFS mount, macOS): with a watch a check
    with no change stats nothing (tests/spec/test_fswatch.py)."""
    import meshsim
    import meshsim.spec.fswatch as fswatch

    monkeypatch.setattr(fswatch, "file_system_type", lambda mountinfo, path: "nfs")

    generated, workspace = built
    query = f"SELECT count(*) FROM {generated.sample_table}"
    with meshsim.open(str(workspace)) as mesh:
        session = mesh.session(generated.sample_consumer)
        assert session.sql(query).fetchall() == [(3,)]
        stats = _counting_stats(monkeypatch)
        assert session.sql(query).fetchall() == [(3,)]
        fresh = stats[0]
        _LISTINGS[listing](mesh)
        assert session.sql(query).fetchall() == [(3,)]  # may read what the listing read
        stats[0] = 0
        assert session.sql(query).fetchall() == [(3,)]
        assert stats[0] == fresh, (listing, stats[0], fresh)
        stats[0] = 0
        assert len(mesh.tables()) == TABLES  # and the listing still looks at every file
        # its folder, domain.yaml, products folder and files, of each domain (10 tables each)
        assert stats[0] >= TABLES // 10 * 4, stats[0]
    assert 0 < fresh < 20, fresh


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


_LOOKUP = "id IN (SELECT id FROM d0003.p1_t0 WHERE amount >= 0)"

#: each kind of file a query depends on: (what the mesh holds from the start, the edit made
#: after the listing, the query as c0000); its own domain was read by the query before the
#: listing, the other domain only by the listing
_EDITS: dict[str, tuple[Callable[[Path], None], Callable[[Path], None], str]] = {
    "its own domain": (
        lambda root: None,
        lambda root: _replace(
            root / "d0000" / "products" / "p0.yaml",
            "classification: pii",
            "classification: internal",
        ),
        "SELECT email FROM d0000.p0_t0 ORDER BY id",
    ),
    "a domain only the listing read": (
        lambda root: None,
        lambda root: _replace(
            root / "d0001" / "products" / "p2.yaml",
            "classification: pii",
            "classification: internal",
        ),
        "SELECT email FROM d0001.p2_t1 ORDER BY id",
    ),
    "mesh.yaml's policies": (
        lambda root: None,
        lambda root: _replace(
            root / "mesh.yaml", "predicate: amount >= 0", "predicate: amount >= 2"
        ),
        "SELECT count(*) FROM d0000.p0_t0",
    ),
    "a row filter's lookup table in another domain": (
        lambda root: _replace(
            root / "mesh.yaml", "predicate: amount >= 0", f"predicate: {_LOOKUP}"
        ),
        lambda root: _replace(root / "d0003" / "products" / "p1.yaml", "p1_t0", "p1_tx"),
        "SELECT count(*) FROM d0000.p0_t0",
    ),
}


def _outcome(call: Callable[[], Any]) -> tuple[object, ...]:
    from meshsim.errors import MeshsimError

    try:
        return ("rows", call().fetchall())
    except MeshsimError as exc:
        return ("refused", type(exc).__name__, exc.message)


@pytest.mark.parametrize("kind", sorted(_EDITS))
def test_a_query_after_a_listing_sees_an_edit_as_a_fresh_process_does(
    built: tuple[GeneratedMesh, Path], tmp_path: Path, kind: str
) -> None:
    """The query's own spec watches only what it read: an edit of any file it depends on,
    made after a listing read every file, gives the next query what a freshly opened process
    gives it, never a plan or policy of the files before."""
    from meshsim.mesh import Mesh

    generated, workspace = built
    root = tmp_path / "mesh"
    shutil.copytree(generated.root, root, symlinks=True)
    setup, edit, query = _EDITS[kind]
    setup(root)

    def fresh() -> tuple[object, ...]:
        with Mesh.open(workspace, mesh_dir=root) as other:
            return _outcome(lambda: other.sql("c0000", query))

    before = fresh()
    with Mesh.open(workspace, mesh_dir=root) as mesh:
        session = mesh.session("c0000")
        sample = f"SELECT count(*) FROM {generated.sample_table}"
        assert session.sql(sample).fetchall() == [(3,)]
        if "own" in kind:
            assert _outcome(lambda: session.sql(query)) == before
        mesh.access()
        assert session.sql(sample).fetchall() == [(3,)]
        edit(root)
        after = _outcome(lambda: session.sql(query))
        assert after == fresh(), kind
        assert after != before, (kind, after)
        assert _outcome(lambda: session.sql(query)) == after


def test_a_new_session_after_a_listing_sees_an_owner_binding_added_in_any_domain(
    built: tuple[GeneratedMesh, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import meshsim.identity as identity
    from meshsim.errors import IdentityError
    from meshsim.mesh import Mesh

    generated, workspace = built
    root = tmp_path / "mesh"
    shutil.copytree(generated.root, root, symlinks=True)
    monkeypatch.setattr(identity, "os_user_source", lambda: "alice")
    with Mesh.open(workspace, mesh_dir=root) as mesh:
        mesh.session("c0000").sql(f"SELECT count(*) FROM {generated.sample_table}")
        mesh.tables()
        _replace(
            root / "d0002" / "domain.yaml",
            "owner_team: d0002-team",
            "owner_team: c0000\nowner_os_users: [bob]",
        )
        with pytest.raises(IdentityError, match="bob"):
            mesh.session("c0000")


@pytest.mark.parametrize("listing", ["access", "tables"])
def test_show_after_a_listing_stats_what_a_show_in_a_fresh_process_stats(
    built: tuple[GeneratedMesh, Path], monkeypatch: pytest.MonkeyPatch, listing: str
) -> None:
    """``show`` of one product in a Mesh that had listed the whole mesh stat'ed every spec
    file (27 ms of a 29 ms show at 10,000 tables); now what a show in a fresh process does."""
    import meshsim

    generated, workspace = built
    with meshsim.open(str(workspace)) as mesh:
        mesh.show(generated.sample_product)
        stats = _counting_stats(monkeypatch)
        mesh.show(generated.sample_product)
        fresh = stats[0]
        _LISTINGS[listing](mesh)
        mesh.show(generated.sample_product)
        stats[0] = 0
        shown = mesh.show(generated.sample_product)
        assert stats[0] == fresh, (listing, stats[0], fresh)
    assert shown.product == generated.sample_product
    assert fresh < 20, fresh
