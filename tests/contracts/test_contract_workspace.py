"""Contracts on a built workspace: publishing refuses a breaking change without a new major
version (publish, build and producer writes), naming subscribers and derived products;
``meshsim contract export|import|diff`` through the CLI's one error boundary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from meshsim.contracts.impact import BreakingChangeError, dependents
from meshsim.mesh import Mesh
from meshsim.spec.loader import load_mesh
from tests.cli.clihelpers import assert_clean_error, run
from tests.conftest import EXAMPLE_MESH, edit

DERIVED = """\
name: region_totals
description: Order totals per region.
owner: shop-team
tables:
  - name: region_totals
    description: One row per region.
    source:
      sql: SELECT region, sum(amount) AS total FROM shop.orders GROUP BY region
    columns:
      - {name: region, type: varchar, classification: internal, description: Region.}
      - {name: total, type: "decimal(38,2)", classification: internal, description: Total.}
"""


COUNTED = """\
name: order_count
description: How many orders there are.
owner: shop-team
tables:
  - name: order_count
    description: One row.
    source: {sql: "SELECT count(*) AS orders FROM shop.orders"}
    columns:
      - {name: orders, type: bigint, classification: internal, description: Orders.}
"""


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Path, Path]:
    """The minimal mesh, with a derived product of the shop domain, built and published."""
    mesh_dir = Mesh.init(tmp_path / "mesh")
    edit(
        mesh_dir / "mesh.yaml",
        "  - name: analyst\n",
        "  - name: shop\n    description: The shop domain's own pipelines.\n  - name: analyst\n",
    )
    edit(
        mesh_dir / "mesh.yaml",
        "    - name: analyst_orders",
        "    - {name: shop_own, consumers: [shop], product: shop.orders}\n"
        "    - name: analyst_orders",
    )
    (mesh_dir / "shop" / "products" / "region_totals.yaml").write_text(DERIVED)
    (mesh_dir / "shop" / "products" / "order_count.yaml").write_text(COUNTED)
    workspace = tmp_path / "ws"
    Mesh.build(mesh_dir, workspace).close()
    return mesh_dir, workspace


def _orders(mesh_dir: Path) -> Path:
    return mesh_dir / "shop" / "products" / "orders.yaml"


def _narrow_amount(mesh_dir: Path) -> None:
    """A breaking change: the amount column narrowed."""
    edit(_orders(mesh_dir), 'type: "decimal(10,2)"', 'type: "decimal(6,2)"')


def test_publish_refuses_a_breaking_change_naming_subscribers_and_derived(shop, capsys):
    mesh_dir, workspace = shop
    _narrow_amount(mesh_dir)
    code, _, err = run(capsys, "publish", "shop.orders", "--workspace", str(workspace))
    assert_clean_error(
        code,
        err,
        "product 'shop.orders' would break its consumers: 1 breaking change(s) since its published version 1.0.0, and version 1.0.0 keeps major version 1:",
        "type narrowed shop.orders.amount: decimal(10,2) -> decimal(6,2)",
        "subscribers it would break: analyst, governance_admin, shop",
        "derived products reading the changed columns: shop.region_totals",
        "next: set 'version: 2.0.0'",
    )
    assert err.count("Error:") == 1
    with Mesh.open(workspace) as mesh:
        assert [n for n, _ in mesh.catalog.published_products("shop.orders")] == [1]


def test_a_new_major_version_publishes_the_break(shop):
    mesh_dir, workspace = shop
    _narrow_amount(mesh_dir)
    edit(_orders(mesh_dir), "owner: shop-team\n", "owner: shop-team\nversion: 2.0.0\n")
    with Mesh.open(workspace) as mesh:
        published = mesh.catalog.publish("shop.orders")
        assert published.version == 2
        diff = mesh.contract_diff("shop.orders", base="1", target="2")
    assert [(c.what, c.breaking) for c in diff.changes] == [
        ("version", False),
        ("type narrowed", True),
    ]


def test_a_build_refuses_a_breaking_change_before_writing_anything(shop):
    mesh_dir, workspace = shop
    before = json.loads((workspace / "workspace.json").read_text())["tables"]
    edit(_orders(mesh_dir), "classification: pii", "classification: internal")
    with pytest.raises(BreakingChangeError) as caught:
        Mesh.build(mesh_dir, workspace).close()
    loosened = "protection loosened shop.orders.customer_email: shop masked -> raw, analyst"
    assert loosened in str(caught.value)
    assert json.loads((workspace / "workspace.json").read_text())["tables"] == before


def test_a_write_refuses_to_publish_a_breaking_spec(shop, tmp_path: Path):
    mesh_dir, workspace = shop
    edit(_orders(mesh_dir), "nullable: false, ", "")
    rows = tmp_path / "rows.csv"
    rows.write_text(
        "order_id,customer_email,region,amount,ordered_on\n987654,a@b.c,EU,1.00,2026-01-02\n"
    )
    with Mesh.open(workspace) as mesh:
        version = mesh.published_version("shop.orders")
        with pytest.raises(BreakingChangeError, match="nullability loosened shop.orders.order_id"):
            mesh.write("shop.orders", rows, by="shop-team")
        assert mesh.published_version("shop.orders") == version


def test_changes_that_do_not_break_publish_as_before(shop):
    mesh_dir, workspace = shop
    edit(_orders(mesh_dir), "description: Who ordered.", "description: The buyer's address.")
    with Mesh.open(workspace) as mesh:
        assert mesh.catalog.publish("shop.orders").version == 2


def test_dependents_reads_tables_and_columns(shop):
    mesh_dir, _ = shop
    spec = load_mesh(mesh_dir)
    assert dependents(spec, "shop.orders") == ["shop.order_count", "shop.region_totals"]
    assert dependents(spec, "shop.orders", ["amount"]) == ["shop.region_totals"]  # no count(*)
    assert dependents(spec, "shop.orders", ["customer_email"]) == []
    assert dependents(spec, "shop.region_totals") == []


def test_export_import_export_through_the_cli(shop, capsys, tmp_path: Path):
    mesh_dir, workspace = shop
    out = tmp_path / "orders.odcs.yaml"
    code, _, err = run(
        capsys,
        "contract",
        "export",
        "shop.orders",
        "--workspace",
        str(workspace),
        "--out",
        str(out),
    )
    assert code == 0, err
    data = yaml.safe_load(out.read_text())
    assert data["status"] == "active"
    assert data["servers"][0]["path"] == str((workspace / "accounts" / "shop").resolve())
    before = load_mesh(mesh_dir).product("shop.orders")
    code, stdout, err = run(
        capsys, "contract", "import", str(out), "--domain", "shop", "--mesh", str(mesh_dir)
    )
    assert code == 0, err
    assert "updated product 'shop.orders'" in stdout
    after = load_mesh(mesh_dir).product("shop.orders")
    assert before is not None and after is not None and after.product == before.product
    code, again, _ = run(capsys, "contract", "export", "shop.orders", "--workspace", str(workspace))
    assert code == 0 and again == out.read_text()
    code, stdout, _ = run(capsys, "contract", "diff", "shop.orders", "--workspace", str(workspace))
    assert code == 0 and "no changes" in stdout


def test_import_creates_a_product_that_validates_and_builds(shop, tmp_path: Path):
    mesh_dir, workspace = shop
    with Mesh.open(workspace) as mesh:
        text = mesh.export_contract("shop.orders")
    renamed = text.replace("id: shop.orders", "id: shop.orders_copy")
    renamed = renamed.replace("name: orders\n", "name: orders_copy\n", 1)
    renamed = renamed.replace("dataProduct: orders\n", "dataProduct: orders_copy\n")
    renamed = renamed.replace("- name: orders\n", "- name: orders_copy\n")
    renamed = renamed.replace("physicalName: shop.orders\n", "physicalName: shop.orders_copy\n")
    file = tmp_path / "copy.yaml"
    file.write_text(renamed)
    imported = Mesh.import_contract(file, domain="shop", mesh_dir=mesh_dir)
    assert imported.created and imported.ref == "shop.orders_copy"
    assert imported.file.read_text().startswith("# Imported by 'meshsim contract import'")
    with Mesh.build(mesh_dir, workspace) as mesh:
        assert mesh.published_version("shop.orders_copy") is not None


def test_diff_against_a_contract_file_and_json(shop, capsys, tmp_path: Path):
    mesh_dir, workspace = shop
    with Mesh.open(workspace) as mesh:
        text = mesh.export_contract("shop.orders")
    file = tmp_path / "next.yaml"
    file.write_text(text.replace("physicalType: decimal(10,2)", "physicalType: decimal(12,2)"))
    code, out, err = run(
        capsys,
        "contract",
        "diff",
        "shop.orders",
        "--to",
        str(file),
        "--format",
        "json",
        "--workspace",
        str(workspace),
    )
    assert code == 0, err
    payload = json.loads(out)
    assert payload["from"] == "published version 1 (1.0.0)"
    assert payload["breaking"] == 0
    assert payload["changes"] == [
        {
            "breaking": False,
            "change": "type widened",
            "target": "shop.orders.amount",
            "detail": "decimal(10,2) -> decimal(12,2)",
        }
    ]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (
            ["contract", "export", "shop.order"],
            ["product 'shop.order' is not defined", "shop.orders"],
        ),
        (
            ["contract", "diff", "shop.orders", "--from", "7"],
            ["no published version 7", "1 (1.0.0)"],
        ),
        (["contract", "diff", "shop.orders", "--from", "3.0.0"], ["contract version 3.0.0"]),
        (["contract", "diff", "shop.orders", "--to", "nowhere.yaml"], ["'nowhere.yaml' is not"]),
        (["contract", "diff", "shop.orders", "--format", "csv"], ["'csv'"]),
        (["contract"], ["export, import or diff"]),
    ],
)
def test_bad_input_is_one_error(shop, capsys, args: list[str], needles: list[str]):
    _, workspace = shop
    extra = ["--workspace", str(workspace)] if len(args) > 1 else []
    code, _, err = run(capsys, *args, *extra)
    assert_clean_error(code, err, *needles)


def test_import_refusals_are_one_error(shop, capsys, tmp_path: Path):
    mesh_dir, workspace = shop
    with Mesh.open(workspace) as mesh:
        text = mesh.export_contract("shop.orders")
    file = tmp_path / "c.yaml"
    file.write_text(
        text.replace("  physicalType: table\n", "  physicalType: table\n  colour: red\n")
    )
    code, _, err = run(
        capsys, "contract", "import", str(file), "--domain", "shop", "--mesh", str(mesh_dir)
    )
    assert_clean_error(code, err, "schema[0].colour: not an ODCS key")
    code, _, err = run(
        capsys, "contract", "import", str(file), "--domain", "shpo", "--mesh", str(mesh_dir)
    )
    assert_clean_error(code, err, "domain 'shpo' is not defined; did you mean 'shop'?")
    file.write_text(text)
    code, _, err = run(
        capsys, "contract", "import", str(file), "--domain", "shop", "--mesh", str(tmp_path)
    )
    assert_clean_error(code, err, "no mesh.yaml")
    code, _, err = run(
        capsys, "contract", "import", str(tmp_path / "none.yaml"), "--domain", "shop"
    )
    assert_clean_error(code, err, "none.yaml")
    file.write_text("- just\n- a list\n")
    code, _, err = run(
        capsys, "contract", "import", str(file), "--domain", "shop", "--mesh", str(mesh_dir)
    )
    assert_clean_error(code, err, "a contract is a mapping of keys")


def test_the_example_mesh_exports_every_product(built_workspace: Path, capsys):
    for product in load_mesh(EXAMPLE_MESH).products():
        code, out, err = run(
            capsys, "contract", "export", product.ref, "--workspace", str(built_workspace)
        )
        assert code == 0, err
        assert yaml.safe_load(out)["id"] == product.ref


def test_subscribers_include_approved_requests_and_named_grants_only(shop):
    mesh_dir, workspace = shop
    edit(
        mesh_dir / "mesh.yaml",
        "  - name: analyst\n",
        "  - name: auditor\n    description: Reads what it asks for.\n  - name: analyst\n",
    )
    _narrow_amount(mesh_dir)
    with Mesh.open(workspace) as mesh:
        request = mesh.catalog.request(
            "auditor", "shop.orders", "monthly audit", columns=["shop.orders.amount"]
        )
        assert request.state == "approved"
        with pytest.raises(BreakingChangeError) as caught:
            mesh.catalog.publish("shop.orders")
    assert caught.value.subscribers == ["analyst", "auditor", "governance_admin", "shop"]
    assert caught.value.derived == ["shop.region_totals"]


def _set_version(mesh_dir: Path, version: str) -> None:
    text = _orders(mesh_dir).read_text()
    if "\nversion: " in text:
        text = "\n".join(
            f"version: {version}" if line.startswith("version: ") else line
            for line in text.splitlines()
        )
        _orders(mesh_dir).write_text(text + "\n")
    else:
        edit(_orders(mesh_dir), "owner: shop-team\n", f"owner: shop-team\nversion: {version}\n")


def test_a_version_lower_than_a_published_one_is_refused(shop, capsys):
    mesh_dir, workspace = shop
    _set_version(mesh_dir, "0.9.0")
    edit(_orders(mesh_dir), "description: Who ordered.", "description: The buyer.")
    code, _, err = run(capsys, "publish", "shop.orders", "--workspace", str(workspace))
    assert_clean_error(code, err, "version 0.9.0, lower than its version 1.0.0 already published")
    assert err.count("Error:") == 1
    with Mesh.open(workspace) as mesh:
        assert [n for n, _ in mesh.catalog.published_products("shop.orders")] == [1]


def test_majors_are_compared_with_the_highest_version_ever_published(shop):
    mesh_dir, workspace = shop
    _set_version(mesh_dir, "2.0.0")
    edit(_orders(mesh_dir), "description: Who ordered.", "description: The buyer.")
    with Mesh.open(workspace) as mesh:
        assert mesh.catalog.publish("shop.orders").version == 2
    _set_version(mesh_dir, "1.5.0")  # down again, with a break: refused, never a "new major"
    _narrow_amount(mesh_dir)
    with Mesh.open(workspace) as mesh, pytest.raises(Exception, match="lower than its version"):
        mesh.catalog.publish("shop.orders")
    _set_version(mesh_dir, "2.1.0")  # the same major as the highest: the break is refused
    with Mesh.open(workspace) as mesh, pytest.raises(BreakingChangeError):
        mesh.catalog.publish("shop.orders")


def test_a_contract_version_naming_several_different_publications_is_ambiguous(shop, capsys):
    mesh_dir, workspace = shop
    edit(_orders(mesh_dir), "description: Who ordered.", "description: The buyer.")
    with Mesh.open(workspace) as mesh:
        assert mesh.catalog.publish("shop.orders").version == 2
    code, _, err = run(
        capsys, "contract", "diff", "shop.orders", "--from", "1.0.0", "--workspace", str(workspace)
    )
    assert_clean_error(code, err, "contract version 1.0.0", "published versions 1, 2", "--from 2")


def test_the_refusal_lists_derived_products_not_their_tables(shop):
    mesh_dir, workspace = shop
    (mesh_dir / "shop" / "products" / "region_report.yaml").write_text(
        DERIVED.replace(
            "name: region_totals\ndescription", "name: region_report\ndescription"
        ).replace("  - name: region_totals", "  - name: region_sums")
    )
    Mesh.build(mesh_dir, workspace).close()
    _narrow_amount(mesh_dir)
    with Mesh.open(workspace) as mesh, pytest.raises(BreakingChangeError) as caught:
        mesh.catalog.publish("shop.orders")
    assert caught.value.derived == ["shop.region_report", "shop.region_totals"]


def test_the_refusal_names_consumers_whose_tag_grant_it_cuts(shop):
    mesh_dir, workspace = shop
    edit(_orders(mesh_dir), "tags: {confidentiality: internal}", "tags: {confidentiality: public}")
    edit(
        mesh_dir / "mesh.yaml",
        "      consumers: [analyst]\n      product: shop.orders",
        "      consumers: [shop]\n      product: shop.orders",
    )
    # the analyst now reads shop.orders by its tag grant only (confidentiality=public): a
    # loosening for it (denied -> raw), so a new major version
    _set_version(mesh_dir, "2.0.0")
    Mesh.build(mesh_dir, workspace).close()
    edit(_orders(mesh_dir), "tags: {confidentiality: public}", "tags: {confidentiality: internal}")
    with Mesh.open(workspace) as mesh, pytest.raises(BreakingChangeError) as caught:
        mesh.catalog.publish("shop.orders")
    assert {c.what for c in caught.value.changes} == {"access removed"}
    assert {c.consumers for c in caught.value.changes} == {("analyst",)}
    assert "analyst" in caught.value.subscribers  # named by no grant on it, only by its tags
