"""A minimal mesh (``meshsim init``) to add sources to, and a product writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshsim.mesh import Mesh


@pytest.fixture
def mesh_dir(tmp_path: Path) -> Path:
    return Mesh.init(tmp_path / "mesh")


def add_product(mesh_dir: Path, domain: str, name: str, source: str, columns: str) -> Path:
    """``<domain>/products/<name>.yaml`` with one table ``name``: ``source`` and ``columns``
    are YAML flow mappings / lines, written as given."""
    folder = mesh_dir / domain
    if not (folder / "domain.yaml").exists():
        Mesh.new_domain(domain, mesh_dir=mesh_dir)
    file = folder / "products" / f"{name}.yaml"
    lines = [
        f"name: {name}",
        "description: A test product.",
        f"owner: {domain}-team",
        "tables:",
        f"  - name: {name}",
        "    description: A test table.",
        f"    source: {source}",
    ]
    if columns:
        lines.append("    columns:")
        lines += [f"      - {line}" for line in columns.strip().splitlines()]
    file.write_text("\n".join(lines) + "\n")
    return file


def col(name: str, kind: str, extra: str = "") -> str:
    return f"{{name: {name}, type: '{kind}', classification: internal{extra}}}"


def errors(mesh_dir: Path) -> list[str]:
    from meshsim.mesh import validate

    return [str(p) for p in validate(mesh_dir) if p.severity == "error"]


def warnings(mesh_dir: Path) -> list[str]:
    from meshsim.mesh import validate

    return [str(p) for p in validate(mesh_dir) if p.severity == "warning"]
