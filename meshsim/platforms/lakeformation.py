"""AWS Lake Formation: a CloudFormation template, the equivalent API calls (JSON) and a plan.

A Glue database per domain and a Glue table per mesh table at its domain's storage; LF-Tags
from the tag taxonomy, associated with every column with the tags meshsim resolves for it
(table tags inherited, column tags overriding), so LF's inheritance never widens a match;
grants to one IAM role per consumer (``meshsim-<consumer>``).

Lake Formation shows a column raw or not at all, and its row filters are plain expressions
over the table's own columns. So, cell by cell of the access matrix:

* a tag grant becomes an LF-Tag policy grant for a consumer only when every cell it covers
  for that consumer is unmasked and unfiltered; otherwise its columns go through the named
  grants below;
* a masked column is excluded (listed in the plan);
* a filtered cell becomes a data cells filter (its full columns, the predicate with the
  consumer's attributes bound) when the predicate is plain; a predicate that looks up other
  tables cannot be a filter, so the table is withheld from that consumer (listed); so is
  one that would match other rows on the engines that read Lake Formation's filters (Athena,
  which is Trino, and Spark on EMR and Glue): see :func:`meshsim.platforms.portable.portable`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from meshsim.errors import MeshsimError
from meshsim.platforms.governance import (
    Governance,
    Limitation,
    cell_filter,
    common_limitations,
    policy_label,
)
from meshsim.platforms.portable import NotPortable, portable

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlglot import exp

    from meshsim.policy.access import TableAccess

TARGET = "Lake Formation"
#: sqlglot nodes a Lake Formation row filter expression may hold
_PLAIN = (
    "Column", "Identifier", "Literal", "Boolean", "Null", "Paren", "EQ", "NEQ", "GT", "GTE",
    "LT", "LTE", "And", "Or", "Not", "In", "Between", "Like", "Is", "Neg",
)  # fmt: skip


@dataclass
class LakeFormationPlan:
    """Everything the template and the API calls create, in creation order."""

    databases: list[dict[str, Any]] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)
    tags: list[dict[str, Any]] = field(default_factory=list)
    associations: list[dict[str, Any]] = field(default_factory=list)
    filters: list[dict[str, Any]] = field(default_factory=list)
    grants: list[dict[str, Any]] = field(default_factory=list)  # {consumer, resource, permissions}
    limitations: list[Limitation] = field(default_factory=list)


def hive_type(dtype: pa.DataType) -> str:
    """The Glue (Hive) type of an Arrow type."""
    import pyarrow as pa

    simple = [
        (pa.types.is_boolean, "boolean"), (pa.types.is_int8, "tinyint"),
        (pa.types.is_int16, "smallint"), (pa.types.is_int32, "int"), (pa.types.is_int64, "bigint"),
        (pa.types.is_float32, "float"), (pa.types.is_float64, "double"),
        (pa.types.is_date, "date"), (pa.types.is_timestamp, "timestamp"),
        (pa.types.is_binary, "binary"), (pa.types.is_large_binary, "binary"),
        (pa.types.is_string, "string"), (pa.types.is_large_string, "string"),
    ]  # fmt: skip
    for test, name in simple:
        if test(dtype):
            return name
    if pa.types.is_decimal(dtype):
        return f"decimal({dtype.precision},{dtype.scale})"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return f"array<{hive_type(dtype.value_type)}>"
    if pa.types.is_map(dtype):
        return f"map<{hive_type(dtype.key_type)},{hive_type(dtype.item_type)}>"
    if pa.types.is_struct(dtype):
        fields = ",".join(f"{f.name}:{hive_type(f.type)}" for f in dtype)
        return f"struct<{fields}>"
    raise MeshsimError(f"no Glue type for the Arrow type {dtype}")


def _plain(predicate: exp.Expr) -> bool:
    return all(type(node).__name__ in _PLAIN for node in predicate.walk())


def _own_table(ref: str) -> exp.Table:
    """A looked-up table as Lake Formation would name it (only for telling that a filter
    looks one up: such a filter is withheld)."""
    from sqlglot import exp

    domain, name = ref.split(".")
    return exp.table_(name, db=domain)


def _glue_name(column: str) -> str:
    """A column's name as Glue stores it, in lower case (the spec refuses two columns of a
    table that differ only by case, so no two become one)."""
    return column.lower()


def _glue_columns(predicate: exp.Expr) -> exp.Expr:
    from sqlglot import exp

    def lower(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column):
            return exp.column(_glue_name(node.name), table=node.table or None, quoted=True)
        return node

    return predicate.transform(lower)


def _columns_resource(ref: str, columns: list[str]) -> dict[str, Any]:
    domain, name = ref.split(".")
    names = [_glue_name(c) for c in columns]
    return {"TableWithColumns": {"DatabaseName": domain, "Name": name, "ColumnNames": names}}


def _safe_tag_grants(gov: Governance) -> dict[str, list[tuple[str, str]]]:
    """consumer -> [(tag grant name, expression)] that LF can express as they are: every
    cell they cover for the consumer is unmasked and unfiltered."""
    from meshsim.policy.access import rule_name, selects
    from meshsim.policy.conditions import tags_match

    out: dict[str, list[tuple[str, str]]] = {}
    for index, tag_grant in enumerate(gov.spec.policies.tag_grants):
        for consumer in gov.spec.mesh.consumers:
            if not selects(tag_grant, consumer):
                continue
            safe = True
            for table in gov.spec.tables():
                covered = [
                    c.name for c in table.columns
                    if tags_match(tag_grant.expression, table.column_tags(c))
                ]  # fmt: skip
                cell = gov.cell(consumer.name, table.ref)
                if covered and (
                    cell is None
                    or cell.filtered
                    or any((a := cell.column(c)) is None or a.state != "full" for c in covered)
                ):
                    safe = False
            if safe:
                name = rule_name(tag_grant, "tag_grant", index)
                out.setdefault(consumer.name, []).append((name, tag_grant.expression))
    return out


def _tag_covered(gov: Governance, expressions: list[tuple[str, str]], ref: str) -> set[str]:
    from meshsim.policy.conditions import tags_match

    table = gov.table(ref)
    return {
        c.name
        for c in table.columns
        for _, expression in expressions
        if tags_match(expression, table.column_tags(c))
    }


def _lf_expression(expression: str) -> list[dict[str, Any]]:
    from meshsim.policy.conditions import parse_tag_expression

    return [
        {"TagKey": key, "TagValues": sorted(values)}
        for key, values in parse_tag_expression(expression)
    ]


def _cell_grants(
    gov: Governance, cell: TableAccess, tag_covered: set[str], plan: LakeFormationPlan
) -> None:
    for column in cell.columns:
        if column.state == "masked" and column.mask is not None:
            plan.limitations.append(
                Limitation(
                    policy_label(column.mask),
                    f"Lake Formation cannot mask a column ({column.mask.function})",
                    "the column is excluded from the consumer's grant",
                    cell.consumer,
                    cell.table,
                    column.column,
                )
            )
    full = [c.column for c in cell.columns if c.state == "full"]
    if not full:
        return
    predicate = cell_filter(gov, cell, _own_table)
    if predicate is None:
        named = [c for c in full if c not in tag_covered]
        if named:
            plan.grants.append(
                {
                    "consumer": cell.consumer,
                    "resource": _columns_resource(cell.table, named),
                    "permissions": ["SELECT"],
                }
            )
        return
    cannot = None
    if not _plain(predicate):
        cannot = "a Lake Formation row filter cannot look up other tables or call functions"
    else:
        try:
            predicate = _glue_columns(portable(predicate, "lakeformation"))
        except NotPortable as reason:
            cannot = f"the row filter would not mean what it means in meshsim: {reason}"
    if cannot is not None:
        for row_filter in cell.row_filters:
            plan.limitations.append(
                Limitation(
                    policy_label(row_filter),
                    cannot,
                    "the table is withheld from the consumer (no grant at all)",
                    cell.consumer,
                    cell.table,
                )
            )
        return
    domain, name = cell.table.split(".")
    filter_name = f"meshsim_{cell.consumer}_{name}"
    plan.filters.append(
        {
            "TableName": name,
            "DatabaseName": domain,
            "Name": filter_name,
            "RowFilter": {"FilterExpression": predicate.sql()},
            "ColumnNames": [_glue_name(c) for c in full],
        }
    )
    resource = {"DataCellsFilter": {"DatabaseName": domain, "TableName": name, "Name": filter_name}}
    plan.grants.append({"consumer": cell.consumer, "resource": resource, "permissions": ["SELECT"]})


def lakeformation_plan(gov: Governance) -> LakeFormationPlan:
    """What to create, from the access matrix; see the module docstring."""
    from meshsim.spec.types import to_arrow

    plan = LakeFormationPlan()
    for domain in sorted({t.domain for t in gov.spec.tables()}):
        plan.databases.append({"Name": domain, "LocationUri": gov.locations[domain]})
    for table in gov.spec.tables():
        plan.tables.append(
            {
                "DatabaseName": table.domain,
                "TableInput": {
                    "Name": table.name,
                    "TableType": "EXTERNAL_TABLE",
                    "Parameters": {"classification": "delta", "table_type": "DELTA"},
                    "StorageDescriptor": {
                        "Location": gov.location(table.ref),
                        "Columns": [
                            {"Name": _glue_name(c.name), "Type": hive_type(to_arrow(c.type))}
                            for c in table.columns
                        ],
                    },
                },
            }
        )
        if table.table_tags():
            plan.associations.append(
                {
                    "Resource": {"Table": {"DatabaseName": table.domain, "Name": table.name}},
                    "LFTags": [
                        {"TagKey": k, "TagValues": [v]}
                        for k, v in sorted(table.table_tags().items())
                    ],
                }
            )
        groups: dict[tuple[tuple[str, str], ...], list[str]] = {}
        for column in table.columns:
            tags = tuple(sorted(table.column_tags(column).items()))
            if tags:
                groups.setdefault(tags, []).append(column.name)
        for tags, columns in groups.items():
            plan.associations.append(
                {
                    "Resource": _columns_resource(table.ref, columns),
                    "LFTags": [{"TagKey": k, "TagValues": [v]} for k, v in tags],
                }
            )
    for key, tag in gov.spec.mesh.tags.items():
        plan.tags.append({"TagKey": key, "TagValues": list(tag.values)})
    safe = _safe_tag_grants(gov)
    for consumer, grants in safe.items():
        for _, expression in grants:
            resource = {
                "LFTagPolicy": {"ResourceType": "TABLE", "Expression": _lf_expression(expression)}
            }
            plan.grants.append(
                {"consumer": consumer, "resource": resource, "permissions": ["SELECT", "DESCRIBE"]}
            )
    for cell in gov.granted():
        covered = _tag_covered(gov, safe.get(cell.consumer, []), cell.table)
        _cell_grants(gov, cell, covered, plan)
    for consumer in sorted({g["consumer"] for g in plan.grants}):
        databases = sorted(
            {
                next(iter(g["resource"].values()))["DatabaseName"]
                for g in plan.grants
                if g["consumer"] == consumer and "LFTagPolicy" not in g["resource"]
            }
            | {
                c.table.split(".")[0]
                for c in gov.granted()
                if c.consumer == consumer and _tag_covered(gov, safe.get(consumer, []), c.table)
            }
        )
        for database in databases:
            plan.grants.append(
                {
                    "consumer": consumer,
                    "resource": {"Database": {"Name": database}},
                    "permissions": ["DESCRIBE"],
                }
            )
    plan.limitations += common_limitations(gov, TARGET) + _name_limitations(gov)
    return plan


def _name_limitations(gov: Governance) -> list[Limitation]:
    """Glue keeps names of lower-case letters, digits and _ as they are (the export writes
    every name in lower case); one with other characters may not keep its name."""
    import re

    return [
        Limitation(
            "column name",
            f"Glue and the engines reading it may not keep the column name '{column.name}' "
            "(other characters than letters, digits and _)",
            f"exported as '{_glue_name(column.name)}': a grant that no longer names the column "
            "shows nothing of it; rename the column or check the table after deploying",
            table=table.ref,
            column=column.name,
        )
        for table in gov.spec.tables()
        for column in table.columns
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", _glue_name(column.name))
    ]


def lakeformation_files(gov: Governance) -> tuple[dict[str, str], list[Limitation]]:
    import json

    import yaml

    from meshsim.platforms.lakeformation_render import api_calls, cloudformation, plan_markdown

    plan = lakeformation_plan(gov)
    template = yaml.safe_dump(cloudformation(plan, gov.spec.mesh.name), sort_keys=False)
    calls = json.dumps(api_calls(plan, "ACCOUNT_ID"), indent=2) + "\n"
    files = {
        "template.yaml": template,
        "api-calls.json": calls,
        "plan.md": plan_markdown(gov, plan),
    }
    return files, plan.limitations
