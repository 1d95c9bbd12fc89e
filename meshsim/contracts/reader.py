"""Reading an ODCS v3 contract back into a product spec (the reverse of :mod:`.odcs`).

Each ODCS object is read through a :class:`_Reader` that notes the fields it used; any other
field the contract sets, and any key ODCS does not define at all, is a problem named by its
key path. Every problem is collected and raised at once as one
:class:`~meshsim.errors.ContractError`: nothing in a contract is dropped silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from open_data_contract_standard.model import (
    CustomProperty,
    DataQuality,
    OpenDataContractStandard,
    SchemaObject,
    SchemaProperty,
    Server,
    ServiceLevelAgreementProperty,
    Team,
)
from pydantic import BaseModel, ValidationError

from meshsim.contracts.odcs import (
    FRESHNESS_DESCRIPTION,
    PHYSICAL_OF,
    STATUSES,
    UNITS_BACK,
    VENDOR,
    logical_type,
    map_definition,
    server_description,
)
from meshsim.contracts.quality import CheckProblems, check_to_rule
from meshsim.errors import ContractError
from meshsim.spec.models import Product


class _Reader:
    """The fields of one ODCS object as the import reads them; :meth:`unread` lists the set
    fields nothing read, which meshsim cannot represent."""

    def __init__(self, model: BaseModel, where: str, problems: list[str]) -> None:
        self.model = model
        self.where = where
        self.problems = problems
        self.read: set[str] = set()

    def __call__(self, field: str) -> Any:
        self.read.add(field)
        return getattr(self.model, field)

    def refuse(self, field: str, why: str) -> None:
        self.problems.append(f"{self.where}{self._alias(field)}: {why}")

    def _alias(self, field: str) -> str:
        return type(self.model).model_fields[field].alias or field

    def refuse_unread(self) -> None:
        for field in sorted(self.model.model_fields_set - self.read):
            value = getattr(self.model, field)
            if value is not None and value is not False and value not in ([], {}):
                self.refuse(field, "meshsim has no place for this key; remove it to import")


def _custom_values(
    items: list[CustomProperty] | None, where: str, known: tuple[str, ...], problems: list[str]
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for index, item in enumerate(items or []):
        at = f"{where}customProperties[{index}]"
        read = _Reader(item, f"{at}.", problems)
        name, vendor = read("property"), read("vendor")
        if name not in known or vendor not in (None, VENDOR):
            listed = ", ".join(known) or "none here"
            problems.append(f"{at}.property: '{name}' is not a meshsim property (here: {listed})")
        elif name in values:
            problems.append(f"{at}.property: '{name}' is set twice; keep one")
        else:
            values[name] = read("value")
        read.refuse_unread()
    return values


def _custom_at(items: list[CustomProperty] | None, name: str, where: str) -> str:
    """The key path of the custom property ``name`` (the first of that name)."""
    index = next(i for i, item in enumerate(items or []) if item.property == name)
    return f"{where}customProperties[{index}]"


def _tag_dict(tags: list[str] | None, where: str, problems: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for index, tag in enumerate(tags or []):
        key, colon, value = tag.partition(":")
        if not colon:
            problems.append(f"{where}tags[{index}]: '{tag}' is not key:value (meshsim tags are)")
        elif key in out:
            problems.append(
                f"{where}tags[{index}]: '{tag}' repeats the key '{key}' (meshsim tags hold one "
                f"value per key)"
            )
        else:
            out[key] = value
    return out


def _quality(
    checks: list[DataQuality] | None, where: str, on_column: bool, problems: list[str]
) -> list[Any]:
    rules = []
    for index, check in enumerate(checks or []):
        try:
            rules.append(
                check_to_rule(check, on_column=on_column, where=f"{where}quality[{index}]")
            )
        except CheckProblems as exc:
            problems.extend(exc.problems)
    return rules


def _column(
    prop: SchemaProperty, where: str, problems: list[str]
) -> tuple[dict[str, Any], Any, Any]:
    """A column's fields, and its primary and partition key positions (None if not a key)."""
    read = _Reader(prop, where, problems)
    physical, logical = read("physicalType"), read("logicalType")
    if physical is None:
        physical = PHYSICAL_OF.get(logical or "")
        if physical is None:
            read.refuse(
                "logicalType",
                f"'{logical}' needs a physicalType (the spec type, e.g. struct<a: int>)",
            )
    elif logical is not None:
        try:
            if logical_type(physical) != logical:
                read.refuse(
                    "logicalType",
                    f"'{logical}' is not the logical type of '{physical}' "
                    f"({logical_type(physical)})",
                )
        except ValueError as exc:
            read.refuse("physicalType", str(exc))
    written = read("map")
    if written is not None and physical is not None:
        try:
            expected = map_definition(physical)
        except ValueError:
            expected = None
        if written != expected:
            read.refuse("map", f"does not describe the key and value of '{physical}'")
    extra = _custom_values(read("customProperties"), where, ("allowUnmasked",), problems)
    fields: dict[str, Any] = {
        "name": read("name"),
        "type": physical or "varchar",
        "description": read("description") or "",
        "tags": _tag_dict(read("tags"), where, problems),
        "classification": read("classification"),
        "nullable": not read("required"),
        "quality": _quality(read("quality"), where, True, problems),
    }
    if "allowUnmasked" in extra:
        fields["allow_unmasked"] = extra["allowUnmasked"]
    pk = read("primaryKeyPosition") if read("primaryKey") else None
    if read("primaryKey") and pk is None:
        pk = 10**6  # no position: after the positioned ones, in file order
    part = read("partitionKeyPosition") if read("partitioned") else None
    if read("partitioned") and part is None:
        part = 10**6
    read.refuse_unread()
    return fields, pk, part


