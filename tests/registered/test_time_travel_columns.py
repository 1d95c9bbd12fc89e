"""Time travel to a version whose schema differs from the published one (issue 11, findings 3
and 4), on tables registered in place.

Policies name the published version's columns, so an old version is read under those names,
each matched to the old version's column by its physical identity (column mapping's physical
name or field id; the name itself without column mapping): a mask on ``ssn`` masks the data
``ssn`` holds now, whatever the column was called then. ``SELECT *`` at an old version gives
the columns that existed then, and naming one that did not is an error naming it and the
version.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from meshsim.errors import QueryError
from meshsim.mesh import Mesh
from tests.conftest import EXAMPLE_MESH, edit

SSNS = ["123-45-6789", "987-65-4321"]

PRODUCT = """\
name: history
owner: supply-chain
description: Tables whose schema changed over time, registered in place.
tags: {confidentiality: internal, channel: b2b}
production: {method: external}
tables:
  - name: swapped
    description: ssn and note swapped their names at version 1.
    source: {location: '{lake}/swapped'}
    columns:
      - {name: id, type: bigint, classification: internal, description: Id.}
      - {name: ssn, type: varchar, classification: pii, description: SSN.}
      - {name: note, type: varchar, classification: internal, description: Note.}
  - name: renamed
    description: secret renamed tax_id, x dropped and added again, at version 1.
    source: {location: '{lake}/renamed'}
    columns:
      - {name: id, type: bigint, classification: internal, description: Id.}
      - {name: tax_id, type: varchar, classification: pii, description: Tax id.}
      - {name: x, type: bigint, classification: internal, description: X.}
  - name: evolved
    description: b added at version 1.
    source: {location: '{lake}/evolved'}
    columns:
      - {name: id, type: bigint, classification: internal, description: Id.}
      - {name: a, type: varchar, classification: internal, description: A.}
      - {name: b, type: integer, classification: internal, description: B.}
  - name: unmapped
    description: column mapping removed at version 1.
    source: {location: '{lake}/unmapped'}
    columns:
      - {name: id, type: bigint, classification: internal, description: Id.}
"""
GRANT = """\
    - name: planner_history
      consumers: [supply_planner]
      product: supply.history
"""
ROW_FILTER = """\
    - name: planner_evolved
      table: supply.evolved
      consumers: [supply_planner]
      predicate: id <> 2 AND coalesce(b, 0) <> 20
