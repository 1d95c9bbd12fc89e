"""Lake Formation export: the template passes cfn-lint, the equivalent API calls apply with
boto3 against moto (in process, no network) and the grants read back; what the calls grant,
read with Lake Formation's rules (grants are a union; a tag policy matches a column by its
own tags over its table's), matches meshsim's access matrix and never shows more."""

from __future__ import annotations

import json

import pytest

from meshsim.platforms.lakeformation_render import role_arn
from tests.platforms.seen import Seen, check_against_matrix

ACCOUNT = "123456789012"


def _calls(out) -> list[dict]:
    return json.loads((out / "api-calls.json").read_text().replace("ACCOUNT_ID", ACCOUNT))


def seen_by_lake_formation(calls: list[dict], mesh) -> dict[tuple[str, str], Seen]:
    table_tags: dict[tuple[str, str], dict[str, str]] = {}
    column_tags: dict[tuple[str, str, str], dict[str, str]] = {}
    filters = {}
    for call in calls:
        params = call["params"]
        if call["operation"] == "add_lf_tags_to_resource":
            tags = {t["TagKey"]: t["TagValues"][0] for t in params["LFTags"]}
            kind, body = next(iter(params["Resource"].items()))
            if kind == "Table":
                table_tags[(body["DatabaseName"], body["Name"])] = tags
            else:
                for column in body["ColumnNames"]:
                    column_tags[(body["DatabaseName"], body["Name"], column)] = tags
        elif call["operation"] == "create_data_cells_filter":
            data = params["TableData"]
            filters[(data["DatabaseName"], data["TableName"], data["Name"])] = data
    out: dict[tuple[str, str], Seen] = {}
    unfiltered: set[tuple[str, str]] = set()
    for consumer in mesh.spec.consumer_names():
        arn = role_arn(consumer, ACCOUNT)
        grants = [
            c["params"] for c in calls
            if c["operation"] == "grant_permissions"
            and c["params"]["Principal"]["DataLakePrincipalIdentifier"] == arn
            and "SELECT" in c["params"]["Permissions"]
        ]  # fmt: skip
        for grant in grants:
            kind, body = next(iter(grant["Resource"].items()))
            if kind == "TableWithColumns":
                key = (consumer, f"{body['DatabaseName']}.{body['Name']}")
                out.setdefault(key, Seen()).raw |= set(body["ColumnNames"])
                unfiltered.add(key)
            elif kind == "DataCellsFilter":
                data = filters[(body["DatabaseName"], body["TableName"], body["Name"])]
                key = (consumer, f"{body['DatabaseName']}.{body['TableName']}")
                seen = out.setdefault(key, Seen())
                seen.raw |= set(data["ColumnNames"])
                seen.filtered = "RowFilter" in data
            elif kind == "LFTagPolicy":
                wanted = {e["TagKey"]: set(e["TagValues"]) for e in body["Expression"]}
                for table in mesh.spec.tables():
                    for column in table.columns:
                        tags = {
                            **table_tags.get((table.domain, table.name), {}),
                            **column_tags.get((table.domain, table.name, column.name), {}),
                        }
                        if all(tags.get(k) in v for k, v in wanted.items()):
                            key = (consumer, table.ref)
                            out.setdefault(key, Seen()).raw.add(column.name)
                            unfiltered.add(key)
    for key in unfiltered:  # a union: an unfiltered grant on the table shows every row
        out[key].filtered = False
    return out


def _withheld(report) -> set[tuple[str, str]]:
    return {(lim.consumer, lim.table) for lim in report.limitations if "withheld" in lim.instead}


@pytest.fixture(scope="module")
def lint():
    from cfnlint.api import lint_file

    return lint_file


def test_template_passes_cfn_lint(any_mesh, tmp_path, lint) -> None:
    any_mesh.export_governance("lakeformation", tmp_path, storage_root="s3://b/m")
    matches = lint(tmp_path / "template.yaml")
    assert not [str(m) for m in matches]


def test_grants_match_the_access_matrix_and_never_more(any_mesh, tmp_path) -> None:
    report = any_mesh.export_governance("lakeformation", tmp_path, storage_root="s3://b/m")
    seen = seen_by_lake_formation(_calls(tmp_path), any_mesh)
    compared = check_against_matrix(
        any_mesh, seen, withheld=_withheld(report), masks_expressible=False
    )
    assert compared > 0


def test_masks_and_lookup_filters_are_reported_with_the_safe_alternative(
    example_mesh, tmp_path
) -> None:
    report = example_mesh.export_governance("lakeformation", tmp_path, storage_root="s3://b/m")
    assert _withheld(report) == {
        ("eu_marketing_analyst", "customer.customer"),
        ("eu_marketing_analyst", "sales.orders"),
        ("eu_marketing_analyst", "sales.lineitem"),
    }
    excluded = {
        (lim.consumer, lim.column) for lim in report.limitations if "excluded" in lim.instead
    }
    assert ("finance_controller", "c_name") in excluded
    assert ("supply_planner", "s_phone") in excluded
    plan = (tmp_path / "plan.md").read_text()
    assert "regional_orders" in plan and "marketing_phone_last4" in plan


