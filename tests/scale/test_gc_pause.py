"""Issue 17: opening a workspace and a session builds large object graphs that all survive
(the parsed spec, the workspace's state, the identity scan); Python's cyclic collector walked
them again and again (40% of an open and a session). These tests count collections, never
time them."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshsim.gcpause import collector_paused, pauses_collector


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generations collected while the test runs."""
    seen: list[int] = []

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(note)
    try:
        yield seen
    finally:
        gc.callbacks.remove(note)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A generated mesh with a few hundred consumers: a mesh.yaml of 60 KB to parse."""
    from meshsim.bench.meshgen import generate_mesh
    from meshsim.mesh import Mesh

    root = tmp_path_factory.mktemp("gc-pause")
    generated = generate_mesh(root / "mesh", 20, 300)
    Mesh.build(generated.root, root / "ws", scale=1).close()
    return root / "ws", generated.sample_consumer


def _open_and_session(built: tuple[Path, str]) -> None:
    import meshsim

    workspace, consumer = built
    with meshsim.open(str(workspace)) as mesh:
        mesh.session(consumer)


def test_open_and_session_collect_once_each_at_most(
    built: tuple[Path, str], collections: list[int]
) -> None:
    """Paused, the collector catches up once as each pause ends (what survived is walked
    once), where it ran after every 700 allocations before."""
    _open_and_session(built)  # the imports, apart
    collections.clear()
    _open_and_session(built)
    assert len(collections) <= 3, collections
    assert gc.isenabled(), "the collector runs again after the pause"


def test_the_open_collected_often_without_the_pause(
    built: tuple[Path, str], collections: list[int]
) -> None:
    """The same open with the pause taken out: the test above can fail."""
    from meshsim import gcpause

    _open_and_session(built)
    collections.clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gcpause.gc, "disable", lambda: None)
        _open_and_session(built)
    assert len(collections) > 20, collections


def test_pauses_nest_and_restore_what_the_caller_had() -> None:
    assert gc.isenabled()
    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled(), "the outer pause still holds"
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled(), "a caller that disabled the collector keeps it disabled"
    finally:
        gc.enable()


def test_a_pause_ends_when_the_work_raises() -> None:
    @pauses_collector
    def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError):
        fails()
    assert gc.isenabled()


def test_threads_pausing_together_resume_once_all_are_done() -> None:
    inside = threading.Barrier(2)
    leave = threading.Event()

    def hold() -> None:
        with collector_paused():
            inside.wait()
            leave.wait()

    other = threading.Thread(target=hold)
    other.start()
    with collector_paused():
        inside.wait()
    assert not gc.isenabled(), "the other thread's pause still holds"
    leave.set()
    other.join()
    assert gc.isenabled()
