"""An edit to a product file reaches consumers only if publishing would accept it: a product
whose files hold unpublished breaking changes is withheld from queries, ``explain``,
``access`` and ``show`` (one answer), and a rename or a moved table is a removal for the old
product's subscribers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshsim.contracts.impact import BreakingChangeError
from meshsim.contracts.live import WithheldProductError
from meshsim.mesh import Mesh
from tests.cli.clihelpers import assert_clean_error, run
from tests.conftest import edit


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Path, Path]:
    """The minimal mesh (meshsim init), built and published."""
    mesh_dir = Mesh.init(tmp_path / "mesh")
    workspace = tmp_path / "ws"
    Mesh.build(mesh_dir, workspace).close()
    return mesh_dir, workspace


def _orders(mesh_dir: Path) -> Path:
    return mesh_dir / "shop" / "products" / "orders.yaml"


def _declassify_email(mesh_dir: Path) -> None:
    edit(_orders(mesh_dir), "classification: pii", "classification: internal")


def _drop_ordered_on(mesh_dir: Path) -> None:
    text = _orders(mesh_dir).read_text()
    line = next(x for x in text.splitlines(keepends=True) if "{name: ordered_on," in x)
    _orders(mesh_dir).write_text(text.replace(line, ""))


def test_a_loosened_classification_never_reaches_a_consumer(shop, capsys):
    mesh_dir, workspace = shop
    _declassify_email(mesh_dir)
    code, out, err = run(
        capsys,
        "sql",
        "--workspace",
        str(workspace),
        "--as",
        "analyst",
        "SELECT customer_email FROM shop.orders",
    )
    assert_clean_error(
        code,
        err,
        "product 'shop.orders' is withheld from consumers",
        "protection loosened shop.orders.customer_email: analyst masked -> raw",
        "next: 'meshsim contract diff shop.orders' lists them",
        "meshsim publish shop.orders",
    )
    assert "@" not in out
    assert err.count("Error:") == 1


def test_a_deleted_column_is_refused_not_silently_gone(shop):
    mesh_dir, workspace = shop
    _drop_ordered_on(mesh_dir)
    with Mesh.open(workspace) as mesh:
        for call in (mesh.sql, mesh.explain):
            with pytest.raises(WithheldProductError, match="column removed shop.orders.ordered_on"):
                call("analyst", "SELECT order_id FROM shop.orders")


def test_access_and_show_agree_with_the_query_engine(shop):
    mesh_dir, workspace = shop
    with Mesh.open(workspace) as mesh:
        assert mesh.table_access("analyst", "shop.orders").granted
        _declassify_email(mesh_dir)
        rows = [a for a in mesh.access("analyst") if a.table == "shop.orders"]
        assert rows and not any(a.granted for a in rows)
        assert all("withheld" in c.rule for a in rows for c in a.columns)
        assert not mesh.table_access("analyst", "shop.orders").granted
        assert "shop.orders" not in [t.ref for t in mesh.tables(as_consumer="analyst")]
        with pytest.raises(WithheldProductError):
            mesh.show("shop.orders", as_consumer="analyst")
        mesh.show("shop.orders")  # the operator's view is the catalog's published version


def test_publishing_a_new_major_version_serves_it_again(shop):
    mesh_dir, workspace = shop
    _declassify_email(mesh_dir)
    with Mesh.open(workspace) as mesh:
        with pytest.raises(WithheldProductError):
            mesh.sql("analyst", "SELECT count(*) FROM shop.orders")
        edit(_orders(mesh_dir), "owner: shop-team\n", "owner: shop-team\nversion: 2.0.0\n")
        mesh.publish("shop.orders")
        assert mesh.sql("analyst", "SELECT count(*) FROM shop.orders").fetchall()[0][0] > 0


def test_non_breaking_edits_stay_live(shop):
    mesh_dir, workspace = shop
    with Mesh.open(workspace) as mesh:
        mesh.sql("analyst", "SELECT count(*) FROM shop.orders")
        edit(_orders(mesh_dir), "description: Who ordered.", "description: The buyer.")
        edit(
            _orders(mesh_dir),
            "tags: {confidentiality: internal}",
            "tags: {confidentiality: public}",
        )
        assert mesh.serving.changes("shop.orders") == []
        assert mesh.sql("analyst", "SELECT count(*) FROM shop.orders").fetchall()[0][0] > 0


@pytest.mark.parametrize(
    "text",
    [
        "SELECT * FROM shop.orders",
        "SELECT coupon FROM shop.orders",
        "DESCRIBE shop.orders",
        "SELECT count(*) FROM shop.orders o JOIN shop.orders p USING (coupon)",
    ],
)
def test_a_declared_column_the_data_lacks_is_named_not_an_engine_failure(shop, capsys, text):
    """A column added to the product file without a build: publishing would accept it (it
    is not breaking), but the version consumers read has no such column. A query that
    names it, or expands ``*`` to it, is refused naming the column (it was DuckDB's
    BinderException, withheld as an engine failure); the other columns stay readable."""
    mesh_dir, workspace = shop
    edit(
        _orders(mesh_dir),
        "      - {name: ordered_on,",
        "      - {name: coupon, type: varchar, classification: internal}\n"
        "      - {name: ordered_on,",
    )
    code, out, err = run(capsys, "sql", "--workspace", str(workspace), "--as", "analyst", text)
    assert_clean_error(
        code,
        err,
        "column 'coupon' is declared for table 'shop.orders' in product 'shop.orders', but the "
        "version consumers read (0) has no such column",
        "next: its owner runs 'meshsim validate', then 'meshsim build' to publish it",
    )
    with Mesh.open(workspace) as mesh:
        assert mesh.sql("analyst", "SELECT count(region) FROM shop.orders").fetchall()[0][0] > 0


def test_the_verdict_is_computed_once_per_spec_and_product(shop, monkeypatch):
    from meshsim.contracts import live

    mesh_dir, workspace = shop
    calls: list[str] = []
    real = live.unpublished_breaking

    def counting(con, spec, product):
        calls.append(product.ref)
        return real(con, spec, product)

    monkeypatch.setattr(live, "unpublished_breaking", counting)
    with Mesh.open(workspace) as mesh:
        for _ in range(3):
            mesh.sql("analyst", "SELECT count(*) FROM shop.orders")
        assert calls == ["shop.orders"]
        _declassify_email(mesh_dir)
        with pytest.raises(WithheldProductError):
            mesh.sql("analyst", "SELECT count(*) FROM shop.orders")
        assert calls == ["shop.orders", "shop.orders"]


def _rename_product(mesh_dir: Path, version: str | None = None) -> None:
    """shop.orders renamed shop.sales (file and name), its table kept."""
    text = _orders(mesh_dir).read_text().replace("name: orders\n", "name: sales\n", 1)
    if version:
        text = text.replace("owner: shop-team\n", f"owner: shop-team\nversion: {version}\n", 1)
    (mesh_dir / "shop" / "products" / "sales.yaml").write_text(text)
    _orders(mesh_dir).unlink()
    edit(mesh_dir / "mesh.yaml", "product: shop.orders", "product: shop.sales")


def test_a_renamed_product_dropping_a_column_is_refused_before_writing(shop):
    mesh_dir, workspace = shop
    before = json.loads((workspace / "workspace.json").read_text())["tables"]
    _drop_ordered_on(mesh_dir)
    _rename_product(mesh_dir)
    with pytest.raises(BreakingChangeError) as caught:
        Mesh.build(mesh_dir, workspace).close()
    message = str(caught.value)
    assert "table moved shop.orders: from product 'shop.orders' to 'shop.sales'" in message
    assert "column removed shop.orders.ordered_on" in message
    assert json.loads((workspace / "workspace.json").read_text())["tables"] == before
    with (
        Mesh.open(workspace) as mesh,
        pytest.raises(WithheldProductError, match="table moved shop.orders"),
    ):
        mesh.sql("analyst", "SELECT count(*) FROM shop.orders")


def test_a_moved_table_with_a_new_major_version_builds(shop):
    mesh_dir, workspace = shop
    _rename_product(mesh_dir, version="2.0.0")
    with Mesh.build(mesh_dir, workspace) as mesh:
        assert "shop.sales" in [p["product"] for p in mesh.products()]
        assert mesh.sql("analyst", "SELECT count(*) FROM shop.orders").fetchall()[0][0] > 0


def test_a_generated_table_takes_its_new_declared_schema(tmp_path: Path):
    """A TPC-H table with a column dropped under a new major version: the build wrote the
    tables before it and then died on "Cannot cast schema, number of fields does not match"
    (generated tables were written without taking the declared schema)."""
    import shutil

    from tests.conftest import EXAMPLE_MESH

    mesh_dir = tmp_path / "mesh"
    shutil.copytree(EXAMPLE_MESH, mesh_dir)
    workspace = tmp_path / "ws"
    Mesh.build(mesh_dir, workspace, scale=0.01).close()
    product = mesh_dir / "sales" / "products" / "order_history.yaml"
    text = product.read_text()
    line = next(x for x in text.splitlines(keepends=True) if "{name: o_comment," in x)
    product.write_text(text.replace(line, "").replace("owner: ", "version: 2.0.0\nowner: ", 1))
    with Mesh.build(mesh_dir, workspace) as mesh:
        columns = mesh.sql("governance_admin", "SELECT * FROM sales.orders LIMIT 1").columns
    assert "o_comment" not in columns and "o_orderkey" in columns


def test_column_mapping_with_a_timestamp_without_time_zone_is_refused_up_front(tmp_path: Path):
    """deltalake writes such a table under a protocol without the columnMapping reader
    feature ("readerFeatures [timestampNtz] does not declare 'columnMapping'")."""
    import pyarrow as pa

    from meshsim.errors import StorageError
    from meshsim.mesh import validate
    from meshsim.storage import delta

    mesh_dir = Mesh.init(tmp_path / "mesh")
    edit(
        _orders(mesh_dir),
        "    primary_key: [order_id]\n",
        "    primary_key: [order_id]\n    column_mapping: true\n",
    )
    edit(_orders(mesh_dir), "{name: ordered_on, type: date,", "{name: ordered_on, type: timestamp,")
    errors = [str(p) for p in validate(mesh_dir) if p.severity == "error"]
    assert len(errors) == 1 and "column 'ordered_on' (timestamp) holds a timestamp" in errors[0]
    edit(_orders(mesh_dir), "type: timestamp,", "type: timestamptz,")
    assert [p for p in validate(mesh_dir) if p.severity == "error"] == []
    Mesh.build(mesh_dir, tmp_path / "ws").close()
    data = pa.table({"at": pa.array([0], type=pa.timestamp("us"))})
    with pytest.raises(StorageError, match="column\\(s\\) at hold a timestamp without time zone"):
        delta.write(tmp_path / "t", data, mode="create", table="x.t", column_mapping=True)
