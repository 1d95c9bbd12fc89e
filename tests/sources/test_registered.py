"""Registered Delta tables without declared columns take the Delta schema's (queryable,
listed by validate); with declared columns, the others are named by validate and hidden."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from meshsim.errors import AccessDenied, QueryError
from meshsim.mesh import Mesh
from meshsim.storage import delta
from tests.conftest import edit
from tests.sources.conftest import add_product, col, errors, warnings


@pytest.fixture
def external(tmp_path: Path) -> Path:
    location = tmp_path / "external" / "campaigns"
    data = pa.table(
        {
            "campaign_id": pa.array([1, 2, 3], pa.int64()),
            "name": ["spring", "summer", "autumn"],
            "budget": pa.array([100.5, 200.0, None], pa.float64()),
        }
    )
    delta.write(location, data, mode="create", table="campaigns")
    return location


def test_columns_come_from_the_delta_schema(mesh_dir: Path, tmp_path: Path, external: Path):
    file = add_product(mesh_dir, "marketing", "campaigns", f"{{location: '{external}'}}", "")
    edit(
        mesh_dir / "mesh.yaml",
        "      product: shop.orders\n",
        "      product: shop.orders\n    - name: analyst_campaigns\n      consumers: [analyst]\n"
        "      tables: [marketing.campaigns]\n",
    )
    assert errors(mesh_dir) == []
    (listed,) = [w for w in warnings(mesh_dir) if "campaigns" in w]
    assert listed.startswith(f"{file}:7: warning: table 'marketing.campaigns' declares no columns")
    assert "campaign_id bigint, name varchar, budget double" in listed
    Mesh.build(mesh_dir, tmp_path / "ws").close()
    with Mesh.open(tmp_path / "ws", mesh_dir=mesh_dir) as mesh:
        rows = mesh.sql("analyst", "SELECT name, budget FROM marketing.campaigns ORDER BY 1")
        assert rows.fetchall() == [("autumn", None), ("spring", 100.5), ("summer", 200.0)]
        table = mesh.spec.table("marketing.campaigns")
        assert table is not None
        assert [c.classification for c in table.columns] == ["internal"] * 3


def test_undeclared_columns_are_named_and_not_queryable(
    mesh_dir: Path, tmp_path: Path, external: Path
):
    add_product(
        mesh_dir,
        "marketing",
        "campaigns",
        f"{{location: '{external}'}}",
        col("campaign_id", "bigint"),
    )
    assert errors(mesh_dir) == []
    (listed,) = [w for w in warnings(mesh_dir) if "campaigns" in w]
    assert "columns name, budget of" in listed and "not queryable" in listed
    Mesh.build(mesh_dir, tmp_path / "ws").close()
    with Mesh.open(tmp_path / "ws", mesh_dir=mesh_dir) as mesh:
        assert mesh.sql(
            "governance_admin", "SELECT count(*) FROM marketing.campaigns"
        ).fetchall() == [(3,)]
        with pytest.raises((AccessDenied, QueryError)):
            mesh.sql("governance_admin", "SELECT name FROM marketing.campaigns")


def test_declared_columns_are_still_checked(mesh_dir: Path, external: Path):
    file = add_product(
        mesh_dir,
        "marketing",
        "campaigns",
        f"{{location: '{external}'}}",
        col("campaign_id", "integer") + "\n" + col("nmae", "varchar"),
    )
    found = errors(mesh_dir)
    assert [f.split(": error: ")[0] for f in found] == [f"{file}:9", f"{file}:10"]
    assert "is declared integer but is bigint" in found[0]
    assert "column 'nmae' is not in" in found[1]


def test_a_missing_registered_table_without_columns(mesh_dir: Path, tmp_path: Path):
    file = add_product(
        mesh_dir, "marketing", "campaigns", f"{{location: '{tmp_path / 'nope'}'}}", ""
    )
    (found,) = errors(mesh_dir)
    assert found.startswith(f"{file}:7: error: table 'marketing.campaigns': source.location")
    assert "does not exist" in found