"""


def _commit_schema(location: Path, change: Any) -> None:
    """A metaData-only commit: the latest schema, changed by ``change(fields, metadata)``."""
    log = location / "_delta_log"
    commits = sorted(log.glob("*.json"))
    metadata = None
    for commit in commits:
        for line in commit.read_text().splitlines():
            if line.strip() and "metaData" in json.loads(line):
                metadata = json.loads(line)["metaData"]
    assert metadata is not None
    schema = json.loads(metadata["schemaString"])
    change(schema["fields"], metadata)
    metadata["schemaString"] = json.dumps(schema)
    version = int(commits[-1].name[:20]) + 1
    lines = [{"commitInfo": {"timestamp": 1_800_000_000_000, "operation": "SET TBLPROPERTIES"}}]
    lines.append({"metaData": metadata})
    (log / f"{version:020d}.json").write_text("\n".join(json.dumps(x) for x in lines) + "\n")


def write_lake(lake: Path) -> None:
    from deltalake import write_deltalake

    name_mode = {"delta.columnMapping.mode": "name"}
    # swapped: v0 note holds the SSNs and ssn some text; v1 swaps the two logical names
    write_deltalake(
        lake / "swapped",
        pa.table({"id": pa.array([1, 2], pa.int64()), "note": SSNS, "ssn": ["hello", "world"]}),
        configuration=name_mode,
    )

    def swap(fields: list[dict[str, Any]], metadata: dict[str, Any]) -> None:
        for f in fields:
            f["name"] = {"note": "ssn", "ssn": "note"}.get(f["name"], f["name"])

    _commit_schema(lake / "swapped", swap)
    # renamed: v0 secret and x; v1 secret is renamed tax_id, x dropped and a new x added
    write_deltalake(
        lake / "renamed",
        pa.table(
            {
                "id": pa.array([1, 2], pa.int64()),
                "secret": ["tax-1", "tax-2"],
                "x": pa.array([100, 200], pa.int64()),
            }
        ),
        configuration=name_mode,
    )

    def rename(fields: list[dict[str, Any]], metadata: dict[str, Any]) -> None:
        top = int(metadata["configuration"]["delta.columnMapping.maxColumnId"]) + 1
        fields[:] = [f for f in fields if f["name"] != "x"]
        for f in fields:
            if f["name"] == "secret":
                f["name"] = "tax_id"
        fields.append(
            {
                "name": "x",
                "type": "long",
                "nullable": True,
                "metadata": {
                    "delta.columnMapping.id": top,
                    "delta.columnMapping.physicalName": "col-new-x",
                },
            }
        )
        metadata["configuration"]["delta.columnMapping.maxColumnId"] = str(top)

    _commit_schema(lake / "renamed", rename)
    # unmapped: column mapping removed at v1 (as Delta's DROP FEATURE leaves the metadata)
    write_deltalake(
        lake / "unmapped", pa.table({"id": pa.array([1], pa.int64())}), configuration=name_mode
    )

    def unmap(fields: list[dict[str, Any]], metadata: dict[str, Any]) -> None:
        for f in fields:
            f["metadata"] = {}
        metadata["configuration"] = {}

    _commit_schema(lake / "unmapped", unmap)
    # evolved: no column mapping; b arrives at v1 by schema evolution
    write_deltalake(
        lake / "evolved", pa.table({"id": pa.array([1, 2, 3], pa.int64()), "a": ["x", "y", "z"]})
    )
    write_deltalake(
        lake / "evolved",
        pa.table(
            {
                "id": pa.array([4, 5], pa.int64()),
                "a": ["p", "q"],
                "b": pa.array([10, 20], pa.int32()),
            }
        ),
        mode="append",
        schema_mode="merge",
    )


@pytest.fixture(scope="module")
def history_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("history")
    mesh_dir = root / "mesh"
    shutil.copytree(EXAMPLE_MESH, mesh_dir)
    lake = root / "lake"
    write_lake(lake)
    (mesh_dir / "supply" / "products" / "history.yaml").write_text(
        PRODUCT.replace("{lake}", str(lake))
    )
    edit(mesh_dir / "mesh.yaml", "  tag_grants:\n", GRANT + "\n  tag_grants:\n")
    edit(mesh_dir / "mesh.yaml", "  row_filters:\n", "  row_filters:\n" + ROW_FILTER)
    workspace = root / "ws"
    Mesh.build(mesh_dir, workspace, scale=0.01).close()
    return workspace


@pytest.fixture
def mesh(history_workspace: Path) -> Iterator[Mesh]:
    opened = Mesh.open(history_workspace)
    yield opened
    opened.close()


def rows(mesh: Mesh, consumer: str, sql: str) -> list[dict[str, Any]]:
    return sorted(mesh.sql(consumer, sql).arrow().to_pylist(), key=lambda r: r.get("id", 0))


# -- finding 3: masks follow the data, not the name it had ------------------------------------


def test_a_swap_of_names_keeps_the_mask_on_the_ssns(mesh: Mesh):
    now = rows(mesh, "supply_planner", "SELECT * FROM supply.swapped")
    then = rows(mesh, "supply_planner", "SELECT * FROM supply.swapped AT (VERSION => 0)")
    assert [list(r) for r in then] == [["id", "ssn", "note"]] * 2
    assert then == now  # the same physical data under the same names, masked the same way
    assert [r["note"] for r in then] == ["hello", "world"]
    shown = json.dumps(then)
    assert not any(ssn in shown for ssn in SSNS)
    assert all(len(r["ssn"]) == 64 for r in then)  # the keyed hash
    named = rows(mesh, "supply_planner", "SELECT id, note FROM supply.swapped AT (VERSION => 0)")
    assert [r["note"] for r in named] == ["hello", "world"]


def test_the_admin_reads_an_old_version_under_the_published_names(mesh: Mesh):
    then = rows(mesh, "governance_admin", "SELECT * FROM supply.swapped AT (VERSION => 0)")
    assert then == [
        {"id": 1, "ssn": SSNS[0], "note": "hello"},
        {"id": 2, "ssn": SSNS[1], "note": "world"},
    ]


def test_a_rename_keeps_the_mask_and_the_old_name_is_not_a_column(mesh: Mesh):
    then = rows(mesh, "supply_planner", "SELECT * FROM supply.renamed AT (VERSION => 0)")
    assert [list(r) for r in then] == [["id", "tax_id"]] * 2  # the old x is another column
    assert not any("tax-" in r["tax_id"] for r in then)
    assert then == rows(mesh, "supply_planner", "SELECT id, tax_id FROM supply.renamed")
    admin = rows(mesh, "governance_admin", "SELECT * FROM supply.renamed AT (VERSION => 0)")
    assert admin == [{"id": 1, "tax_id": "tax-1"}, {"id": 2, "tax_id": "tax-2"}]
    for consumer in ("supply_planner", "governance_admin"):
        with pytest.raises(QueryError, match="column 'secret' of 'supply.renamed' is called "):
            mesh.sql(consumer, "SELECT secret FROM supply.renamed AT (VERSION => 0)")
        with pytest.raises(QueryError, match="column 'secret' does not exist"):
            mesh.sql(consumer, "SELECT secret FROM supply.renamed")


def test_a_column_dropped_and_added_again_is_not_the_old_one(mesh: Mesh):
    now = rows(mesh, "governance_admin", "SELECT id, x FROM supply.renamed")
    assert now == [{"id": 1, "x": None}, {"id": 2, "x": None}]  # the new x holds no data
    with pytest.raises(QueryError) as info:
        mesh.sql("governance_admin", "SELECT x FROM supply.renamed AT (VERSION => 0)")
    message = str(info.value)
    assert "column 'x' of 'supply.renamed' did not exist at version 0" in message
    assert "id, tax_id" in message


# -- finding 4: an old version's columns are the ones it had ----------------------------------


def test_select_star_at_an_old_version_gives_the_columns_it_had(mesh: Mesh):
    then = rows(mesh, "governance_admin", "SELECT * FROM supply.evolved AT (VERSION => 0)")
    assert then == [{"id": 1, "a": "x"}, {"id": 2, "a": "y"}, {"id": 3, "a": "z"}]
    now = rows(mesh, "governance_admin", "SELECT * FROM supply.evolved")
    assert [list(r) for r in now] == [["id", "a", "b"]] * 5


def test_a_timestamp_time_travel_gives_the_columns_of_its_version(mesh: Mesh):
    from meshsim.storage import delta

    location = mesh.locate("supply.evolved")
    when = delta.commit_timestamp(location, 0, table="supply.evolved")
    sql = f"SELECT * FROM supply.evolved AT (TIMESTAMP => TIMESTAMP '{when.isoformat()}')"
    assert [list(r) for r in rows(mesh, "governance_admin", sql)] == [["id", "a"]] * 3


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT b FROM supply.evolved AT (VERSION => 0)",
        "SELECT e.b FROM supply.evolved AT (VERSION => 0) AS e",
        "SELECT id FROM supply.evolved AT (VERSION => 0) WHERE b > 1",
    ],
    ids=["select", "qualified", "where"],
)
def test_naming_a_column_an_old_version_lacked_names_it_and_the_version(mesh: Mesh, sql):
    for consumer in ("governance_admin", "supply_planner"):
        with pytest.raises(QueryError) as info:
            mesh.sql(consumer, sql)
        message = str(info.value)
        assert "column 'b' of 'supply.evolved' did not exist at version 0" in message
        assert "(its columns then: id, a)" in message


def test_two_versions_of_one_table_in_one_query(mesh: Mesh):
    joined = rows(
        mesh,
        "governance_admin",
        "SELECT old.id, old.a, new.b FROM supply.evolved AT (VERSION => 0) AS old "
        "JOIN supply.evolved AS new ON old.id = new.id",
    )
    assert joined == [{"id": i, "a": a, "b": None} for i, a in [(1, "x"), (2, "y"), (3, "z")]]
    star = mesh.sql(
        "governance_admin",
        "SELECT * FROM supply.evolved AT (VERSION => 0) AS old "
        "JOIN supply.evolved AS new ON old.id = new.id",
    )
    assert star.arrow().column_names == ["id", "a", "id", "a", "b"]


def test_a_row_filter_on_a_column_added_later_reads_it_as_null(mesh: Mesh):
    # the rows of version 0 hold no b: at the published version they read b as NULL too
    then = rows(mesh, "supply_planner", "SELECT * FROM supply.evolved AT (VERSION => 0)")
    assert then == [{"id": 1, "a": "x"}, {"id": 3, "a": "z"}]
    now = rows(mesh, "supply_planner", "SELECT id FROM supply.evolved")
    assert now == [{"id": 1}, {"id": 3}, {"id": 4}]


def test_describe_of_an_old_version_lists_its_columns(mesh: Mesh):
    described = mesh.sql(
        "supply_planner", "DESCRIBE SELECT * FROM supply.evolved AT (VERSION => 0)"
    ).arrow()
    assert described.column("column_name").to_pylist() == ["id", "a"]


def test_a_version_with_no_column_of_the_published_one_is_refused(mesh: Mesh):
    for sql in (
        "SELECT * FROM supply.unmapped AT (VERSION => 0)",
        "SELECT count(*) FROM supply.unmapped AT (VERSION => 0)",
    ):
        with pytest.raises(
            QueryError, match="'supply.unmapped' at version 0 has none of the columns"
        ):
            mesh.sql("governance_admin", sql)