def _table(obj: SchemaObject, domain: str, where: str, problems: list[str]) -> dict[str, Any]:
    read = _Reader(obj, where, problems)
    name = read("name")
    if read("physicalName") not in (None, f"{domain}.{name}"):
        read.refuse("physicalName", f"a meshsim table's SQL name is '{domain}.{name}'")
    if read("physicalType") not in (None, "table"):
        read.refuse("physicalType", "meshsim tables are 'table'")
    if read("logicalType") not in (None, "object"):
        read.refuse("logicalType", "a schema object is 'object'")
    known = ("source", "columnMapping", "primaryKey", "partitionBy", "sortBy")
    custom = read("customProperties")
    extra = _custom_values(custom, where, known, problems)
    columns, pks, parts = [], [], []
    for index, prop in enumerate(read("properties") or []):
        fields, pk, part = _column(prop, f"{where}properties[{index}].", problems)
        columns.append(fields)
        if pk is not None:
            pks.append((pk, index, fields["name"]))
        if part is not None:
            parts.append((part, index, fields["name"]))
    mapping = extra.get("columnMapping", False)
    if not isinstance(mapping, bool):
        at = _custom_at(custom, "columnMapping", where)
        problems.append(f"{at}.value: '{mapping}' is not true or false")
    keys = {
        "primary_key": _keys(extra, "primaryKey", pks, columns, custom, where, problems),
        "partition_by": _keys(extra, "partitionBy", parts, columns, custom, where, problems),
    }
    table: dict[str, Any] = {
        "name": name,
        "description": read("description") or "",
        "tags": _tag_dict(read("tags"), where, problems),
        "columns": columns,
        **keys,
        "quality": _quality(read("quality"), where, False, problems),
        "column_mapping": mapping is True,
    }
    if extra.get("source") is not None:
        table["source"] = extra["source"]
    if extra.get("sortBy") is not None:
        sort_by = extra["sortBy"]
        table["sort_by"] = sort_by if isinstance(sort_by, list) else [sort_by]
    read.refuse_unread()
    return table


def _keys(
    extra: dict[str, Any],
    key: str,
    flagged: list[tuple[Any, int, str]],
    columns: list[dict[str, Any]],
    custom: list[CustomProperty] | None,
    where: str,
    problems: list[str],
) -> list[str]:
    """A table's primary or partition key: the columns' flags in position order, or the
    custom property ``key`` when it names a column that is not declared (as the export
    writes it); both at once, or the property naming declared columns only, is refused."""
    positions = [p for p, *_ in flagged if p != 10**6]
    if len(set(positions)) != len(positions):
        problems.append(f"{where}properties: two columns share a {key}Position")
    if key not in extra:
        return [n for *_, n in sorted(flagged)]
    listed = extra[key]
    names = {c["name"] for c in columns}
    at = _custom_at(custom, key, where)
    if flagged:
        problems.append(f"{at}: set next to the columns' {key} flags; keep one of them")
    elif isinstance(listed, list) and all(n in names for n in listed):
        problems.append(f"{at}: names declared columns only; flag them with {key} instead")
    return listed if isinstance(listed, list) else [listed]


