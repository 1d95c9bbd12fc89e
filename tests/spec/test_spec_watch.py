"""Issue 17: a long-lived Mesh checks its spec files through a watch of the mesh folder.

Request and approve at 10,000 products took 26 ms, 20 of them stat'ing every spec file the
identity check's scan read. With the watch, a decision with no spec change since the last one
stats no spec file, and every kind of change made meanwhile is seen by the next request,
approval or session, as a new process would see it. Counts, never a wall-clock time."""

from __future__ import annotations

import gc
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from meshsim.bench.meshgen import GeneratedMesh, generate_mesh
from meshsim.errors import IdentityError
from meshsim.mesh import Mesh
from tests.scale.test_complexity import CONSUMERS
from tests.spec.test_fswatch import _stats

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="inotify is Linux's")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[GeneratedMesh, Path]:
    root = tmp_path_factory.mktemp("spec-watch")
    generated = generate_mesh(root / "mesh", 30, CONSUMERS)
    Mesh.build(generated.root, root / "ws", scale=1).close()
    return generated, root / "ws"


@pytest.fixture
def fresh(built: tuple[GeneratedMesh, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the generated mesh and its workspace: (mesh folder, workspace)."""
    generated, workspace = built
    shutil.copytree(generated.root, tmp_path / "mesh")
    shutil.copytree(workspace, tmp_path / "ws")
    return (tmp_path / "mesh").resolve(), tmp_path / "ws"


def _watched(mesh: Mesh) -> bool:
    """Whether the checks of the mesh's spec files are answered by its watch, started."""
    started = mesh._fswatch is not None and mesh._fswatch.start() is not None
    return started and all(files.watched for _, files, _ in mesh._views.values())


def _product(mesh_dir: Path, ref: str) -> Path:
    domain, name = ref.split(".")
    return mesh_dir / domain / "products" / f"{name}.yaml"


def _bound_text(path: Path, owner: str, os_user: str) -> str:
    """``path``'s product made owned by ``owner``, bound to ``os_user``."""
    text = path.read_text()
    owned = next(line for line in text.splitlines() if line.startswith("owner:"))
    return text.replace(owned + "\n", f"owner: {owner}\nowner_os_users: [{os_user}]\n")


def _edit_in_place(mesh_dir: Path) -> None:
    path = _product(mesh_dir, "d0002.p3")
    path.write_text(_bound_text(path, "d0000-team", "someone_else"))


def _rename_over(mesh_dir: Path) -> None:
    path = _product(mesh_dir, "d0002.p3")
    new = mesh_dir / "p3.yaml.new"
    new.write_text(_bound_text(path, "d0000-team", "someone_else"))
    os.replace(new, path)


def _new_product_file(mesh_dir: Path) -> None:
    path = _product(mesh_dir, "d0002.p3")
    text = _bound_text(path, "d0000-team", "someone_else").replace("p3", "p9")
    _product(mesh_dir, "d0002.p9").write_text(text)


def _new_domain_folder(mesh_dir: Path) -> None:
    (mesh_dir / "d0009").mkdir()
    (mesh_dir / "d0009" / "domain.yaml").write_text(
        "name: d0009\nowner_team: d0000-team\nowner_os_users: [someone_else]\n"
    )


_BINDINGS: dict[str, Callable[[Path], None]] = {
    "edited in place": _edit_in_place,
    "renamed over": _rename_over,
    "new product file": _new_product_file,
    "new domain folder": _new_domain_folder,
}


@pytest.mark.parametrize("change", sorted(_BINDINGS))
def test_a_binding_added_in_another_domain_is_seen_by_the_next_approval(
    fresh: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    mesh_dir, workspace = fresh
    with Mesh.open(workspace, mesh_dir=mesh_dir) as mesh:
        requests = [mesh.catalog.request(f"c000{i}", "d0000.p0", "why") for i in range(3)]
        mesh.catalog.approve(requests[0].id, by="d0000-team")
        mesh.catalog.approve(requests[1].id, by="d0000-team")
        assert _watched(mesh)
        _BINDINGS[change](mesh_dir)
        with pytest.raises(IdentityError, match="someone_else"):
            mesh.catalog.approve(requests[2].id, by="d0000-team")


def test_a_binding_changed_to_another_os_user_is_seen_by_the_next_approval(
    fresh: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import meshsim.identity as identity

    mesh_dir, workspace = fresh
    monkeypatch.setattr(identity, "os_user_source", lambda: "alice")
    path = _product(mesh_dir, "d0002.p3")
    path.write_text(_bound_text(path, "d0000-team", "alice"))
    with Mesh.open(workspace, mesh_dir=mesh_dir) as mesh:
        requests = [mesh.catalog.request(f"c000{i}", "d0000.p0", "why") for i in range(3)]
        mesh.catalog.approve(requests[0].id, by="d0000-team")
        mesh.catalog.approve(requests[1].id, by="d0000-team")
        assert _watched(mesh)
        path.write_text(path.read_text().replace("[alice]", "[bob]"))
        with pytest.raises(IdentityError, match="bob"):
            mesh.catalog.approve(requests[2].id, by="d0000-team")


def test_a_consumer_bound_in_mesh_yaml_is_seen_by_the_next_session_and_request(
    fresh: tuple[Path, Path],
) -> None:
    mesh_dir, workspace = fresh
    with Mesh.open(workspace, mesh_dir=mesh_dir) as mesh:
        mesh.session("c0001")
        mesh.catalog.request("c0001", "d0000.p0", "why")
        mesh.session("c0001")
        assert _watched(mesh)
        mesh_file = mesh_dir / "mesh.yaml"
        text = mesh_file.read_text()
        assert "- name: c0001\n" in text
        mesh_file.write_text(
            text.replace("- name: c0001\n", "- name: c0001\n  os_users: [someone_else]\n")
        )
        with pytest.raises(IdentityError, match="someone_else"):
            mesh.session("c0001")
        with pytest.raises(IdentityError, match="someone_else"):
            mesh.catalog.request("c0001", "d0001.p0", "why")


def test_a_chmod_of_another_domain_s_file_reloads_the_spec_for_the_next_request(
    fresh: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chmod changes a file's status (its ctime), as a stat check sees it: the spec that
    read it is loaded again."""
    import meshsim.mesh as mesh_module

    mesh_dir, workspace = fresh
    loads = [0]
    load_mesh = mesh_module.load_mesh

    def counted(*args: Any, **kwargs: Any) -> Any:
        loads[0] += 1
        return load_mesh(*args, **kwargs)

    monkeypatch.setattr(mesh_module, "load_mesh", counted)
    with Mesh.open(workspace, mesh_dir=mesh_dir) as mesh:
        mesh.catalog.request("c0001", "d0000.p0", "why")
        mesh.catalog.request("c0002", "d0000.p0", "why")
        assert _watched(mesh)
        before = loads[0]
        mesh.catalog.request("c0003", "d0000.p0", "why")
        assert loads[0] == before
        os.chmod(_product(mesh_dir, "d0002.p3"), 0o600)
        mesh.catalog.request("c0004", "d0000.p0", "why")
        assert loads[0] > before


def test_a_request_and_an_approval_with_no_spec_change_stat_no_spec_file(
    fresh: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The count that pins the fast path: the identity check's scan read every spec file;
    once armed, a decision or a session stats none of them. A product of a domain not read
    before has its few files read, and compared once (armed) by the next check."""
    mesh_dir, workspace = fresh
    with Mesh.open(workspace, mesh_dir=mesh_dir) as mesh:
        first = mesh.catalog.request("c0001", "d0000.p0", "why")
        mesh.catalog.approve(first.id, by="d0000-team")
        mesh.session("c0001")
        mesh.session("c0001")
        stated = _stats(monkeypatch, mesh_dir)
        second = mesh.catalog.request("c0002", "d0000.p0", "why")
        mesh.catalog.approve(second.id, by="d0000-team")
        mesh.session("c0002")
        assert stated == []
        other = [mesh.catalog.request(f"c000{i}", "d0002.p1", "why") for i in (3, 4)]
        read = [str(path) for path, _ in mesh._views[False][1].recorded(mesh_dir / "d0002")]
        assert len(read) == 3 + 5  # the folder, domain.yaml, products/ and five products
        assert set(stated) == set(read)  # read (the loader stats some too), compared once
        stated.clear()
        mesh.catalog.approve(other[0].id, by="d0002-team")
        mesh.catalog.approve(other[1].id, by="d0002-team")
        assert stated == []


def _inotify_fds() -> int:
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{name}") == "anon_inode:inotify"
        except OSError:  # the listing's own descriptor, closed since
            continue
    return count


def test_meshes_opened_reloaded_and_closed_leave_no_inotify_descriptor(
    fresh: tuple[Path, Path],
) -> None:
    mesh_dir, workspace = fresh
    gc.collect()  # meshes earlier tests dropped: open pauses the collector, so they may linger
    before = _inotify_fds()
    product = _product(mesh_dir, "d0001.p2")
    from meshsim.spec.fswatch import MAX_INSTANCES

    # more than a process holds at once: each closed one gives its place back
    for index in range(MAX_INSTANCES + 2):
        mesh = Mesh.open(workspace, mesh_dir=mesh_dir)
        mesh.catalog.request(f"c{index:04d}", "d0000.p0", "why")
        mesh.session("c0001")
        product.write_text(product.read_text() + "\n")  # a reload: the same watch
        mesh.catalog.request(f"c{index:04d}", "d0001.p0", "why")
        mesh.session("c0001")
        assert _watched(mesh)
        assert _inotify_fds() == before + 1
        mesh.close()
        assert _inotify_fds() == before


def test_a_mesh_dropped_without_close_leaves_no_inotify_descriptor(
    fresh: tuple[Path, Path],
) -> None:
    mesh_dir, workspace = fresh
    gc.collect()  # meshes earlier tests dropped: open pauses the collector, so they may linger
    before = _inotify_fds()
    mesh = Mesh.open(workspace, mesh_dir=mesh_dir)
    mesh.session("c0001")
    mesh.session("c0002")
    assert _inotify_fds() == before + 1
    del mesh
    gc.collect()
    assert _inotify_fds() == before
