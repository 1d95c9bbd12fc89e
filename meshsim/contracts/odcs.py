"""A product spec as an ODCS v3 data contract (read back by :mod:`.reader`).

Every field of a product file has a place in the contract, so export, import and export again
give the same contract (``docs/CONTRACTS.md`` has the mapping). What ODCS has a field for goes
there (types, descriptions, classifications, tags as ``key:value``, primary and partition
keys, quality, the freshness SLA, the owner as the team's ``owner`` member); what only meshsim
has (the source, production, column mapping, PII waivers, OS-user bindings) is a custom
property of vendor ``meshsim``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from open_data_contract_standard.model import (
    CustomProperty,
    Description,
    MapDefinition,
    OpenDataContractStandard,
    SchemaObject,
    SchemaProperty,
    Server,
    ServiceLevelAgreementProperty,
    Team,
    TeamMember,
)
from pydantic import BaseModel

from meshsim.contracts.quality import rule_to_check
from meshsim.spec.models import Column, Product, Production, Table
from meshsim.spec.types import Nested, SpecType, parse_type, render

#: the ODCS version of the open-data-contract-standard package (and its JSON Schema)
API_VERSION = "v3.2.0"
VENDOR = "meshsim"
#: statuses meshsim derives from the catalog: published (active) or not yet (draft)
STATUSES = ("draft", "active")
#: the description of the freshness SLA (written by meshsim, so read back as is)
FRESHNESS_DESCRIPTION = "the largest age of the product's data"
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
UNITS_BACK = {
    **{u: "m" for u in ("min", "minute", "minutes")},
    **{u: "h" for u in ("h", "hour", "hours")},
    **{u: "d" for u in ("d", "day", "days")},
}
_LOGICAL = {
    "boolean": "boolean",
    "date": "date",
    "blob": "string",
    "binary": "string",
}
#: the spec type of a property that names only a logical type
PHYSICAL_OF = {
    "string": "varchar",
    "integer": "bigint",
    "number": "double",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}


def logical_type(spec_type: str) -> str:
    """The ODCS logical type of a spec type.

    >>> logical_type("decimal(15,2)"), logical_type("bigint"), logical_type("array<int>")
    ('number', 'integer', 'array')
    """
    parsed = parse_type(spec_type)
    if isinstance(parsed, Nested):
        return {"struct": "object", "array": "array", "map": "map"}[parsed.kind]
    if parsed in _LOGICAL:
        return _LOGICAL[parsed]
    if parsed.startswith("timestamp"):
        return "timestamp"
    if parsed in ("tinyint", "byte", "smallint", "short", "integer", "int", "bigint", "long"):
        return "integer"
    if parsed in ("float", "real", "double") or parsed.startswith("decimal"):
        return "number"
    return "string"


def server_description(domain: str) -> str:
    return f"the storage account of domain '{domain}'"


def _custom(values: dict[str, Any]) -> list[CustomProperty] | None:
    props = [CustomProperty(property=k, value=v, vendor=VENDOR) for k, v in values.items() if v]
    return props or None


def _tags(tags: dict[str, str]) -> list[str] | None:
    return [f"{k}:{v}" for k, v in tags.items()] or None


def _dump(model: BaseModel) -> Any:
    return model.model_dump(mode="json", by_alias=True, exclude_defaults=True)


def _keys_in_columns(keys: list[str], table: Table) -> bool:
    names = [c.name for c in table.columns]
    return all(k in names for k in keys)


def map_definition(spec_type: str) -> MapDefinition | None:
    """The key and value of a map column, which ODCS requires of ``logicalType: map`` (the
    ``physicalType`` keeps the whole type; nested maps inside need nothing more)."""
    parsed = parse_type(spec_type)
    if not isinstance(parsed, Nested) or parsed.kind != "map":
        return None
    (_, key), (_, value) = parsed.fields

    def side(part: SpecType) -> SchemaProperty:
        text = render(part)
        return SchemaProperty(physicalType=text, logicalType=logical_type(text))

    return MapDefinition(key=side(key), value=side(value))


def _property(column: Column, table: Table) -> SchemaProperty:
    pk = _keys_in_columns(table.primary_key, table) and column.name in table.primary_key
    part = _keys_in_columns(table.partition_by, table) and column.name in table.partition_by
    waiver = _dump(column.allow_unmasked) if column.allow_unmasked else None
    return SchemaProperty(
        name=column.name,
        physicalType=column.type,
        logicalType=logical_type(column.type),
        map=map_definition(column.type),
        description=column.description or None,
        tags=_tags(column.tags),
        classification=column.classification,
        required=True if not column.nullable else None,
        primaryKey=True if pk else None,
        primaryKeyPosition=table.primary_key.index(column.name) + 1 if pk else None,
        partitioned=True if part else None,
        partitionKeyPosition=table.partition_by.index(column.name) + 1 if part else None,
        quality=[rule_to_check(r, on_column=True) for r in column.quality] or None,
        customProperties=_custom({"allowUnmasked": waiver}),
    )


def _schema_object(domain: str, table: Table) -> SchemaObject:
    extra = {
        "source": _dump(table.source) if table.source is not None else None,
        "columnMapping": table.column_mapping,
        "primaryKey": None if _keys_in_columns(table.primary_key, table) else table.primary_key,
        "partitionBy": None if _keys_in_columns(table.partition_by, table) else table.partition_by,
        "sortBy": table.sort_by or None,
    }
    return SchemaObject(
        name=table.name,
        physicalName=f"{domain}.{table.name}",
        physicalType="table",
        logicalType="object",
        description=table.description or None,
        tags=_tags(table.tags),
        properties=[_property(c, table) for c in table.columns] or None,
        quality=[rule_to_check(r, on_column=False) for r in table.quality] or None,
        customProperties=_custom(extra),
    )


def export_contract(
    domain: str,
    product: Product,
    *,
    owner_team: str | None,
    storage: Path | None,
    status: str,
) -> OpenDataContractStandard:
    """``product`` of ``domain`` as an ODCS contract; ``storage`` is the domain's account in
    the workspace (its server), ``status`` the catalog's (``active`` once published)."""
    member = None
    if product.owner is not None:
        member = TeamMember(
            username=product.owner,
            role="owner",
            customProperties=_custom({"osUsers": product.owner_os_users}),
        )
    team = None
    if owner_team is not None or member is not None:
        team = Team(name=owner_team, members=[member] if member else None)
    sla = None
    if product.freshness_sla is not None:
        amount = product.freshness_sla.rstrip("mhd").strip()
        sla = [
            ServiceLevelAgreementProperty(
                property="freshness",
                value=int(amount),
                unit=_UNITS[product.freshness_sla[-1]],
                description=FRESHNESS_DESCRIPTION,
            )
        ]
    servers = None
    if storage is not None:
        servers = [
            Server(
                server=domain,
                type="local",
                format="delta",
                path=str(storage),
                description=server_description(domain),
            )
        ]
    production = _dump(product.production) if product.production != Production() else None
    return OpenDataContractStandard(
        apiVersion=API_VERSION,
        kind="DataContract",
        id=f"{domain}.{product.name}",
        name=product.name,
        version=product.version,
        status=status,
        domain=domain,
        dataProduct=product.name,
        description=Description(purpose=product.description) if product.description else None,
        tags=_tags(product.tags),
        team=team,
        slaProperties=sla,
        servers=servers,
        schema=[_schema_object(domain, t) for t in product.tables],
        customProperties=_custom({"production": production}),
    )


def contract_yaml(contract: OpenDataContractStandard) -> str:
    return contract.to_yaml()