def test_a_plain_row_filter_is_a_data_cells_filter(scaffolded_mesh, tmp_path) -> None:
    scaffolded_mesh.export_governance("lakeformation", tmp_path, storage_root="s3://b/m")
    [data] = [
        c["params"]["TableData"] for c in _calls(tmp_path)
        if c["operation"] == "create_data_cells_filter"
    ]  # fmt: skip
    assert data["RowFilter"] == {"FilterExpression": "\"region\" = 'EU'"}
    assert "customer_email" not in data["ColumnNames"]  # keyed_hash: excluded


def test_api_calls_apply_against_moto_and_the_grants_read_back(any_mesh, tmp_path) -> None:
    import boto3
    from moto import mock_aws

    any_mesh.export_governance("lakeformation", tmp_path, storage_root="s3://b/m")
    calls = _calls(tmp_path)
    with mock_aws():
        clients = {s: boto3.client(s, region_name="eu-west-1") for s in ("glue", "lakeformation")}
        for call in calls:
            if call["operation"] == "create_data_cells_filter":
                continue  # moto 5.2 answers "not yet implemented"; cfn-lint checks the resource
            getattr(clients[call["service"]], call["operation"])(**call["params"])
        lf = clients["lakeformation"]
        granted = lf.list_permissions()["PrincipalResourcePermissions"]
        tables = clients["glue"].get_tables(DatabaseName=any_mesh.spec.tables()[0].domain)
    expected = [c["params"] for c in calls if c["operation"] == "grant_permissions"]
    read_back = [(g["Principal"], g["Resource"], sorted(g["Permissions"])) for g in granted]
    assert len(read_back) == len(expected)
    for grant in expected:
        assert (grant["Principal"], grant["Resource"], sorted(grant["Permissions"])) in read_back
    assert tables["TableList"][0]["StorageDescriptor"]["Location"].startswith("s3://b/m/")


def test_a_column_name_glue_would_change_is_reported(mesh_copy) -> None:
    from meshsim.platforms.governance import Governance
    from meshsim.platforms.lakeformation import lakeformation_plan
    from meshsim.policy.access import access_matrix
    from meshsim.spec.loader import load_mesh
    from tests.conftest import edit

    edit(
        mesh_copy / "customer" / "products" / "customer_profiles.yaml",
        "{name: c_comment,",
        "{name: Customer Comment,",
    )
    spec = load_mesh(mesh_copy)
    roots = {d: f"s3://b/{d}" for d in ("customer", "sales", "supply")}
    plan = lakeformation_plan(Governance(spec, tuple(access_matrix(spec)), roots))
    [name] = [lim for lim in plan.limitations if lim.policy == "column name"]
    assert (name.table, name.column) == ("customer.customer", "Customer Comment")


def test_columns_are_named_in_lower_case_as_glue_stores_them(mesh_copy) -> None:
    """Glue lower-cases column names; a grant or filter naming 'C_Phone' names no column."""
    from meshsim.platforms.lakeformation import lakeformation_plan
    from tests.conftest import edit
    from tests.platforms.seen import spec_governance

    product = mesh_copy / "customer" / "products" / "customer_profiles.yaml"
    edit(product, "name: c_mktsegment,", "name: C_MktSegment,")
    edit(
        mesh_copy / "mesh.yaml",
        "  row_filters:\n",
        "  row_filters:\n    - name: building\n      consumers: [finance_controller]\n"
        "      table: customer.customer\n      predicate: C_MktSegment = 'BUILDING'\n",
    )
    plan = lakeformation_plan(spec_governance(mesh_copy))
    [table] = [t for t in plan.tables if t["TableInput"]["Name"] == "customer"]
    names = [c["Name"] for c in table["TableInput"]["StorageDescriptor"]["Columns"]]
    assert "c_mktsegment" in names and names == [n.lower() for n in names]
    [data] = [f for f in plan.filters if f["Name"] == "meshsim_finance_controller_customer"]
    assert data["RowFilter"]["FilterExpression"] == "\"c_mktsegment\" = 'BUILDING'"
    assert "c_mktsegment" in data["ColumnNames"]
    for item in [*plan.grants, *plan.associations]:
        body = item.get("resource", item.get("Resource"))
        for column in body.get("TableWithColumns", {}).get("ColumnNames", []):
            assert column == column.lower(), item
    assert not [lim for lim in plan.limitations if lim.policy == "column name"]
