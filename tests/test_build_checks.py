"""`validate` and `build` run the same checks, and `build` runs all of them before it writes
anything: the lint, the publish gates, the sources (TPC-H columns and types, registered
locations) and every policy bound against the declared schemas on DuckDB."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pytest

from meshsim.cli import main
from meshsim.errors import SpecError
from meshsim.mesh import Mesh, validate
from meshsim.storage import delta
from tests.conftest import EXAMPLE_MESH, edit

PROFILES = Path("customer") / "products" / "customer_profiles.yaml"


def errors(mesh_dir: Path) -> list[str]:
    return [str(p) for p in validate(mesh_dir) if p.severity == "error"]


def refused_build(mesh_dir: Path, workspace: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        Mesh.build(mesh_dir, workspace, scale=0.01)
    return info.value.problems


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def assert_found_by_validate_and_build(mesh_dir: Path, tmp_path: Path, expected: list[str]):
    """validate reports exactly ``expected``; build reports the same and writes nothing."""
    assert errors(mesh_dir) == expected
    workspace = tmp_path / "ws"
    assert refused_build(mesh_dir, workspace) == expected
    assert not workspace.exists()


def test_column_without_classification(mesh_copy: Path, tmp_path: Path):
    product = mesh_copy / PROFILES
    edit(
        product,
        "{name: c_comment, type: varchar, classification: internal,",
        "{name: c_comment, type: varchar,",
    )
    line = line_of(product, "name: c_comment")
    assert_found_by_validate_and_build(
        mesh_copy,
        tmp_path,
        [
            f"{product}:{line}: error: product 'customer.customer_profiles' cannot be published: "
            f"column 'customer.customer.c_comment' has no classification"
        ],
    )


def test_sensitive_column_granted_to_everyone(mesh_copy: Path, tmp_path: Path):
    mesh_file = mesh_copy / "mesh.yaml"
    edit(
        mesh_file,
        "  grants:\n",
        "  grants:\n    - name: everyone_customers\n      consumers: ['*']\n"
        "      tables: [customer.customer]\n",
    )
    product = mesh_copy / PROFILES
    line = line_of(product, "name: c_acctbal")
    expected = [
        f"{product}:{line}: error: product 'customer.customer_profiles' cannot be published: "
        f"sensitive column 'customer.customer.c_acctbal' is visible unmasked to '{consumer}' "
        f"through grant everyone_customers, which does not name its consumers; add a mask, "
        f"exclude the column, or grant it to named consumers only"
        for consumer in (
            "eu_marketing_analyst",
            "finance_controller",
            "supply_planner",
            "external_partner",
            "sales",
        )
    ]
    assert_found_by_validate_and_build(mesh_copy, tmp_path, expected)


def test_declared_column_missing_from_the_generated_data(mesh_copy: Path, tmp_path: Path):
    product = mesh_copy / PROFILES
    edit(
        product,
        "      - {name: c_comment,",
        "      - {name: c_loyalty, type: bigint, classification: internal, description: Points.}\n"
        "      - {name: c_comment,",
    )
    line = line_of(product, "name: c_loyalty")
    assert_found_by_validate_and_build(
        mesh_copy,
        tmp_path,
        [
            f"{product}:{line}: error: table 'customer.customer': column 'c_loyalty' is not in "
            f"the generated TPC-H table 'customer' (its columns: c_custkey bigint, c_name varchar,"
            f" c_address varchar, c_nationkey bigint, c_phone varchar, c_acctbal decimal(15,2), "
            f"c_mktsegment varchar, c_comment varchar)"
        ],
    )


def test_declared_type_that_cannot_hold_the_data(mesh_copy: Path, tmp_path: Path):
    product = mesh_copy / PROFILES
    edit(product, "{name: c_name, type: varchar,", "{name: c_name, type: bigint,")
    edit(
        product,
        '{name: c_acctbal, type: "decimal(15,2)",',
        '{name: c_acctbal, type: "decimal(12,2)",',
    )
    name_line, balance_line = line_of(product, "name: c_name"), line_of(product, "name: c_acctbal")
    assert_found_by_validate_and_build(
        mesh_copy,
        tmp_path,
        [
            f"{product}:{name_line}: error: table 'customer.customer': column 'c_name' is declared "
            f"bigint, which cannot hold the generated varchar values; declare varchar",
            f"{product}:{balance_line}: error: table 'customer.customer': column 'c_acctbal' is "
            f"declared decimal(12,2), which cannot hold the generated decimal(15,2) values; "
            f"declare decimal(15,2)",
        ],
    )


def test_a_wider_type_is_accepted_and_written(mesh_copy: Path, tmp_path: Path):
    product = mesh_copy / "sales" / "products" / "order_history.yaml"
    edit(product, "{name: l_linenumber, type: integer,", "{name: l_linenumber, type: bigint,")
    assert errors(mesh_copy) == []
    mesh = Mesh.build(mesh_copy, tmp_path / "ws", scale=0.01)
    schema = delta.read_table(mesh.locate("sales.lineitem"), table="sales.lineitem").schema
    assert schema.field("l_linenumber").type == pa.int64()


def promotions(mesh_dir: Path, location: Path | str, columns: str = "") -> Path:
    product = mesh_dir / "sales" / "products" / "promotions.yaml"
    product.write_text(
        "name: promotions\nowner: sales-ops\ndescription: Promotions run by another team.\n"
        "production: {method: external}\ntables:\n  - name: promotions\n"
        f"    source: {{location: '{location}'}}\n    columns:\n"
        + (columns or "      - {name: promo_id, type: bigint, classification: internal}\n")
    )
    return product


@pytest.mark.parametrize(
    ("make", "why"), [(False, "does not exist"), (True, "is not a Delta table")]
)
def test_location_that_is_not_a_delta_table(mesh_copy: Path, tmp_path: Path, make, why):
    folder = tmp_path / "exports"
    if make:
        folder.mkdir()
        (folder / "promotions.csv").write_text("promo_id\n1\n")
    product = promotions(mesh_copy, folder)
    assert_found_by_validate_and_build(
        mesh_copy,
        tmp_path,
        [
            f"{product}:7: error: table 'sales.promotions': source.location '{folder}' {why} "
            f"(no _delta_log with commits)"
        ],
    )


def test_location_in_another_domains_account(mesh_copy: Path, workspace: Path, tmp_path: Path):
    stolen = workspace.resolve() / "accounts" / "customer" / "customer"
    product = promotions(mesh_copy, stolen)
    expected = [
        f"{product}:7: error: table 'sales.promotions': source.location '{stolen}' is in the "
        f"storage account of domain 'customer' of the workspace '{workspace.resolve()}'; a domain "
        f"registers only tables outside a workspace or in its own account"
    ]
    assert errors(mesh_copy) == expected
    before = delta.latest_version(stolen)
    assert refused_build(mesh_copy, workspace) == expected
    assert delta.latest_version(stolen) == before


def test_location_in_the_own_account(mesh_copy: Path, workspace: Path):
    account = workspace.resolve() / "accounts" / "sales"
    own = account / "promotions"
    delta.write(own, pa.table({"promo_id": pa.array([1], pa.int64())}), mode="create", table="s.p")
    promotions(mesh_copy, own)
    assert errors(mesh_copy) == []
    product = promotions(mesh_copy, account / "orders")
    assert errors(mesh_copy) == [
        f"{product}:7: error: table 'sales.promotions': source.location '{account / 'orders'}' "
        f"is where meshsim writes table 'sales.orders'; register another folder"
    ]


def test_location_in_the_governance_account(mesh_copy: Path, workspace: Path):
    audit = workspace.resolve() / "governance" / "system" / "audit"
    product = promotions(mesh_copy, audit)
    assert errors(mesh_copy) == [
        f"{product}:7: error: table 'sales.promotions': source.location '{audit}' is inside the "
        f"workspace '{workspace.resolve()}' but not in a domain's storage account; a domain "
        f"registers only tables outside a workspace or in its own account"
    ]


def test_registered_columns_and_types_are_checked_by_validate(mesh_copy: Path, tmp_path: Path):
    external = tmp_path / "ext"
    delta.write(
        external, pa.table({"promo_id": pa.array([1], pa.int64())}), mode="create", table="x.y"
    )
    product = promotions(
        mesh_copy,
        external,
        "      - {name: promo_id, type: integer, classification: internal}\n"
        "      - {name: promo_name, type: varchar, classification: internal}\n",
    )
    assert_found_by_validate_and_build(
        mesh_copy,
        tmp_path,
        [
            f"{product}:9: error: table 'sales.promotions': column 'promo_id' is declared integer "
            f"but is bigint in '{external}'",
            f"{product}:10: error: table 'sales.promotions': column 'promo_name' is not in "
            f"'{external}' (its columns: promo_id bigint)",
        ],
    )


def add_row_filter(mesh_dir: Path, predicate: str) -> int:
    mesh_file = mesh_dir / "mesh.yaml"
    edit(
        mesh_file,
        "  row_filters:\n",
        "  row_filters:\n    - name: partner_rows\n      table: supply.part\n"
        f'      consumers: [external_partner]\n      predicate: "{predicate}"\n',
    )
    return line_of(mesh_file, f'predicate: "{predicate}"')


def test_row_filter_that_does_not_type_check(mesh_copy: Path, tmp_path: Path):
    line = add_row_filter(mesh_copy, "p_name + 1 > 0")
    [problem] = errors(mesh_copy)
    assert problem.startswith(
        f"{mesh_copy / 'mesh.yaml'}:{line}: error: row filter 'partner_rows': predicate does not "
        f"run on the declared columns of 'supply.part' (as external_partner): Binder Error: "
        f"No function matches the given name and argument types '+(VARCHAR, INTEGER_LITERAL)'"
    )
    assert refused_build(mesh_copy, tmp_path / "ws") == [problem]
    assert not (tmp_path / "ws").exists()


def test_row_filter_with_an_unknown_column_in_a_lookup(mesh_copy: Path):
    line = add_row_filter(
        mesh_copy, "p_partkey IN (SELECT ps_partkey FROM supply.partsupp WHERE ps_availqtty > 0)"
    )
    [problem] = errors(mesh_copy)
    assert problem.startswith(
        f"{mesh_copy / 'mesh.yaml'}:{line}: error: row filter 'partner_rows': "
        f"Column 'ps_availqtty' could not be resolved"
    )


def add_custom_mask(mesh_dir: Path, expression: str) -> int:
    mesh_file = mesh_dir / "mesh.yaml"
    edit(
        mesh_file,
        "  masks:\n",
        "  masks:\n    - name: partner_names\n      consumers: [external_partner]\n"
        "      columns: [supply.part.p_name]\n      function: custom\n"
        f'      expression: "{expression}"\n',
    )
    return line_of(mesh_file, f'expression: "{expression}"')


def test_custom_mask_that_does_not_type_check(mesh_copy: Path, tmp_path: Path):
    line = add_custom_mask(mesh_copy, "{column} * 2")
    [problem] = errors(mesh_copy)
    assert problem.startswith(
        f"{mesh_copy / 'mesh.yaml'}:{line}: error: mask 'partner_names': expression does not run "
        f"on column 'supply.part.p_name' varchar (as external_partner): Binder Error: "
    )
    assert refused_build(mesh_copy, tmp_path / "ws") == [problem]


def test_custom_mask_reading_another_column(mesh_copy: Path):
    line = add_custom_mask(mesh_copy, "{column} || p_brand")
    assert errors(mesh_copy) == [
        f"{mesh_copy / 'mesh.yaml'}:{line}: error: mask 'partner_names': may read only its own "
        f"column ({{column}}) and consumer.<attribute>, not 'p_brand'"
    ]


def test_builtin_mask_on_a_column_it_cannot_mask(mesh_copy: Path):
    mesh_file = mesh_copy / "mesh.yaml"
    edit(
        mesh_file,
        "  masks:\n",
        "  masks:\n    - name: partner_years\n      consumers: [external_partner]\n"
        "      columns: [supply.part.p_name]\n      function: year_only\n",
    )
    line = line_of(mesh_file, "function: year_only")
    assert errors(mesh_copy) == [
        f"{mesh_file}:{line}: error: mask 'partner_years': year_only needs a date or timestamp "
        f"column, 'supply.part.p_name' is TEXT"
    ]


def test_a_refused_build_leaves_the_workspace_as_it_was(mesh_copy: Path, workspace: Path):
    state = json.loads((workspace / "workspace.json").read_text())
    product = mesh_copy / PROFILES
    edit(
        product,
        "{name: c_comment, type: varchar, classification: internal,",
        "{name: c_comment, type: varchar,",
    )
    edit(mesh_copy / "sales" / "products" / "order_history.yaml", "type: date", "type: integer")
    problems = refused_build(mesh_copy, workspace)
    assert len(problems) == 2
    assert json.loads((workspace / "workspace.json").read_text()) == state
    mesh = Mesh.open(workspace, mesh_dir=EXAMPLE_MESH)
    assert {t.version for t in mesh.tables()} == {0}
    assert len(mesh.catalog.products()) == 4


def test_validate_cli_lists_every_check(capsys, mesh_copy: Path):
    product = mesh_copy / PROFILES
    edit(product, "{name: c_name, type: varchar,", "{name: c_name, type: bigint,")
    add_row_filter(mesh_copy, "p_name + 1 > 0")
    code = main(["validate", "--mesh", str(mesh_copy)])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert "column 'c_name' is declared bigint" in err
    assert "row filter 'partner_rows': predicate does not run" in err
    assert re.search(r"\n2 error\(s\), \d+ warning\(s\)\n$", err)


def test_approve_refuses_a_row_filter_that_does_not_type_check(capsys, workspace: Path):
    catalog = Mesh.open(workspace).catalog
    made = catalog.request("external_partner", "customer.customer_profiles", "segments")
    code = main(
        [
            "approve",
            str(made.id),
            "--workspace",
            str(workspace),
            "--by",
            "customer-data",
            "--row-filter",
            "c_name + 1 > 0",
        ]
    )
    _, err = capsys.readouterr()
    assert code == 1
    assert err.startswith(
        "Error: row filter 'c_name + 1 > 0' does not run on the columns of 'customer.customer': "
        "Binder Error: No function matches the given name and argument types "
        "'+(VARCHAR, INTEGER_LITERAL)'"
    )
    assert catalog.get_request(made.id).state == "pending"
    approved = catalog.approve(made.id, "customer-data", row_filter="c_nationkey + 1 > 8")
    assert approved.row_filter == "c_nationkey + 1 > 8"
