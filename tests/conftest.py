"""Shared fixtures. Tests are deterministic: fixed seeds, no network, data made here."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_MESH = REPO / "domains"


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
def built_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example mesh built once at a tiny scale. Tests must not modify it."""
    from meshsim.mesh import Mesh

    workspace = tmp_path_factory.mktemp("built") / "ws"
    Mesh.build(EXAMPLE_MESH, workspace, scale=0.01).close()
    return workspace


@pytest.fixture
def workspace(built_workspace: Path, tmp_path: Path) -> Path:
    """A private copy of the built example workspace, for tests that change its state."""
    target = tmp_path / "ws"
    shutil.copytree(built_workspace, target)
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
