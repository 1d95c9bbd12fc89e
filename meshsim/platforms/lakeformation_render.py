"""The Lake Formation plan (:mod:`meshsim.platforms.lakeformation`) rendered: a
CloudFormation template, the equivalent boto3 calls and a readable plan."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from meshsim.platforms.governance import Governance, limitations_markdown

if TYPE_CHECKING:
    from meshsim.platforms.lakeformation import LakeFormationPlan

#: each consumer is the IAM role of this prefix and its name, created outside the template
ROLE_PREFIX = "meshsim-"


def role_arn(consumer: str, account_id: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account_id}:role/{ROLE_PREFIX}{consumer}"


def api_calls(plan: LakeFormationPlan, account_id: str) -> list[dict[str, Any]]:
    """The boto3 calls that build the plan: ``{service, operation, params}`` in order."""
    calls: list[dict[str, Any]] = []
    for db in plan.databases:
        calls.append(
            {"service": "glue", "operation": "create_database", "params": {"DatabaseInput": db}}
        )
    for table in plan.tables:
        calls.append({"service": "glue", "operation": "create_table", "params": table})
    for tag in plan.tags:
        calls.append({"service": "lakeformation", "operation": "create_lf_tag", "params": tag})
    for association in plan.associations:
        calls.append(
            {
                "service": "lakeformation",
                "operation": "add_lf_tags_to_resource",
                "params": association,
            }
        )
    for data_filter in plan.filters:
        params = {"TableData": {"TableCatalogId": account_id, **data_filter}}
        calls.append(
            {"service": "lakeformation", "operation": "create_data_cells_filter", "params": params}
        )
    for grant in plan.grants:
        params = {
            "Principal": {"DataLakePrincipalIdentifier": role_arn(grant["consumer"], account_id)},
            "Resource": grant["resource"],
            "Permissions": grant["permissions"],
        }
        calls.append(
            {"service": "lakeformation", "operation": "grant_permissions", "params": params}
        )
    return calls


def _logical_id(kind: str, *names: str, used: set[str]) -> str:
    base = kind + "".join(re.sub(r"[^A-Za-z0-9]", "", n.title()) for n in names)
    base = base[:200]
    candidate, n = base, 1
    while candidate in used:
        n += 1
        candidate = f"{base}{n}"
    used.add(candidate)
    return candidate


def _with_catalog(resource: dict[str, Any]) -> dict[str, Any]:
    kind, body = next(iter(resource.items()))
    key = "TableCatalogId" if kind == "DataCellsFilter" else "CatalogId"
    return {kind: {key: {"Ref": "AWS::AccountId"}, **body}}


def cloudformation(plan: LakeFormationPlan, mesh: str) -> dict[str, Any]:
    """The CloudFormation template (as data; YAML-dumped by :func:`lakeformation_files`)."""
    used: set[str] = set()
    resources: dict[str, Any] = {}
    parameters: dict[str, Any] = {}
    db_ids: dict[str, str] = {}
    root_params: dict[str, str] = {}
    for db in plan.databases:
        root_params[db["Name"]] = param = _logical_id("StorageRoot", db["Name"], used=used)
        parameters[param] = {
            "Type": "String",
            "Default": db["LocationUri"],
            "Description": f"S3 root of the domain '{db['Name']}' (its tables are under it)",
        }
        db_ids[db["Name"]] = logical = _logical_id("Database", db["Name"], used=used)
        resources[logical] = {
            "Type": "AWS::Glue::Database",
            "Properties": {
                "CatalogId": {"Ref": "AWS::AccountId"},
                "DatabaseInput": {"Name": db["Name"], "LocationUri": {"Ref": param}},
            },
        }
    table_ids = []
    for table in plan.tables:
        name = table["TableInput"]["Name"]
        database = table["DatabaseName"]
        root_param = root_params[database]
        table_input = json.loads(json.dumps(table["TableInput"]))
        table_input["StorageDescriptor"]["Location"] = {"Fn::Sub": f"${{{root_param}}}/{name}"}
        logical = _logical_id("Table", database, name, used=used)
        table_ids.append(logical)
        resources[logical] = {
            "Type": "AWS::Glue::Table",
            "DependsOn": db_ids[database],
            "Properties": {
                "CatalogId": {"Ref": "AWS::AccountId"},
                "DatabaseName": database,
                "TableInput": table_input,
            },
        }
    tag_ids = []
    for tag in plan.tags:
        logical = _logical_id("Tag", tag["TagKey"], used=used)
        tag_ids.append(logical)
        resources[logical] = {
            "Type": "AWS::LakeFormation::Tag",
            "Properties": {"CatalogId": {"Ref": "AWS::AccountId"}, **tag},
        }
    for association in plan.associations:
        body = next(iter(association["Resource"].values()))
        logical = _logical_id("Tags", body["DatabaseName"], body["Name"], used=used)
        resources[logical] = {
            "Type": "AWS::LakeFormation::TagAssociation",
            "DependsOn": [*tag_ids, *table_ids],
            "Properties": {
                "Resource": _with_catalog(association["Resource"]),
                "LFTags": [
                    {"CatalogId": {"Ref": "AWS::AccountId"}, **t} for t in association["LFTags"]
                ],
            },
        }
    filter_ids = []
    for data_filter in plan.filters:
        logical = _logical_id("Filter", data_filter["Name"], used=used)
        filter_ids.append(logical)
        resources[logical] = {
            "Type": "AWS::LakeFormation::DataCellsFilter",
            "DependsOn": table_ids,
            "Properties": {"TableCatalogId": {"Ref": "AWS::AccountId"}, **data_filter},
        }
    for grant in plan.grants:
        logical = _logical_id("Grant", grant["consumer"], next(iter(grant["resource"])), used=used)
        role = (
            "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/" + ROLE_PREFIX + grant["consumer"]
        )
        resources[logical] = {
            "Type": "AWS::LakeFormation::PrincipalPermissions",
            "DependsOn": [*table_ids, *tag_ids, *filter_ids],
            "Properties": {
                "Principal": {"DataLakePrincipalIdentifier": {"Fn::Sub": role}},
                "Resource": _with_catalog(grant["resource"]),
                "Permissions": grant["permissions"],
                "PermissionsWithGrantOption": [],
            },
        }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Lake Formation governance of the meshsim mesh '{mesh}'",
        "Parameters": parameters,
        "Resources": resources,
    }


def plan_markdown(gov: Governance, plan: LakeFormationPlan) -> str:
    lines = [
        f"# Lake Formation plan for the mesh '{gov.spec.mesh.name}'",
        "",
        "Deploy `template.yaml` with CloudFormation (or run `api-calls.json` with boto3, the "
        "account id in place of `ACCOUNT_ID`). Each consumer is the IAM role "
        f"`{ROLE_PREFIX}<consumer>`, created outside this template; register the domains' S3 "
        "roots with Lake Formation first. Storage roots are the template's parameters.",
        "",
        "## Glue databases and tables",
        "",
    ]
    for db in plan.databases:
        tables = [t["TableInput"]["Name"] for t in plan.tables if t["DatabaseName"] == db["Name"]]
        lines.append(f"- `{db['Name']}` at `{db['LocationUri']}`: {', '.join(tables)}")
    lines += ["", "## LF-Tags", ""]
    lines += [f"- `{t['TagKey']}`: {', '.join(t['TagValues'])}" for t in plan.tags]
    lines += ["", "## Grants", "", "| consumer | resource | permissions |", "|---|---|---|"]
    for grant in plan.grants:
        kind, body = next(iter(grant["resource"].items()))
        permissions = ", ".join(grant["permissions"])
        lines.append(f"| {grant['consumer']} | {kind} {json.dumps(body)} | {permissions} |")
    lines += ["", "## Data cells filters", ""]
    lines += [
        f"- `{f['Name']}` on `{f['DatabaseName']}.{f['TableName']}`: "
        f"`{f['RowFilter']['FilterExpression']}`, columns {', '.join(f['ColumnNames'])}"
        for f in plan.filters
    ] or ["None."]
    lines += [
        "",
        "## What Lake Formation cannot express",
        "",
        limitations_markdown(plan.limitations),
    ]
    return "\n".join(lines)
