"""Meshes to compute lineage over: the example, and the minimal mesh with derived products."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshsim.mesh import Mesh
from meshsim.spec.loader import MeshSpec, load_mesh
from tests.conftest import edit
from tests.sources.conftest import add_product, col


def marketing_mesh(root: Path) -> Path:
    """The minimal mesh (``shop.orders`` from a CSV) with a consumer ``marketing`` of region
    US: granted ``shop.orders``, its e-mails keyed-hashed and its rows filtered to its region,
    as the build of a derived marketing product reads them."""
    mesh_dir = Mesh.init(root / "mesh")
    mesh = mesh_dir / "mesh.yaml"
    edit(
        mesh,
        "    attributes: {region: EU}\n",
        "    attributes: {region: EU}\n  - name: marketing\n    attributes: {region: US}\n",
    )
    edit(
        mesh,
        "  tag_grants:\n",
        "    - name: marketing_orders\n      consumers: [marketing]\n      product: shop.orders\n"
        "  tag_grants:\n",
    )
    edit(
        mesh,
        "      consumers: [analyst]\n      table: shop.orders",
        "      consumers: [analyst, marketing]\n      table: shop.orders",
    )
    return mesh_dir


def derive(mesh_dir: Path, name: str, query: str, columns: dict[str, str]) -> None:
    """A derived product ``marketing.<name>`` (one table of the same name) over ``query``."""
    lines = "\n".join(col(column, kind) for column, kind in columns.items())
    add_product(mesh_dir, "marketing", name, json.dumps({"sql": query}), lines)


@pytest.fixture
def marketing(tmp_path: Path) -> Path:
    return marketing_mesh(tmp_path)


def spec_of(mesh_dir: Path) -> MeshSpec:
    return load_mesh(mesh_dir)
