"""Fixtures of the quality tests: the quality test mesh (``tests/quality/mesh``), copied and
built in temporary folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

QUALITY_MESH = Path(__file__).resolve().parent / "mesh"
ORDERS = "shop/products/sales.yaml"


@pytest.fixture
def quality_mesh(tmp_path: Path) -> Path:
    """A writable copy of the quality test mesh."""
    target = tmp_path / "mesh"
    shutil.copytree(QUALITY_MESH, target)
    return target


@pytest.fixture(scope="session")
def built_quality(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quality test mesh built once (tests must not change it; copy it first)."""
    from meshsim.mesh import Mesh

    root = tmp_path_factory.mktemp("quality")
    mesh = root / "mesh"
    shutil.copytree(QUALITY_MESH, mesh)
    Mesh.build(mesh, root / "ws", scale=1).close()
    return root


@pytest.fixture
def quality_ws(built_quality: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the built quality mesh: (mesh folder, workspace)."""
    import json

    target = tmp_path / "copy"
    shutil.copytree(built_quality, target)
    state_file = target / "ws" / "workspace.json"
    state = json.loads(state_file.read_text())
    state["mesh_dir"] = str((target / "mesh").resolve())  # the copy's spec, not the original's
    state_file.write_text(json.dumps(state))
    return target / "mesh", target / "ws"


def add_rules(product_file: Path, table: str, rules: str) -> None:
    """Append YAML rule lines (indented for a table's list) to ``table``'s quality list."""
    text = product_file.read_text()
    anchor = f"  - name: {table}\n"
    start = text.index(anchor)
    marker = text.index("    quality:\n", start) + len("    quality:\n")
    product_file.write_text(text[:marker] + rules + text[marker:])
