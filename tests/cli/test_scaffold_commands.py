"""meshsim init, new domain, new product: a mesh from an empty folder in a few commands."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from meshsim.mesh import validate
from meshsim.storage import delta
from tests.cli.clihelpers import assert_clean_error, run
from tests.conftest import edit

CUSTOMERS = (
    "customer_id,email,Full Name,signup,score\n1,a@x.com,Ann,2024-01-02,1.5\n2,,Bob,2024-03-04,\n"
)


@pytest.fixture
def in_tmp(tmp_path: Path):
    before = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(before)


def test_from_an_empty_folder_to_a_governed_query(capsys, in_tmp: Path):
    """init, new product --from a CSV, edit one policy, build, sql --as: all with defaults."""
    assert run(capsys, "init")[0] == 0
    Path("customers.csv").write_text(CUSTOMERS)
    code, out, err = run(capsys, "new", "product", "shop.customers", "--from", "customers.csv")
    assert code == 0, err
    assert "customer_id bigint, email varchar, full_name varchar, signup date, score double" in out
    edit(
        Path("domains/mesh.yaml"),
        "      product: shop.orders\n",
        "      product: shop.orders\n"
        "    - name: analyst_customers\n      consumers: [analyst]\n      tables: [shop.customers]\n",
    )
    code, out, err = run(capsys, "validate")
    assert code == 0, err
    assert "still to be written" in err  # the TODO descriptions, as warnings
    code, out, err = run(capsys, "build", "--workspace", "ws")
    assert code == 0, err
    code, out, err = run(
        capsys,
        "sql",
        "--workspace",
        "ws",
        "--as",
        "analyst",
        "--format",
        "csv",
        "SELECT customer_id, email, full_name, signup FROM shop.customers ORDER BY 1",
    )
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "customer_id,email,full_name,signup"
    first = lines[1].split(",")
    assert first[0] == "1" and first[3] == "2024-01-02"
    assert "@" not in first[1] and len(first[1]) == 64  # pii by its name: hashed by the mask
    assert "Ann" not in first[2]  # full_name too


def test_init_minimal_validates_and_builds(tmp_path: Path):
    from meshsim.mesh import Mesh

    root = Mesh.init(tmp_path / "m")
    assert [p for p in validate(root) if p.severity == "error"] == []
    with Mesh.build(root, tmp_path / "ws") as mesh:
        assert mesh.sql("analyst", "SELECT DISTINCT region FROM shop.orders").fetchall() == [
            ("EU",)
        ]
    text = (root / "mesh.yaml").read_text()
    for kind in ("grants:", "tag_grants:", "masks:", "row_filters:", "admin: true", "tags:"):
        assert kind in text
    assert (root / "README.md").is_file()
    assert (root / "shop" / "data" / "orders.csv").stat().st_size < 16 * 1024


def test_init_retail_is_the_example_mesh(tmp_path: Path):
    from meshsim.mesh import Mesh

    root = Mesh.init(tmp_path / "r", example="retail")
    assert sorted(p.name for p in root.iterdir()) == ["customer", "mesh.yaml", "sales", "supply"]
    assert [p for p in validate(root) if p.severity == "error"] == []


def test_init_refuses_a_folder_that_is_not_empty(capsys, tmp_path: Path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "notes.txt").write_text("mine")
    code, _, err = run(capsys, "init", str(tmp_path / "m"))
    assert_clean_error(code, err, "is not empty", "never overwrites")
    assert (tmp_path / "m" / "notes.txt").read_text() == "mine"
    assert sorted(os.listdir(tmp_path / "m")) == ["notes.txt"]
    code, _, err = run(capsys, "init", str(tmp_path / "n"), "--example", "retial")
    assert_clean_error(code, err, "example 'retial' is not defined; did you mean 'retail'?")


def test_new_domain_and_its_errors(capsys, tmp_path: Path):
    from meshsim.mesh import Mesh

    mesh = str(Mesh.init(tmp_path / "m"))
    code, out, err = run(
        capsys, "new", "domain", "marketing", "--owner", "mkt-team", "--mesh", mesh
    )
    assert code == 0, err
    domain = yaml.safe_load((tmp_path / "m" / "marketing" / "domain.yaml").read_text())
    assert domain == {
        "name": "marketing",
        "owner_team": "mkt-team",
        "description": "TODO: describe",
    }
    for args, needle in [
        (("marketing",), "domain 'marketing' already exists"),
        (("Marketing",), "domain name 'Marketing' is not valid"),
        (("x", "--owner", "two words"), "owner team 'two words' is not valid"),
    ]:
        code, _, err = run(capsys, "new", "domain", *args, "--mesh", mesh)
        assert_clean_error(code, err, needle)
    code, _, err = run(capsys, "new", "domain", "x", "--mesh", str(tmp_path))
    assert_clean_error(code, err, "no mesh.yaml in")
    code, _, err = run(capsys, "new")
    assert_clean_error(code, err, "say what to add")


def test_new_product_errors(capsys, tmp_path: Path):
    from meshsim.mesh import Mesh

    mesh = str(Mesh.init(tmp_path / "m"))
    data = tmp_path / "c.csv"
    data.write_text(CUSTOMERS)
    for ref, source, needle in [
        ("shopp.c", data, "domain 'shopp' is not defined; did you mean 'shop'?"),
        ("shop.orders", data, "product 'shop.orders' already exists"),
        ("shop", data, "'shop' is not DOMAIN.PRODUCT"),
        ("shop.Bad", data, "product name 'Bad' is not valid"),
        ("shop.c", tmp_path / "nope.csv", "does not exist"),
        ("shop.c", tmp_path / "m" / "mesh.yaml", "cannot tell the format"),
    ]:
        code, _, err = run(capsys, "new", "product", ref, "--from", str(source), "--mesh", mesh)
        assert_clean_error(code, err, needle)
    assert not (tmp_path / "m" / "shop" / "products" / "c.yaml").exists()


def _columns(file: Path) -> list[tuple]:
    product = yaml.safe_load(file.read_text())
    table = product["tables"][0]
    return [
        (c["name"], c["type"], c.get("nullable", True), c["classification"])
        for c in table["columns"]
    ]


@pytest.mark.parametrize("kind", ["csv", "parquet", "ndjson", "folder", "delta"])
def test_new_product_infers_columns_and_builds_at_once(tmp_path: Path, kind: str):
    from meshsim.mesh import Mesh

    root = Mesh.init(tmp_path / "m")
    table = pa.table(
        {
            "id": pa.array([1, 2], pa.int64()),
            "email": ["a@x", None],
            "day": pa.array([19000, 19001], pa.date32()),
        }
    )
    if kind == "csv":
        source = tmp_path / "t.csv"
        source.write_text("id,email,day\n1,a@x,2022-01-08\n2,,2022-01-09\n")
    elif kind == "parquet":
        source = tmp_path / "t.parquet"
        pq.write_table(table, source)
    elif kind == "ndjson":
        source = tmp_path / "t.ndjson"
        source.write_text(
            '{"id":1,"email":"a@x","day":"2022-01-08"}\n{"id":2,"email":null,"day":"2022-01-09"}\n'
        )
    elif kind == "folder":
        source = root / "shop" / "incoming"
        source.mkdir()
        pq.write_table(table.slice(0, 1), source / "part-0.parquet")
        pq.write_table(table.slice(1, 1), source / "part-1.parquet")
    else:
        source = tmp_path / "t_delta"
        delta.write(source, table, mode="create", table="t")
    made = Mesh.new_product("shop.things", from_path=source, mesh_dir=root)
    nullable_id = kind == "delta"  # a Delta schema says nullable; files are read for NULLs
    assert _columns(made.file) == [
        ("id", "bigint", nullable_id, "internal"),
        ("email", "varchar", True, "pii"),
        ("day", "date", nullable_id, "internal"),
    ]
    if kind == "folder":
        assert yaml.safe_load(made.file.read_text())["tables"][0]["source"] == {
            "parquet": "shop/incoming"
        }
    assert [p for p in validate(root) if p.severity == "error"] == []
    with Mesh.build(root, tmp_path / "ws") as mesh:
        rows = mesh.sql("governance_admin", "SELECT id, email FROM shop.things ORDER BY id")
        assert rows.fetchall() == [(1, "a@x"), (2, None)]