def _owner(read: _Reader, owner_team: str | None, problems: list[str]) -> dict[str, Any]:
    team = read("team")
    if team is None:
        return {}
    members = team if isinstance(team, list) else team.members or []
    if isinstance(team, Team):
        team_read = _Reader(team, "team.", problems)
        if team_read("name") not in (None, owner_team):
            team_read.refuse(
                "name",
                f"'{team.name}' is not the domain's owner team ('{owner_team}'); the team "
                f"is the domain's, set in its domain.yaml",
            )
        team_read("members")
        team_read.refuse_unread()
    owners = [m for m in members if m.role == "owner"]
    out: dict[str, Any] = {}
    for index, member in enumerate(members):
        where = f"team.members[{index}]."
        member_read = _Reader(member, where, problems)
        if member_read("role") != "owner" or len(owners) > 1:
            problems.append(
                f"{where}role: a meshsim product has one owner (role: owner) and no other members"
            )
        out["owner"] = member_read("username")
        extra = _custom_values(member_read("customProperties"), where, ("osUsers",), problems)
        if "osUsers" in extra:
            out["owner_os_users"] = extra["osUsers"]
        member_read.refuse_unread()
    return out


def _freshness(items: list[ServiceLevelAgreementProperty] | None, problems: list[str]) -> Any:
    found = None
    for index, item in enumerate(items or []):
        where = f"slaProperties[{index}]."
        read = _Reader(item, where, problems)
        if read("description") not in (None, FRESHNESS_DESCRIPTION):
            read.refuse("description", "meshsim keeps no description of its freshness SLA")
        if read("property") != "freshness":
            read.refuse("property", f"'{item.property}': meshsim keeps a freshness SLA only")
        elif index > 0:
            read.refuse("property", "a second SLA property: meshsim keeps one freshness SLA")
        value, unit = read("value"), UNITS_BACK.get(str(read("unit")))
        if not isinstance(value, int) or isinstance(value, bool) or value < 0 or unit is None:
            read.refuse("value", "a freshness is a whole number of minutes, hours or days (unit)")
        elif index == 0:
            found = f"{value}{unit}"
        read.refuse_unread()
    return found


def _check_header(read: _Reader, domain: str, problems: list[str]) -> str | None:
    if read("kind") not in (None, "DataContract"):
        read.refuse("kind", "an ODCS contract is 'DataContract'")
    api = read("apiVersion") or ""
    if not api.startswith("v3."):
        read.refuse("apiVersion", f"'{api}': meshsim reads ODCS v3 contracts")
    name, product_name = read("name"), read("dataProduct")
    if name is not None and product_name is not None and name != product_name:
        read.refuse("dataProduct", f"'{product_name}' differs from the name '{name}'")
    name = product_name or name
    if name is None:
        problems.append("name: a contract needs the product's name (name or dataProduct)")
    if read("domain") not in (None, domain):
        read.refuse("domain", f"'{read('domain')}' is not the domain imported into ('{domain}')")
    if name is not None and read("id") not in (None, f"{domain}.{name}"):
        read.refuse("id", f"'{read('id')}': a meshsim contract's id is '{domain}.{name}'")
    if read("status") not in (None, *STATUSES):
        read.refuse("status", f"'{read('status')}': meshsim derives it ({', '.join(STATUSES)})")
    for index, server in enumerate(read("servers") or []):
        _server(server, index, domain, problems)
    return name


def _server(server: Server, index: int, domain: str, problems: list[str]) -> None:
    """The one server the export writes: derived from the workspace, so read back only when
    it says what meshsim would say (another server, or anything more, cannot be kept)."""
    where = f"servers[{index}]"
    if index > 0:
        problems.append(f"{where}: meshsim serves a product from one server, its domain's")
        return
    read = _Reader(server, f"{where}.", problems)
    if (read("type"), read("format")) != ("local", "delta"):
        problems.append(
            f"{where}: meshsim serves a product from its domain's storage "
            f"(type local, format delta), written at export; it cannot use another server"
        )
    if read("server") not in (None, domain):
        read.refuse("server", f"'{server.server}': the server is the domain's ('{domain}')")
    path = read("path")
    if path is not None and Path(path).parts[-2:] != ("accounts", domain):
        read.refuse(
            "path", f"'{path}': a product is stored in its domain's account (…/accounts/{domain})"
        )
    if read("description") not in (None, server_description(domain)):
        read.refuse("description", "meshsim writes the server's description itself")
    read.refuse_unread()


