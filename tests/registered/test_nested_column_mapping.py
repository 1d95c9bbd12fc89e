"""A registered table with column mapping and nested columns, as Spark and Databricks write
them: struct fields have physical names (and ids) at every level. Read end to end through
the governed engine in name mode (written by deltalake) and id mode (written by the test
corpus), compared with the rows written and with the policy applied by hand."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from meshsim.errors import QueryError
from meshsim.mesh import Mesh, validate
from tests.conftest import EXAMPLE_MESH
from tests.registered.conftest import SCHEMA, analyst_view, event_rows, register
from tests.storage.corpus import HandTable, add


def write_mapped(location: Path, mode: str) -> None:
    rows = event_rows()
    if mode == "name":
        from deltalake import write_deltalake

        data = pa.Table.from_pylist(rows, schema=SCHEMA)
        write_deltalake(location, data, configuration={"delta.columnMapping.mode": "name"})
        return
    table = HandTable(location, SCHEMA, column_mapping="id", reader_features=[])
    location.mkdir(parents=True)
    first = table.data_file(pa.Table.from_pylist(rows[:25], schema=SCHEMA))
    # names only the field ids match, as in a table converted from Iceberg
    second = table.data_file(pa.Table.from_pylist(rows[25:], schema=SCHEMA), rename_nested=True)
    table.commit(add(first), add(second))


@pytest.fixture(scope="module", params=["name", "id"])
def mapped_workspace(request, tmp_path_factory) -> Iterator[tuple[Path, Path]]:
    """(mesh folder, workspace) with ``sales.events`` column-mapped in ``request.param``."""
    root = tmp_path_factory.mktemp(f"mapped-{request.param}")
    mesh_dir = root / "mesh"
    shutil.copytree(EXAMPLE_MESH, mesh_dir)
    location = root / "lake" / "events"
    write_mapped(location, request.param)
    register(mesh_dir, location)
    workspace = root / "ws"
    Mesh.build(mesh_dir, workspace, scale=0.01).close()
    yield mesh_dir, workspace


@pytest.fixture
def mesh(mapped_workspace: tuple[Path, Path]) -> Iterator[Mesh]:
    opened = Mesh.open(mapped_workspace[1])
    yield opened
    opened.close()


def rows(mesh: Mesh, consumer: str, sql: str) -> list[dict[str, Any]]:
    return sorted(mesh.sql(consumer, sql).arrow().to_pylist(), key=repr)


def test_validate_accepts_a_column_mapped_table_with_nested_columns(mapped_workspace):
    assert [str(p) for p in validate(mapped_workspace[0]) if p.severity == "error"] == []


def test_admin_reads_the_rows_written(mesh: Mesh):
    assert rows(mesh, "governance_admin", "SELECT * FROM sales.events") == sorted(
        event_rows(), key=repr
    )


def test_analyst_gets_masked_nested_columns_of_their_type(mesh: Mesh):
    assert rows(mesh, "eu_marketing_analyst", "SELECT * FROM sales.events") == sorted(
        analyst_view(event_rows()), key=repr
    )
    admin = mesh.sql("governance_admin", "SELECT s, m FROM sales.events").arrow().schema
    analyst = mesh.sql("eu_marketing_analyst", "SELECT s, m FROM sales.events").arrow().schema
    assert analyst.types == admin.types


def test_field_access_reads_logical_field_names(mesh: Mesh):
    got = rows(
        mesh,
        "governance_admin",
        'SELECT id, s.b AS b, deep[1].x AS x, "odd struct"."Field One" AS f FROM sales.events',
    )
    assert got == sorted(
        (
            {
                "id": r["id"],
                "b": r["s"]["b"] if r["s"] else None,
                "x": r["deep"][0]["x"] if r["deep"] else None,
                "f": r["odd struct"]["Field One"] if r["odd struct"] else None,
            }
            for r in event_rows()
        ),
        key=repr,
    )


def test_a_consumer_cannot_call_remap_struct(mesh: Mesh):
    """The scan's own remap_struct is allowed only inside meshsim's storage scans."""
    with pytest.raises(QueryError, match="remap_struct"):
        mesh.sql(
            "governance_admin",
            "SELECT remap_struct(s, NULL::STRUCT(a INT), {'a': 'a'}, NULL) FROM sales.events",
        )
