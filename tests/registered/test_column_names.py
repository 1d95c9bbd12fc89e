"""Any Delta column name (capitals, a leading digit, spaces, dots, quotes, unicode) in a table
registered in place: declared as it is, referenced in policies as ``domain.table.column``
(everything after the second dot, exactly, or double-quoted), quoted in every governed SQL
statement, and matched case-insensitively in queries as DuckDB does, always to the one
declared column."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from deltalake import DeltaTable

from meshsim.errors import AccessDenied, SpecError
from meshsim.mesh import Mesh, validate
from meshsim.spec.models import column_ref, split_column_ref
from tests.conftest import edit
from tests.registered.conftest import SCHEMA, analyst_view, event_rows


@pytest.fixture
def mesh(events_workspace: Path) -> Iterator[Mesh]:
    opened = Mesh.open(events_workspace)
    yield opened
    opened.close()


def errors(mesh_dir: Path) -> list[str]:
    return [str(p) for p in validate(mesh_dir) if p.severity == "error"]


def test_select_star_names_columns_as_declared(mesh: Mesh):
    admin = mesh.sql("governance_admin", "SELECT * FROM sales.events LIMIT 1").arrow()
    assert admin.column_names == SCHEMA.names
    analyst = mesh.sql("eu_marketing_analyst", "SELECT * FROM sales.events LIMIT 1").arrow()
    assert analyst.column_names == [n for n in SCHEMA.names if n != "a.b"]


def test_names_match_case_insensitively_and_return_the_declared_column(mesh: Mesh, events_mesh):
    got = mesh.sql(
        "governance_admin",
        'SELECT id, bytetype, "SUPER NAME", "ünï" AS u, "Odd Struct"."field one" AS f, '
        '"3D_INT_LIST"[1] AS d, "a.b" FROM sales.events',
    ).arrow()
    assert got.column_names == ["id", "ByteType", "Super Name", "u", "f", "d", "a.b"]
    reference = DeltaTable(str(events_mesh[1])).to_pyarrow_table().to_pylist()
    expected = [
        {
            "id": r["id"],
            "ByteType": r["ByteType"],
            "Super Name": r["Super Name"],
            "u": r["ünï"],
            "f": (r["odd struct"] or {}).get("Field One"),
            "d": r["3d_int_list"][0] if r["3d_int_list"] else None,
            "a.b": r["a.b"],
        }
        for r in reference
    ]
    assert sorted(got.to_pylist(), key=repr) == sorted(expected, key=repr)


def test_masks_filters_and_exclusions_hold_on_odd_names(mesh: Mesh):
    got = mesh.sql(
        "eu_marketing_analyst",
        'SELECT id, "Super Name", "quote""d", "ByteType" FROM sales.events AS e '
        'WHERE e."ByteType" >= 0',
    ).arrow()
    expected = [
        {k: r[k] for k in ("id", "Super Name", 'quote"d', "ByteType")}
        for r in analyst_view(event_rows())
    ]
    assert sorted(got.to_pylist(), key=repr) == sorted(expected, key=repr)
    assert {r["Super Name"] for r in expected} == {"****"}
    with pytest.raises(AccessDenied, match=r"may not read column 'a\.b' of 'sales\.events'"):
        mesh.sql("eu_marketing_analyst", 'SELECT "A.B" FROM sales.events')


def test_explain_quotes_every_odd_name(mesh: Mesh):
    explained = mesh.session("eu_marketing_analyst").explain(
        'SELECT "Super Name", bytetype FROM sales.events'
    )
    sql = explained.governed_sql
    assert '"events"."Super Name" AS "Super Name"' in sql
    assert 'CAST(\'****\' AS TEXT) AS "quote""d"' in sql  # a plain filter: nothing can fail
    assert '"__meshsim_raw"."ByteType" <> 3' in sql
    # struct fields keep sqlglot's lower case: DuckDB matches them case-insensitively
    assert '"__meshsim_raw"."odd struct"."field one" IS DISTINCT FROM 7' in sql


@pytest.mark.parametrize(
    ("ref", "table", "column"),
    [
        ("sales.events.Super Name", "sales.events", "Super Name"),
        ('sales.events."Super Name"', "sales.events", "Super Name"),
        ("sales.events.a.b", "sales.events", "a.b"),
        ('sales.events."quote""d"', "sales.events", 'quote"d'),
        ('sales.events.quote"d', "sales.events", 'quote"d'),
        ('sales.events." padded "', "sales.events", " padded "),
        ("sales.events.3d_int_list", "sales.events", "3d_int_list"),
    ],
)
def test_column_references_split_after_the_table(ref, table, column):
    assert split_column_ref(ref) == (table, column)
    assert split_column_ref(column_ref(table, column)) == (table, column)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("sales.events", "is not a column reference"),
        ("Sales.events.x", "is not a column reference"),
        ('sales.events."a"b"', 'a quote inside a quoted column name is written ""'),
        ("sales.events.a\tb", "contains the control character"),
        ("sales.events.__MESHSIM_visible", "starts with '__meshsim', which meshsim reserves"),
        ("sales.events.", "a column name may not be empty"),
    ],
)
def test_bad_column_references_are_refused(ref, message):
    with pytest.raises(ValueError, match=message):
        split_column_ref(ref)


def test_a_policy_naming_a_column_in_the_wrong_case_is_refused(events_mesh, tmp_path):
    mesh_dir = tmp_path / "mesh"
    shutil.copytree(events_mesh[0], mesh_dir)
    edit(mesh_dir / "mesh.yaml", 'sales.events."Super Name"', "sales.events.super name")
    assert any(
        "column 'sales.events.super name' is not defined; did you mean 'Super Name'?" in e
        for e in errors(mesh_dir)
    ), errors(mesh_dir)


def test_columns_differing_only_by_case_are_refused(events_mesh, tmp_path):
    mesh_dir = tmp_path / "mesh"
    shutil.copytree(events_mesh[0], mesh_dir)
    edit(
        mesh_dir / "sales" / "products" / "events.yaml",
        "      - {name: id,",
        "      - {name: NOTE, type: string}\n      - {name: id,",
    )
    with pytest.raises(SpecError, match="columns 'NOTE' and 'note' differ only by case"):
        validate(mesh_dir)


def test_a_declared_name_must_match_the_delta_name_exactly(events_mesh, tmp_path):
    mesh_dir = tmp_path / "mesh"
    shutil.copytree(events_mesh[0], mesh_dir)
    edit(mesh_dir / "sales" / "products" / "events.yaml", "{name: ByteType,", "{name: bytetype,")
    assert any(
        "column 'bytetype' is not in" in e and "it has 'ByteType' (names are matched exactly)" in e
        for e in errors(mesh_dir)
    ), errors(mesh_dir)


def test_a_request_for_odd_columns_grants_exactly_them(mesh: Mesh):
    request = mesh.catalog.request(
        "external_partner",
        "sales.events",
        "partner reporting",
        columns=['"Super Name"', "events.a.b", "sales.events.ByteType"],
    )
    assert set(request.granted_columns) == {
        "sales.events.Super Name",
        "sales.events.a.b",
        "sales.events.ByteType",
    }
    got = mesh.sql("external_partner", "SELECT * FROM sales.events").arrow()
    assert got.column_names == ["ByteType", "Super Name", "a.b"]


def test_a_name_spelled_differently_in_two_tables_keeps_each_spelling(events_mesh, tmp_path):
    import pyarrow as pa
    from deltalake import write_deltalake

    mesh_dir = tmp_path / "mesh"
    shutil.copytree(events_mesh[0], mesh_dir)
    other = tmp_path / "other"
    write_deltalake(
        other, pa.table({"ID": pa.array([1, 2, 99], pa.int64()), "Note": ["a", "b", "c"]})
    )
    (mesh_dir / "sales" / "products" / "other.yaml").write_text(
        "name: other\nowner: sales-ops\ndescription: Other.\nproduction: {method: external}\n"
        f"tables:\n  - name: other\n    description: O.\n    source: {{location: '{other}'}}\n"
        "    columns:\n"
        "      - {name: ID, type: bigint, classification: internal, description: I.}\n"
        "      - {name: Note, type: string, classification: internal, description: N.}\n"
    )
    mesh = Mesh.build(mesh_dir, tmp_path / "ws", scale=0.01)
    try:
        star = mesh.sql("governance_admin", "SELECT * FROM sales.other").arrow()
        assert star.column_names == ["ID", "Note"]
        joined = mesh.sql(
            "governance_admin",
            "SELECT o.id, e.id, o.note, e.note FROM sales.other AS o "
            "JOIN sales.events AS e ON e.id = o.id ORDER BY o.id",
        )
        assert joined.arrow().column_names == ["ID", "id", "Note", "note"]
        notes = {r["id"]: r["note"] for r in event_rows()}
        assert joined.fetchall() == [(1, 1, "a", notes[1]), (2, 2, "b", notes[2])]
    finally:
        mesh.close()