def product_from_contract(
    contract: OpenDataContractStandard, domain: str, owner_team: str | None
) -> Product:
    """The product spec of ``contract`` for ``domain``; :class:`ContractError` lists every
    key meshsim cannot represent and every value its spec refuses."""
    problems: list[str] = []
    read = _Reader(contract, "", problems)
    name = _check_header(read, domain, problems)
    description = read("description")
    if description is not None:
        description_read = _Reader(description, "description.", problems)
        purpose = description_read("purpose")
        description_read.refuse_unread()
    data: dict[str, Any] = {
        "name": name,
        "description": purpose if description is not None and purpose else "",
        "tags": _tag_dict(read("tags"), "", problems),
        **({"version": read("version")} if read("version") is not None else {}),
        **_owner(read, owner_team, problems),
    }
    freshness = _freshness(read("slaProperties"), problems)
    if freshness is not None:
        data["freshness_sla"] = freshness
    extra = _custom_values(read("customProperties"), "", ("production",), problems)
    if "production" in extra:
        data["production"] = extra["production"]
    data["tables"] = [
        _table(obj, domain, f"schema[{index}].", problems)
        for index, obj in enumerate(read("schema_") or [])
    ]
    read.refuse_unread()
    if problems:
        raise ContractError(problems)
    try:
        return Product.model_validate(data)
    except ValidationError as exc:
        raise ContractError(
            [f"{contract_key(e['loc'])}: {e['msg']}" for e in exc.errors()]
        ) from None


#: where a product file's field is in the contract (custom properties by their property)
_PRODUCT_KEYS = {
    "description": "description.purpose",
    "owner": "team.members[0].username",
    "owner_os_users": "team.members[0].customProperties[osUsers]",
    "freshness_sla": "slaProperties[0]",
    "production": "customProperties[production]",
    "tables": "schema",
}
_TABLE_KEYS = {
    "columns": "properties",
    "primary_key": "primaryKey",
    "partition_by": "partitioned",
    "source": "customProperties[source]",
    "column_mapping": "customProperties[columnMapping]",
}
_COLUMN_KEYS = {
    "type": "physicalType",
    "nullable": "required",
    "allow_unmasked": "customProperties[allowUnmasked]",
}


def contract_key(loc: tuple[Any, ...]) -> str:
    """The contract key path of a product-file validation error's location.

    >>> contract_key(("tables", 0, "columns", 2, "type"))
    'schema[0].properties[2].physicalType'
    """
    keys: dict[str, str] | None = _PRODUCT_KEYS
    path = ""
    for previous, part in zip((None, *loc), loc, strict=False):
        if isinstance(part, int):
            path += f"[{part}]"
            keys = {"tables": _TABLE_KEYS, "columns": _COLUMN_KEYS}.get(str(previous))
            continue
        mapped = keys.get(str(part), str(part)) if keys is not None else str(part)
        path += ("." if path else "") + mapped
    return path


def unknown_keys(raw: Any, model: Any, where: str = "") -> list[str]:
    """Keys of the contract's text that no ODCS field holds (the ODCS models ignore them
    below the top level; meshsim refuses them)."""
    found: list[str] = []
    if isinstance(model, BaseModel) and isinstance(raw, dict):
        fields = {(f.alias or n): n for n, f in type(model).model_fields.items()}
        for key, value in raw.items():
            if key not in fields:
                found.append(f"{where}{key}: not an ODCS key")
            else:
                found += unknown_keys(value, getattr(model, fields[key]), f"{where}{key}.")
    elif isinstance(model, list) and isinstance(raw, list):
        for index, (item, part) in enumerate(zip(raw, model, strict=False)):
            found += unknown_keys(item, part, f"{where.rstrip('.')}[{index}].")
    return found


def read_contract(path: Path) -> OpenDataContractStandard:
    """A contract file, validated by the ODCS models (bounded YAML, as spec files are)."""
    from meshsim.spec.loader import validation_problems
    from meshsim.spec.yamlfile import read_yaml

    data, lines, _ = read_yaml(path)
    if not isinstance(data, dict):
        raise ContractError([f"{path}:1: a contract is a mapping of keys"])
    try:
        contract = OpenDataContractStandard.model_validate(data)
    except ValidationError as exc:
        raise ContractError(
            validation_problems(exc, path, lines, OpenDataContractStandard, data)
        ) from None
    unknown = unknown_keys(data, contract)
    if unknown:
        raise ContractError([f"{path}: {p}" for p in unknown])
    return contract
