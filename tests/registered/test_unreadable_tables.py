"""One registered table that cannot be read, or that declares no columns, breaks nothing else
(issue 11, finding 5): queries of the other tables run, the table itself is one clear error,
and ``validate`` reports the real problem only, not spurious errors for the policies that
name its columns."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from meshsim.errors import MeshsimError
from meshsim.mesh import Mesh, validate
from tests.conftest import EXAMPLE_MESH, edit
from tests.storage.corpus import HandTable, add

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string())])

PRODUCT = """\
name: lake
owner: supply-chain
description: Tables another team writes, registered in place without declared columns.
tags: {confidentiality: internal, channel: b2b}
production: {method: external}
tables:
  - name: broken
    description: A reader feature from the future.
    source: {location: '{lake}/broken'}
  - name: late
    description: Readable, registered after the build.
    source: {location: '{lake}/late'}
"""
POLICIES = {
    "  tag_grants:\n": """\
    - name: planner_lake
      consumers: [supply_planner]
      product: supply.lake
      exclude_columns: [supply.broken.name]

  tag_grants:\n""",
    "  masks:\n": """\
  masks:
    - name: broken_id_hidden
      consumers: [supply_planner]
      columns: [supply.broken.id]
      function: nullify
""",
    "  row_filters:\n": """\
  row_filters:
    - name: planner_broken
      table: supply.broken
      consumers: [supply_planner]
      predicate: id > 3 AND id IN (SELECT ps_partkey FROM supply.partsupp)
    - name: planner_parts_in_broken
      table: supply.part
      consumers: [supply_planner]
      predicate: p_partkey NOT IN (SELECT id FROM supply.broken)
""",
}


def _table(root: Path, features: list[str]) -> None:
    table = HandTable(root, SCHEMA, reader_features=features)
    root.mkdir(parents=True)
    table.commit(add(table.data_file(pa.table({"id": [1, 5], "name": ["a", "b"]}, SCHEMA))))


def add_lake(mesh_dir: Path, lake: Path) -> None:
    _table(lake / "broken", ["fooBar"])
    _table(lake / "late", [])
    product = PRODUCT.replace("{lake}", str(lake))
    (mesh_dir / "supply" / "products" / "lake.yaml").write_text(product)
    for old, new in POLICIES.items():
        edit(mesh_dir / "mesh.yaml", old, new)


@pytest.fixture(scope="module")
def late_mesh(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(mesh folder, workspace): built, then the two tables registered."""
    root = tmp_path_factory.mktemp("late")
    mesh_dir = root / "mesh"
    shutil.copytree(EXAMPLE_MESH, mesh_dir)
    workspace = root / "ws"
    Mesh.build(mesh_dir, workspace, scale=0.01).close()
    add_lake(mesh_dir, root / "lake")
    return mesh_dir, workspace


@pytest.fixture
def mesh(late_mesh: tuple[Path, Path]) -> Iterator[Mesh]:
    opened = Mesh.open(late_mesh[1])
    yield opened
    opened.close()


@pytest.mark.parametrize(
    "consumer, sql, expected",
    [
        ("governance_admin", "SELECT count(*) FROM supply.part", 2000),
        ("supply_planner", "SELECT count(*) FROM supply.partsupp", 8000),
        ("eu_marketing_analyst", "SELECT count(*) FROM customer.region", 5),
        ("finance_controller", "SELECT count(*) FROM customer.region", 5),
    ],
)
def test_other_tables_are_queried_as_before(mesh: Mesh, consumer, sql, expected):
    assert mesh.sql(consumer, sql).fetchall() == [(expected,)]


@pytest.mark.parametrize("table", ["broken", "late"])
@pytest.mark.parametrize("consumer", ["governance_admin", "supply_planner"])
def test_the_table_itself_is_one_clear_error(mesh: Mesh, table, consumer):
    for sql in (f"SELECT * FROM supply.{table}", f"SELECT count(*) FROM supply.{table}"):
        with pytest.raises(MeshsimError) as info:
            mesh.sql(consumer, sql)
        message = str(info.value)
        assert f"supply.{table}" in message and "could not plan" not in message
        assert "no grant" not in message  # no grant can cover a table without columns
        # the real reason: the reader feature; the readable one was registered after the build
        assert ("'fooBar'" if table == "broken" else "not built") in message


def test_validate_reports_only_the_unreadable_table(late_mesh):
    errors = [str(p) for p in validate(late_mesh[0]) if p.severity == "error"]
    assert len(errors) == 1, errors
    assert "supply.broken" in errors[0] and "'fooBar'" in errors[0]
