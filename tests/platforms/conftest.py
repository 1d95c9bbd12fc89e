"""Fixtures of the export tests: the example mesh and a scaffolded one, built once, and a
reader of what each exported artefact lets a consumer see (see :mod:`.seen`)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def example_mesh(built_workspace: Path):
    from meshsim.mesh import Mesh

    mesh = Mesh.open(built_workspace)
    yield mesh
    mesh.close()


@pytest.fixture(scope="session")
def scaffolded_mesh(tmp_path_factory: pytest.TempPathFactory):
    """``meshsim init`` (the minimal example), built."""
    from meshsim.mesh import Mesh

    root = tmp_path_factory.mktemp("scaffold")
    mesh_dir = Mesh.init(root / "domains")
    mesh = Mesh.build(mesh_dir, root / "ws")
    yield mesh
    mesh.close()


@pytest.fixture(scope="session", params=["example", "scaffolded"])
def any_mesh(request: pytest.FixtureRequest):
    return request.getfixturevalue(f"{request.param}_mesh")
