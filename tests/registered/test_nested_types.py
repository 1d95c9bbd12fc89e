"""Nested types (struct, array, map) in a table registered in place, end to end: spec,
build, scan, grants and masks on the column as a whole, field access, indexing, unnest and
row filters over nested fields, each compared with deltalake's read and the policy applied by
hand."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshsim.mesh import Mesh, validate
from tests.conftest import edit
from tests.registered.conftest import analyst_view, event_rows


@pytest.fixture
def mesh(events_workspace: Path) -> Iterator[Mesh]:
    opened = Mesh.open(events_workspace)
    yield opened
    opened.close()


def rows(mesh: Mesh, consumer: str, sql: str) -> list[dict[str, Any]]:
    return sorted(mesh.sql(consumer, sql).arrow().to_pylist(), key=repr)


def test_validate_accepts_the_nested_columns(events_mesh):
    assert [str(p) for p in validate(events_mesh[0]) if p.severity == "error"] == []


def test_admin_reads_every_nested_value_as_deltalake_does(mesh: Mesh, events_mesh):
    from deltalake import DeltaTable

    expected = DeltaTable(str(events_mesh[1])).to_pyarrow_table().to_pylist()
    assert rows(mesh, "governance_admin", "SELECT * FROM sales.events") == sorted(
        expected, key=repr
    )
    assert expected == sorted(event_rows(), key=lambda r: r["id"]) or len(expected) == 40


def test_analyst_sees_masked_nested_columns_and_filtered_rows(mesh: Mesh):
    assert rows(mesh, "eu_marketing_analyst", "SELECT * FROM sales.events") == sorted(
        analyst_view(event_rows()), key=repr
    )


def test_field_access_on_a_masked_struct_is_null(mesh: Mesh):
    got = rows(
        mesh,
        "eu_marketing_analyst",
        "SELECT s.a AS a, s['b'] AS b, e.s.a AS qualified, m['k0'] AS k0 FROM sales.events e",
    )
    assert got and all(set(r.values()) == {None} for r in got)
    count = mesh.sql(
        "eu_marketing_analyst", "SELECT count(*) FROM sales.events WHERE s.a IS NOT NULL"
    )
    assert count.fetchall() == [(0,)]


def test_field_access_indexing_and_unnest_match_the_reference(mesh: Mesh):
    sql = (
        "SELECT id, s.a AS a, s.b AS b, l[1] AS first, deep[1].x AS x, cardinality(m) AS entries "
        "FROM sales.events"
    )
    expected = [
        {
            "id": r["id"],
            "a": r["s"]["a"] if r["s"] else None,
            "b": r["s"]["b"] if r["s"] else None,
            "first": r["l"][0] if r["l"] else None,
            "x": r["deep"][0]["x"] if r["deep"] else None,
            "entries": len(r["m"]) if r["m"] is not None else None,
        }
        for r in event_rows()
    ]
    assert rows(mesh, "governance_admin", sql) == sorted(expected, key=repr)
    unnested = rows(mesh, "eu_marketing_analyst", "SELECT id, unnest(l) AS v FROM sales.events")
    visible = analyst_view(event_rows())
    assert unnested == sorted(
        ({"id": r["id"], "v": v} for r in visible for v in r["l"] or []), key=repr
    )
    lateral = rows(
        mesh,
        "eu_marketing_analyst",
        "SELECT e.id, t.v FROM sales.events AS e, unnest(e.l) AS t(v) WHERE t.v > 0",
    )
    assert lateral == sorted(
        ({"id": r["id"], "v": v} for r in visible for v in r["l"] or [] if v > 0), key=repr
    )


def test_nested_types_keep_their_type_under_masks(mesh: Mesh):
    admin = mesh.sql("governance_admin", "SELECT s, m FROM sales.events").arrow().schema
    analyst = mesh.sql("eu_marketing_analyst", "SELECT s, m FROM sales.events").arrow().schema
    assert analyst.types == admin.types


@pytest.mark.parametrize("function", ["keyed_hash", "show_last", "year_only"])
def test_validate_refuses_value_masks_on_a_nested_column(events_mesh, tmp_path, function):
    import shutil

    mesh_dir = tmp_path / "mesh"
    shutil.copytree(events_mesh[0], mesh_dir)
    extra = "\n      n: 4" if function == "show_last" else ""
    edit(
        mesh_dir / "mesh.yaml",
        "      function: nullify\n",
        f"      function: {function}{extra}\n",
    )
    errors = [str(p) for p in validate(mesh_dir) if p.severity == "error"]
    assert len(errors) == 1, errors
    assert (
        f"mask 'events_struct_hidden': {function} cannot mask the nested column "
        f'\'sales.events.s\' (STRUCT("a" INT, "b" TEXT)); a nested column is masked as a '
        f"whole: use nullify, redact or custom" in errors[0]
    )


def test_a_nested_column_is_granted_as_a_whole(events_mesh, tmp_path):
    import shutil

    mesh_dir = tmp_path / "mesh"
    shutil.copytree(events_mesh[0], mesh_dir)
    edit(
        mesh_dir / "mesh.yaml",
        "      product: sales.events\n",
        "      columns: [sales.events.id, sales.events.s.a]\n",
    )
    errors = [str(p) for p in validate(mesh_dir) if p.severity == "error"]
    assert any("sales.events.s.a" in e for e in errors), errors


def test_the_cli_shows_nested_values_as_json(events_workspace, capsys):
    from tests.cli.clihelpers import run

    sql = "SELECT id, l, deep FROM sales.events WHERE id IN (1, 3) ORDER BY id"
    code, out, err = run(
        capsys,
        "sql",
        "--workspace",
        str(events_workspace),
        "--as",
        "governance_admin",
        "--format",
        "csv",
        sql,
    )
    assert code == 0, err
    by_id = {r["id"]: r for r in event_rows()}
    lines = out.splitlines()
    assert lines[0] == "id,l,deep"
    import csv
    import json

    for line, key in zip(csv.reader(lines[1:]), (1, 3), strict=True):
        expected = by_id[key]
        assert line[0] == str(key)
        assert (json.loads(line[1]) if line[1] else None) == expected["l"]
        assert (json.loads(line[2]) if line[2] else None) == expected["deep"]
