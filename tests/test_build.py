from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from meshsim.errors import SpecError
from meshsim.mesh import Mesh
from meshsim.storage import delta
from tests.conftest import EXAMPLE_MESH, edit

SF001_ROWS = {
    "customer.customer": 1500,
    "customer.nation": 25,
    "customer.region": 5,
    "sales.customer_revenue": 1000,  # the customers with an order line not returned
    "sales.orders": 15000,
    "sales.lineitem": 60175,
    "supply.part": 2000,
    "supply.supplier": 100,
    "supply.partsupp": 8000,
}


def test_build_writes_every_table_into_its_domain_account(built_workspace: Path):
    mesh = Mesh.open(built_workspace)
    infos = {t.ref: t for t in mesh.tables()}
    assert {ref: t.rows for ref, t in infos.items()} == SF001_ROWS
    for ref, info in infos.items():
        domain, table = ref.split(".")
        assert info.location == str(built_workspace.resolve() / "accounts" / domain / table)
        assert info.version == 0 and not info.external
    assert (built_workspace / "governance" / "mesh.key").stat().st_mode & 0o077 == 0


def test_built_data_equals_the_generated_data(built_workspace: Path):
    mesh = Mesh.open(built_workspace)
    generated = pq.read_table(built_workspace / "staging" / "tpch-sf0.01" / "customer.parquet")
    stored = delta.read_table(mesh.locate("customer.customer"), table="customer.customer")
    assert stored.num_rows == generated.num_rows
    key = "c_custkey"
    a = sorted(zip(generated[key].to_pylist(), generated["c_phone"].to_pylist(), strict=True))
    b = sorted(zip(stored[key].to_pylist(), stored["c_phone"].to_pylist(), strict=True))
    assert a == b
    assert str(stored.schema.field("c_acctbal").type) == "decimal128(15, 2)"


def test_rebuild_is_idempotent_and_a_new_scale_makes_a_new_version(tmp_path: Path):
    ws = tmp_path / "ws"
    Mesh.build(EXAMPLE_MESH, ws, scale=0.01)
    again = Mesh.build(EXAMPLE_MESH, ws, scale=0.01).last_build
    assert {t.action for t in again.tables} == {"unchanged"}
    bigger = Mesh.build(EXAMPLE_MESH, ws, scale=0.02)
    assert {t.version for t in bigger.last_build.tables} == {1}
    history = bigger.history("sales.orders")
    assert [h.version for h in history] == [1, 0]
    assert bigger.snapshot("sales.orders").num_records == 30000
    assert bigger.snapshot("sales.orders", version=0).num_records == 15000


