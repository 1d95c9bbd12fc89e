"""Trino export: rules.json validates against the rule schema and reads back, per user and
table, as meshsim's access matrix (first matching rule wins, as in Trino)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.platforms.seen import Seen, check_against_matrix

SCHEMA = Path(__file__).resolve().parents[2] / "meshsim" / "platforms" / "trino_rules.schema.json"


def _first(rules: list[dict], **names: str) -> dict | None:
    for rule in rules:
        if all(re.fullmatch(rule[k], v) for k, v in names.items() if k in rule):
            return rule
    return None


def seen_by_trino(rules: dict, mesh, catalog: str) -> dict[tuple[str, str], Seen]:
    out = {}
    for consumer in mesh.spec.consumer_names():
        catalog_rule = _first(rules["catalogs"], user=consumer, catalog=catalog)
        if catalog_rule is None or catalog_rule["allow"] == "none":
            continue
        for table in mesh.spec.tables():
            rule = _first(
                rules["tables"],
                user=consumer,
                catalog=catalog,
                schema=table.domain,
                table=table.name,
            )
            if rule is None or "SELECT" not in rule["privileges"]:
                continue
            columns = {c["name"]: c for c in rule.get("columns", [])}
            seen = Seen(filtered="filter" in rule)
            for column in table.columns:
                entry = columns.get(column.name, {})
                if entry.get("allow", True) is False:
                    continue
                (seen.masked if "mask" in entry else seen.raw).add(column.name)
            out[(consumer, table.ref)] = seen
    return out


@pytest.fixture(scope="module")
def validator():
    import jsonschema

    return jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))


def test_rules_validate_and_match_the_access_matrix(any_mesh, tmp_path, validator) -> None:
    report = any_mesh.export_governance("trino", tmp_path, storage_root="s3://b/m")
    rules = json.loads((tmp_path / "rules.json").read_text())
    errors = [e.message for e in validator.iter_errors(rules)]
    assert not errors
    catalog = any_mesh.spec.mesh.name
    assert check_against_matrix(any_mesh, seen_by_trino(rules, any_mesh, catalog)) > 0
    assert {p.name for p in report.files} == {"rules.json", "README.md"}


def test_the_schema_refuses_what_trino_would_refuse(validator) -> None:
    assert list(validator.iter_errors({"tables": [{"user": "a", "privileges": ["READ"]}]}))
    assert list(validator.iter_errors({"tables": [{"user": "a"}]}))
    assert list(validator.iter_errors({"catalogs": [{"allow": "some"}]}))
    assert list(validator.iter_errors({"tables": [{"privileges": [], "colums": []}]}))


def test_keyed_hash_is_withheld_as_null_and_reported(example_mesh, tmp_path) -> None:
    report = example_mesh.export_governance("trino", tmp_path, storage_root="s3://b/m")
    rules = json.loads((tmp_path / "rules.json").read_text())
    [rule] = [
        r
        for r in rules["tables"]
        if r.get("user") == "^finance_controller$" and r.get("table") == "^customer$"
    ]
    masks = {c["name"]: c.get("mask") for c in rule["columns"]}
    assert masks["c_name"] == "CAST(NULL AS VARCHAR)"
    assert any(
        lim.column == "c_name" and lim.consumer == "finance_controller" and "NULL" in lim.instead
        for lim in report.limitations
    )
    assert "pii_keyed_hash" in (tmp_path / "README.md").read_text()


def test_lookup_filters_run_as_the_policy_user_reading_only_the_lookups(
    example_mesh, tmp_path
) -> None:
    example_mesh.export_governance("trino", tmp_path, storage_root="s3://b/m")
    rules = json.loads((tmp_path / "rules.json").read_text())
    [orders] = [
        r
        for r in rules["tables"]
        if r.get("user") == "^eu_marketing_analyst$" and r.get("table") == "^orders$"
    ]
    assert "'EUROPE'" in orders["filter"] and "consumer" not in orders["filter"]
    assert orders["filter_environment"] == {"user": "meshsim_policy"}
    policy = [r for r in rules["tables"] if r.get("user") == "^meshsim_policy$"]
    assert {(r["schema"], r["table"]) for r in policy} == {
        ("^customer$", "^customer$"),
        ("^customer$", "^nation$"),
        ("^customer$", "^region$"),
        ("^sales$", "^orders$"),
    }
    assert rules["tables"][-1] == {"privileges": []}


def test_own_columns_inside_a_lookup_are_qualified_so_no_lookup_column_captures_them(
    mesh_copy,
) -> None:
    from meshsim.platforms.governance import Governance
    from meshsim.platforms.trino import trino_rules
    from meshsim.platforms.unity import unity_statements
    from meshsim.policy.access import access_matrix
    from meshsim.spec.loader import load_mesh
    from tests.conftest import edit

    edit(
        mesh_copy / "mesh.yaml",
        "  row_filters:\n",
        "  row_filters:\n"
        "    - name: building_orders\n"
        "      consumers: [finance_controller]\n"
        "      table: sales.orders\n"
        "      predicate: >-\n"
        "        EXISTS (SELECT 1 FROM customer.customer AS c\n"
        "                WHERE c.c_custkey = o_custkey AND c.c_mktsegment = 'BUILDING')\n",
    )
    spec = load_mesh(mesh_copy)
    gov = Governance(
        spec,
        tuple(access_matrix(spec)),
        {d: f"s3://b/{d}" for d in ("customer", "sales", "supply")},
    )
    rules, _ = trino_rules(gov, "retail")
    [rule] = [
        r for r in rules["tables"]
        if r.get("user") == "^finance_controller$" and r.get("table") == "^orders$"
    ]  # fmt: skip
    assert '"c"."c_custkey" = "orders"."o_custkey"' in rule["filter"]
    statements, _ = unity_statements(gov)
    [function] = [s for s in statements if "`meshsim_row_filter_orders`(" in s]
    assert "`c`.`c_custkey` = `meshsim_row_filter_orders`.`o_custkey`" in function


def _with_consumer(mesh_dir, name: str) -> None:
    from tests.conftest import edit

    edit(
        mesh_dir / "mesh.yaml",
        "consumers:\n",
        f"consumers:\n  - name: {name}\n    description: a person who reads nations.\n",
    )
    edit(
        mesh_dir / "mesh.yaml",
        "  grants:\n",
        f"  grants:\n    - name: {name}_nations\n      consumers: [{name}]\n"
        "      tables: [customer.nation]\n",
    )


def test_a_consumer_with_the_policy_users_name_is_refused_not_given_the_lookups(
    mesh_copy,
) -> None:
    from meshsim.errors import MeshsimError
    from meshsim.platforms.trino import trino_rules
    from tests.platforms.seen import spec_governance

    _with_consumer(mesh_copy, "meshsim_policy")
    gov = spec_governance(mesh_copy)
    with pytest.raises(MeshsimError, match="'meshsim_policy' is a consumer") as raised:
        trino_rules(gov, "retail")
    assert "--policy-user" in (raised.value.hint or "")
    rules, _ = trino_rules(gov, "retail", policy_user="lookup_service")
    person = [r for r in rules["tables"] if r.get("user") == "^meshsim_policy$"]
    assert [(r["schema"], r["table"]) for r in person] == [("^customer$", "^nation$")]
    service = {r["table"] for r in rules["tables"] if r.get("user") == "^lookup_service$"}
    assert service == {"^customer$", "^nation$", "^region$", "^orders$"}
    filters = {json.dumps(r.get("filter_environment")) for r in rules["tables"] if "filter" in r}
    assert '{"user": "lookup_service"}' in filters


def test_the_policy_user_is_chosen_on_the_command_line_and_a_clash_is_one_error(
    capsys, built_workspace, tmp_path
) -> None:
    from tests.cli.clihelpers import assert_clean_error, run

    code, _, err = run(
        capsys, "export", "trino", "--workspace", str(built_workspace), "--out", str(tmp_path),
        "--policy-user", "finance_controller",
    )  # fmt: skip
    assert_clean_error(code, err, "'finance_controller' is a consumer", "--policy-user")
    assert not list(tmp_path.iterdir())
    code, _, err = run(
        capsys, "export", "trino", "--workspace", str(built_workspace), "--out", str(tmp_path),
        "--policy-user", "svc_lookups",
    )  # fmt: skip
    assert code == 0, err
    assert '"user": "svc_lookups"' in (tmp_path / "rules.json").read_text()
    assert "svc_lookups" in (tmp_path / "README.md").read_text()


def test_columns_are_named_in_lower_case_as_trino_matches_them(mesh_copy) -> None:
    from meshsim.platforms.trino import trino_rules
    from tests.conftest import edit
    from tests.platforms.seen import spec_governance

    product = mesh_copy / "customer" / "products" / "customer_profiles.yaml"
    edit(product, "name: c_phone,", "name: Customer_Phone,")
    edit(product, "name: c_acctbal,", "name: C_AcctBal,")
    edit(mesh_copy / "mesh.yaml", "customer.customer.c_phone]", "customer.customer.Customer_Phone]")
    edit(mesh_copy / "mesh.yaml", "customer.customer.c_acctbal]", "customer.customer.C_AcctBal]")
    rules, _ = trino_rules(spec_governance(mesh_copy), "retail")
    [rule] = [
        r for r in rules["tables"]
        if r.get("user") == "^eu_marketing_analyst$" and r.get("table") == "^customer$"
    ]  # fmt: skip
    columns = {c["name"]: c for c in rule["columns"]}
    assert columns["c_acctbal"] == {"name": "c_acctbal", "allow": False}
    assert '"customer_phone"' in columns["customer_phone"]["mask"]
    assert not any(c != c.lower() for c in columns)
