"""Catalog fixtures: a published example mesh in a fresh workspace, with a clock tests move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from meshsim.catalog import Catalog
from meshsim.spec.loader import MeshSpec, load_mesh
from meshsim.workspace import Workspace
from tests.conftest import EXAMPLE_MESH

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def table_versions(spec: MeshSpec) -> tuple[dict[str, int], dict[str, int | None]]:
    return {t.ref: 0 for t in spec.tables()}, {t.ref: 10 for t in spec.tables()}


@pytest.fixture(scope="session")
def spec() -> MeshSpec:
    return load_mesh(EXAMPLE_MESH)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def catalog(tmp_path: Path, spec: MeshSpec, clock: Clock) -> Catalog:
    cat = Catalog(Workspace(tmp_path / "ws"), lambda: spec, clock=clock)
    cat.publish_all(*table_versions(spec))
    return cat


@pytest.fixture
def cli_catalog(monkeypatch: pytest.MonkeyPatch, catalog: Catalog) -> Catalog:
    """Point the catalog commands at a mesh over ``catalog`` (as ``open_mesh(ws)`` would);
    its tables are not built, so nothing is counted or queried."""
    from meshsim.cli import catalog_cmds
    from meshsim.mesh import Mesh

    mesh = Mesh(catalog.workspace, EXAMPLE_MESH, catalog=catalog)
    monkeypatch.setattr(catalog_cmds, "open_mesh", lambda workspace, mesh_dir=None: mesh)
    return catalog
