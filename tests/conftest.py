"""Shared fixtures. Tests are deterministic: fixed seeds, no network, data made here."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_MESH = REPO / "domains"

#: Test folders whose tests all run on one pytest-xdist worker (``tools/dev.py test`` passes
#: ``--dist loadgroup``): each Spark test module starts a Spark JVM, and two of them on two busy
#: cores made a governed Spark query run past its timeout.
ONE_WORKER = {"tests/engines/": "spark"}


def work_unit(nodeid: str) -> str:
    """What pytest-xdist sends to one worker as a whole: the test, or the group of its folder."""
    return next(
        (group for folder, group in ONE_WORKER.items() if nodeid.startswith(folder)), nodeid
    )


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: absent with -p no:xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``--dist loadgroup``'s scheduling, with ONE_WORKER's groups. pytest-xdist 3.8 groups by
    ``xdist_group`` marks by appending the group to a test's id (``item._nodeid``), which pytest
    9 no longer reads: the marks would group nothing, and the two Spark modules ran at once."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FolderGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return FolderGroups(config, log)


@pytest.fixture
def mesh_copy(tmp_path: Path) -> Path:
    """A writable copy of the example mesh, for tests that break it on purpose."""
    target = tmp_path / "mesh"
    shutil.copytree(EXAMPLE_MESH, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


@pytest.fixture(scope="session")
def example_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example mesh built once at a tiny scale and closed, then never opened again: the
    workspace fixtures are copies of it. Even a read-only test leaves state in the workspace it
    queries (audit records, the catalog's write-ahead log, shell history, lineage events), and a
    copy of that would depend on which tests ran before."""
    from meshsim.mesh import Mesh

    workspace = tmp_path_factory.mktemp("example-build") / "ws"
    Mesh.build(EXAMPLE_MESH, workspace, scale=0.01).close()
    return workspace


@pytest.fixture(scope="session")
def built_workspace(example_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built example workspace shared by the tests that only query it. Tests must not
    change its products, grants or data (queries do add audit records)."""
    target = tmp_path_factory.mktemp("built") / "ws"
    shutil.copytree(example_build, target)
    return target


@pytest.fixture
def workspace(example_build: Path, tmp_path: Path) -> Path:
    """A private copy of the freshly built example workspace, for tests that change its state."""
    target = tmp_path / "ws"
    shutil.copytree(example_build, target)
    return target


def _hypothesis_profiles() -> None:
    """CI runs the same examples every time (house rule: deterministic tests); set
    HYPOTHESIS_PROFILE=explore for new random examples on every run when hunting for leaks."""
    import os

    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, database=None)
    settings.register_profile("explore", derandomize=False)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


_hypothesis_profiles()


def _ctrl_c_as_at_a_terminal() -> None:
    """A command that a non-interactive shell starts in the background (``cmd &``, as a fresh
    clone's CI run may be started) ignores SIGINT, and every process it starts inherits that:
    Ctrl-C sent to the shell at its pseudo-terminal, or to ``meshsim sql``, would do nothing.
    A terminal starts the commands a person types with SIGINT at its default; so do the tests."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


_ctrl_c_as_at_a_terminal()
