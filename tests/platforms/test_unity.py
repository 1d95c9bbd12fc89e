"""Unity Catalog export: every statement parses with sqlglot's Databricks dialect, and the
grants, row filter functions and column mask functions read back, group by group, as
meshsim's access matrix."""

from __future__ import annotations

import re

import pytest
import sqlglot
from sqlglot import exp

from tests.platforms.seen import Seen, check_against_matrix

#: statements sqlglot parses only as commands; everything else must parse into its node
COMMANDS = (
    "CREATE CATALOG IF NOT EXISTS ",
    "GRANT USE CATALOG ON CATALOG ",
    "ALTER TABLE ",  # ... ALTER COLUMN ... SET TAGS / SET MASK, ... SET ROW FILTER
)


def statements(sql: str) -> list[str]:
    body = "\n".join(line for line in sql.splitlines() if not line.startswith("--"))
    return [s.strip() for s in body.split(";\n") if s.strip()]


def _name(table: exp.Table) -> str:
    return ".".join(p.name for p in table.parts)


def _case(function: exp.Create) -> tuple[dict[str, exp.Expr], exp.Expr]:
    body = function.expression.this
    if not isinstance(body, exp.Case):
        return {}, body
    branches = {}
    for branch in body.args["ifs"]:
        [group] = branch.this.expressions
        branches.setdefault(group.name, branch.args["true"])
    return branches, body.args.get("default")


def seen_by_unity(sql: str, mesh) -> dict[tuple[str, str], Seen]:
    functions: dict[str, exp.Create] = {}
    selects: set[tuple[str, str]] = set()
    masks: dict[tuple[str, str], str] = {}
    filters: dict[str, str] = {}
    for text in statements(sql):
        tree = sqlglot.parse_one(text, read="databricks")
        if isinstance(tree, exp.Create) and tree.kind == "FUNCTION":
            functions[_name(tree.this.this)] = tree
        elif m := re.fullmatch(r"GRANT SELECT ON TABLE (\S+) TO `(\w+)`", text):
            selects.add((m.group(2), m.group(1).replace("`", "")))
        elif m := re.fullmatch(r"ALTER TABLE (\S+) ALTER COLUMN `(.+)` SET MASK (\S+)", text):
            masks[(m.group(1).replace("`", ""), m.group(2))] = m.group(3).replace("`", "")
        elif m := re.fullmatch(r"ALTER TABLE (\S+) SET ROW FILTER (\S+) ON \(.*\)", text):
            filters[m.group(1).replace("`", "")] = m.group(2).replace("`", "")
    out = {}
    for table in mesh.spec.tables():
        name = f"{table.domain}.{table.product}.{table.name}"
        for consumer in mesh.spec.consumer_names():
            if (consumer, name) not in selects:
                continue
            seen = Seen()
            if name in filters:
                branches, default = _case(functions[filters[name]])
                result = branches.get(consumer, default)
                if result == exp.false():
                    continue  # no rows at all
                seen.filtered = result != exp.true()
            for column in table.columns:
                function = masks.get((name, column.name))
                if function is None:
                    seen.raw.add(column.name)
                    continue
                branches, default = _case(functions[function])
                result = branches.get(consumer, default)
                if isinstance(result, exp.Column) and result.name == "value":
                    seen.raw.add(column.name)
                elif isinstance(result, exp.Null):
                    continue  # denied to the group (a mask's NULL is typed: CAST(NULL AS t))
                elif not (isinstance(result, exp.Cast) and isinstance(result.this, exp.Null)) or (
                    consumer in branches
                ):
                    seen.masked.add(column.name)
            out[(consumer, table.ref)] = seen
    return out


@pytest.fixture(scope="module")
def example_sql(example_mesh, tmp_path_factory):
    out = tmp_path_factory.mktemp("uc")
    report = example_mesh.export_governance("unity-catalog", out, storage_root="s3://b/m")
    return (out / "governance.sql").read_text(), report


def test_every_statement_parses_with_the_databricks_dialect(any_mesh, tmp_path) -> None:
    any_mesh.export_governance("unity-catalog", tmp_path, storage_root="s3://b/m")
    texts = statements((tmp_path / "governance.sql").read_text())
    assert texts
    for text in texts:
        tree = sqlglot.parse_one(text, read="databricks")
        if isinstance(tree, exp.Command):
            assert text.startswith(COMMANDS), text
            continue
        assert tree.sql(dialect="databricks") == text  # understood whole, not as a command


def test_grants_filters_and_masks_match_the_access_matrix(any_mesh, tmp_path) -> None:
    any_mesh.export_governance("unity-catalog", tmp_path, storage_root="s3://b/m")
    sql = (tmp_path / "governance.sql").read_text()
    assert check_against_matrix(any_mesh, seen_by_unity(sql, any_mesh)) > 0


def test_tables_live_at_their_domains_storage(example_mesh, tmp_path) -> None:
    example_mesh.export_governance(
        "unity-catalog", tmp_path, storage_root="s3://lake/m", locations={"sales": "s3://sales/x"}
    )
    sql = (tmp_path / "governance.sql").read_text()
    assert "`sales`.`order_history`.`orders` (" in sql
    assert "USING DELTA LOCATION 's3://sales/x/orders'" in sql
    assert "USING DELTA LOCATION 's3://lake/m/customer/customer'" in sql


def test_keyed_hash_uses_a_databricks_secret_never_the_mesh_key(example_sql) -> None:
    sql, report = example_sql
    assert "SHA2(SECRET('meshsim', 'mesh_key') || '|customer.customer.c_name|'" in sql
    assert "0" * 64 not in sql and "SHA256(" not in sql
    assert any(lim.policy == "keyed_hash masks" for lim in report.limitations)


def test_denied_columns_are_null_for_granted_groups(example_sql) -> None:
    sql, _ = example_sql
    [acctbal] = [s for s in statements(sql) if "`meshsim_mask_customer_5`(" in s]
    branches, default = _case(sqlglot.parse_one(acctbal, read="databricks"))
    granted = {"governance_admin", "finance_controller", "eu_marketing_analyst", "sales"}
    assert set(branches) == granted
    assert isinstance(branches["eu_marketing_analyst"], exp.Null)  # denied: its own branch
    assert isinstance(branches["sales"], exp.Null)
    assert isinstance(default, exp.Cast) and isinstance(default.this, exp.Null)


def _groups(function: exp.Create) -> list[str]:
    return [branch.this.expressions[0].name for branch in function.expression.this.args["ifs"]]


def test_mask_and_row_filter_functions_of_a_table_pick_the_same_group(any_mesh, tmp_path):
    """A user in two groups gets one group's rows and the same group's columns: every
    function of a table has a branch for every granted group, in the same order."""
    any_mesh.export_governance("unity-catalog", tmp_path, storage_root="s3://b/m")
    functions: dict[str, exp.Create] = {}
    used: dict[str, list[str]] = {}  # table -> functions set on it
    for text in statements((tmp_path / "governance.sql").read_text()):
        tree = sqlglot.parse_one(text, read="databricks")
        if isinstance(tree, exp.Create) and tree.kind == "FUNCTION":
            functions[_name(tree.this.this)] = tree
        elif m := re.fullmatch(r"ALTER TABLE (\S+) .*SET (?:MASK|ROW FILTER) (\S+).*", text):
            used.setdefault(m.group(1), []).append(m.group(2).replace("`", ""))
    compared = 0
    for table, names in used.items():
        orders = {name: _groups(functions[name]) for name in names}
        first = next(iter(orders.values()))
        assert all(order == first for order in orders.values()), (table, orders)
        compared += len(names) > 1
    assert compared or not used