def test_interrupted_build_leaves_valid_tables_and_resumes(tmp_path: Path, monkeypatch):
    import meshsim.build as build_module

    ws = tmp_path / "ws"
    real_write = build_module._write_table
    calls = {"n": 0}

    def failing_write(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real_write(*args, **kwargs)

    monkeypatch.setattr(build_module, "_write_table", failing_write)
    with pytest.raises(KeyboardInterrupt):
        Mesh.build(EXAMPLE_MESH, ws, scale=0.01)
    state = json.loads((ws / "workspace.json").read_text())
    # written, but not published: nothing is visible until the build completes
    assert state["tables"] == {}
    assert sorted(state["pending"]) == ["customer.customer", "customer.nation", "customer.region"]
    for ref in state["pending"]:
        assert delta.latest_version(state["pending"][ref]["location"]) == 0
    monkeypatch.setattr(build_module, "_write_table", real_write)
    resumed = Mesh.build(EXAMPLE_MESH, ws, scale=0.01).last_build
    actions = {t.ref: t.action for t in resumed.tables}
    assert actions["customer.customer"] == "unchanged"
    assert actions["sales.orders"] == "written"


def test_invalid_mesh_writes_nothing(mesh_copy: Path, tmp_path: Path):
    edit(
        mesh_copy / "mesh.yaml",
        "consumers: [supply_planner]\n      tables:",
        "consumers: [supply_planer]\n      tables:",
    )
    with pytest.raises(SpecError, match="consumer 'supply_planer' is not defined"):
        Mesh.build(mesh_copy, tmp_path / "ws", scale=0.01)
    assert not (tmp_path / "ws").exists()


def test_existing_delta_table_is_registered_in_place(mesh_copy: Path, tmp_path: Path):
    import pyarrow as pa

    external = tmp_path / "spark-wrote-this" / "promotions"
    data = pa.table({"promo_id": pa.array([1, 2], pa.int64()), "promo_name": ["spring", "summer"]})
    delta.write(external, data, mode="create", column_mapping=True, table="sales.promotions")
    product = mesh_copy / "sales" / "products" / "promotions.yaml"
    product.write_text(
        "name: promotions\nowner: sales-ops\ndescription: Promotions run by another team.\n"
        "production: {method: external}\ntables:\n  - name: promotions\n"
        f"    source: {{location: {external}}}\n    columns:\n"
        "      - {name: promo_id, type: bigint, classification: internal}\n"
        "      - {name: promo_name, type: varchar, classification: internal}\n"
    )
    before = sorted(p.name for p in external.rglob("*"))
    mesh = Mesh.build(mesh_copy, tmp_path / "ws", scale=0.01)
    actions = {t.ref: t.action for t in mesh.last_build.tables}
    assert actions["sales.promotions"] == "registered"
    assert not (tmp_path / "ws" / "accounts" / "sales" / "promotions").exists()
    assert sorted(p.name for p in external.rglob("*")) == before
    snapshot = mesh.snapshot("sales.promotions")
    assert snapshot.column_mapping_mode == "name"
    assert [c.name for c in snapshot.columns] == ["promo_id", "promo_name"]


def test_registered_location_must_be_a_delta_table(mesh_copy: Path, tmp_path: Path):
    product = mesh_copy / "sales" / "products" / "promotions.yaml"
    product.write_text(
        "name: promotions\nowner: sales-ops\ntables:\n  - name: promotions\n"
        f"    source: {{location: {tmp_path / 'nothing-here'}}}\n"
    )
    with pytest.raises(SpecError, match="does not exist \\(no _delta_log with commits\\)"):
        Mesh.build(mesh_copy, tmp_path / "ws", scale=0.01)


def test_registered_table_columns_must_match(mesh_copy: Path, tmp_path: Path):
    import pyarrow as pa

    external = tmp_path / "ext"
    delta.write(
        external, pa.table({"promo_id": pa.array([1], pa.int64())}), mode="create", table="x.y"
    )
    product = mesh_copy / "sales" / "products" / "promotions.yaml"
    product.write_text(
        "name: promotions\nowner: sales-ops\ndescription: Promotions.\ntables:\n"
        f"  - name: promotions\n    source: {{location: {external}}}\n    columns:\n"
        "      - {name: promo_id, type: integer, classification: internal}\n"
        "      - {name: promo_name, type: varchar, classification: internal}\n"
    )
    with pytest.raises(SpecError) as info:
        Mesh.build(mesh_copy, tmp_path / "ws", scale=0.01)
    assert info.value.problems == [
        f"{product}:8: error: table 'sales.promotions': column 'promo_id' is declared integer but "
        f"is bigint in '{external}'",
        f"{product}:9: error: table 'sales.promotions': column 'promo_name' is not in "
        f"'{external}' (its columns: promo_id bigint)",
    ]


@pytest.mark.parametrize(
    ("ref", "order"),
    [
        ("sales.lineitem", ["l_shipdate", "l_orderkey", "l_linenumber"]),
        ("sales.orders", ["o_orderdate", "o_orderkey"]),
    ],
)
def test_a_table_is_stored_in_its_declared_sort_order(
    built_workspace: Path, ref: str, order: list[str]
):
    """The example mesh declares ``sort_by`` on its date-filtered tables: the rows are stored
    in that order, ties in primary key order (the same files on every build), so a reader
    skips the row groups a date range excludes."""
    mesh = Mesh.open(built_workspace)
    stored = [
        row
        for file in mesh.snapshot(ref).files
        for row in zip(*pq.read_table(file.path, columns=order).to_pydict().values(), strict=True)
    ]
    assert len(stored) == SF001_ROWS[ref]
    assert stored == sorted(stored)


def test_a_table_without_a_declared_order_is_stored_as_its_source_gave_it(
    built_workspace: Path,
):
    mesh = Mesh.open(built_workspace)
    (file,) = mesh.snapshot("customer.customer").files
    stored = pq.read_table(file.path, columns=["c_custkey"])["c_custkey"].to_pylist()
    generated = pq.read_table(built_workspace / "staging" / "tpch-sf0.01" / "customer.parquet")
    assert stored == generated["c_custkey"].to_pylist()


def test_a_sort_column_that_is_not_a_column_is_refused(mesh_copy: Path, tmp_path: Path):
    edit(
        mesh_copy / "sales" / "products" / "order_history.yaml",
        "sort_by: [l_shipdate]",
        "sort_by: [l_shipdat]",
    )
    with pytest.raises(SpecError, match="sort_by column 'l_shipdat' is not a column.*l_shipdate"):
        Mesh.build(mesh_copy, tmp_path / "ws", scale=0.01)
    assert not (tmp_path / "ws").exists()
