"""ODCS v3 contracts: export, import, export again is lossless, exports validate against the
standard's JSON Schema, and every key meshsim cannot represent is refused by its path."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import pytest
import yaml

from meshsim.contracts.odcs import contract_yaml, export_contract, logical_type
from meshsim.contracts.reader import product_from_contract, read_contract
from meshsim.errors import ContractError
from meshsim.spec.loader import load_mesh
from meshsim.spec.models import Product
from tests.conftest import EXAMPLE_MESH

#: a product with every field a product file has, every quality rule kind (on columns and on
#: tables, library and custom forms), odd column names and nested types
EVERYTHING = {
    "name": "events",
    "description": "Everything a product file can say.",
    "owner": "ops-team",
    "owner_os_users": ["alice", "bob"],
    "tags": {"confidentiality": "internal", "channel": "b2c"},
    "version": "2.3.4",
    "freshness_sla": "30m",
    "production": {"method": "pipeline", "schedule": "hourly", "description": "Kafka sink."},
    "tables": [
        {
            "name": "events",
            "description": "One row per event.",
            "primary_key": ["id", "Super Name"],
            "partition_by": ["day"],
            "tags": {"channel": "b2b"},
            "column_mapping": True,
            "source": {"csv": "data/events.csv", "header": True, "delim": ";"},
            "columns": [
                {
                    "name": "id",
                    "type": "bigint",
                    "nullable": False,
                    "classification": "internal",
                    "quality": [
                        {"not_null": True},
                        {"unique": True, "severity": "warn", "name": "ids_unique"},
                    ],
                },
                {"name": "Super Name", "type": "varchar", "nullable": False},
                {"name": "a.b: c", "type": "decimal(15,2)", "description": "dots, colon"},
                {"name": "#hash 'quote\"", "type": "double", "tags": {"confidentiality": "public"}},
                {
                    "name": "status",
                    "type": "varchar",
                    "quality": [
                        {"accepted_values": ["F", "O", "P"], "description": "status codes"},
                        {"regex": "^[A-Z]$"},
                        {"not_null": False},
                    ],
                },
                {
                    "name": "email",
                    "type": "varchar",
                    "classification": "pii",
                    "allow_unmasked": {"consumers": ["finance"], "reason": "KYC"},
                },
                {
                    "name": "discount",
                    "type": "decimal(4,2)",
                    "quality": [{"range": {"min": 0, "max": 0.1}}],
                },
                {"name": "day", "type": "date", "quality": [{"freshness": "2d"}]},
                {"name": "at", "type": "timestamptz"},
                {
                    "name": "payload",
                    "type": "struct<a: int, `Super Name`: array<map<string, long>>>",
                },
                {"name": "flags", "type": "array<boolean>"},
                {"name": "blob", "type": "blob"},
                {
                    "name": "customer",
                    "type": "bigint",
                    "quality": [{"references": "crm.customers", "to": ["c_id"]}],
                },
            ],
            "quality": [
                {"unique": ["id", "Super Name"]},
                {"not_null": ["id", "day"], "severity": "warn"},
                {"row_count": {"min": 1, "max": 1000000}},
                {"row_count": {"min": 5}, "name": "at_least_five"},
                {"row_count": {"max": 7}, "name": "at_most_seven"},
                {"row_count": {"min": 3, "max": 3}, "name": "exactly_three"},
                {"row_count": {"min": "a"}, "name": "text_bound"},
                {"accepted_values": [1, 2], "column": "id"},
                {"range": {"max": 10}, "column": "discount"},
                {"freshness": "24h", "column": "at"},
                {"references": "sales.orders", "columns": ["id"], "to": ["o_orderkey"]},
                {
                    "sql": "SELECT * FROM ops.events WHERE at < day",
                    "name": "after_day",
                    "severity": "warn",
                    "description": "events are stamped after their day",
                },
            ],
        },
        {"name": "empty_one", "source": {"sql": "SELECT 1 AS x"}},
        {"name": "registered", "source": {"location": "/data/delta"}, "partition_by": ["p"]},
    ],
}


def _export(product: Product, domain: str = "ops", team: str | None = "ops-team") -> str:
    contract = export_contract(
        domain, product, owner_team=team, storage=Path("/ws/accounts") / domain, status="active"
    )
    return contract_yaml(contract)


def _import(tmp_path: Path, text: str, domain: str = "ops", team: str | None = "ops-team"):
    file = tmp_path / "contract.yaml"
    file.write_text(text)
    return product_from_contract(read_contract(file), domain, team)


def _schema_validator():
    from jsonschema import Draft201909Validator

    text = (files("open_data_contract_standard") / "schema.json").read_text()
    return Draft201909Validator(json.loads(text))


def _assert_valid(text: str) -> None:
    errors = sorted(_schema_validator().iter_errors(yaml.safe_load(text)), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def test_the_whole_product_round_trips(tmp_path: Path):
    product = Product.model_validate(EVERYTHING)
    text = _export(product)
    back = _import(tmp_path, text)
    assert back == product
    assert _export(back) == text


@pytest.mark.parametrize("ref", [p.ref for p in load_mesh(EXAMPLE_MESH).products()])
def test_every_example_product_round_trips_and_validates(tmp_path: Path, ref: str):
    spec = load_mesh(EXAMPLE_MESH)
    product = spec.product(ref)
    assert product is not None
    team = next(d for d in spec.domains if d.name == product.domain).domain.owner_team
    text = _export(product.product, product.domain, team)
    _assert_valid(text)
    back = _import(tmp_path, text, product.domain, team)
    assert back == product.product
    assert _export(back, product.domain, team) == text


def test_the_export_validates_against_the_odcs_schema():
    _assert_valid(_export(Product.model_validate(EVERYTHING)))


def test_the_schema_validator_can_fail():
    """The validation above is real: a contract missing required keys is reported."""
    text = _export(Product.model_validate(EVERYTHING))
    data = yaml.safe_load(text)
    del data["id"]
    data["schema"][0]["properties"][0]["logicalType"] = "float"
    assert len(list(_schema_validator().iter_errors(data))) >= 2


def test_the_export_uses_odcs_fields_where_odcs_has_them():
    data = yaml.safe_load(_export(Product.model_validate(EVERYTHING)))
    assert data["apiVersion"].startswith("v3.") and data["kind"] == "DataContract"
    assert data["version"] == "2.3.4" and data["status"] == "active"
    assert data["servers"] == [
        {
            "server": "ops",
            "type": "local",
            "description": "the storage account of domain 'ops'",
            "format": "delta",
            "path": "/ws/accounts/ops",
        }
    ]
    assert data["team"]["name"] == "ops-team"
    assert data["team"]["members"][0]["username"] == "ops-team"
    assert data["team"]["members"][0]["role"] == "owner"
    assert data["slaProperties"][0]["property"] == "freshness"
    assert (data["slaProperties"][0]["value"], data["slaProperties"][0]["unit"]) == (30, "minutes")
    table = data["schema"][0]
    assert table["physicalName"] == "ops.events"
    first, second, *_ = table["properties"]
    assert first["primaryKey"] and first["primaryKeyPosition"] == 1 and first["required"]
    assert second["name"] == "Super Name" and second["primaryKeyPosition"] == 2
    assert first["logicalType"] == "integer" and first["physicalType"] == "bigint"
    assert first["quality"][0] == {
        "type": "library",
        "metric": "nullValues",
        "mustBe": 0,
        "severity": "error",
    }
    assert first["quality"][1]["severity"] == "warning"
    status = table["properties"][4]
    assert status["quality"][0]["arguments"] == {"validValues": ["F", "O", "P"]}
    assert status["quality"][1]["arguments"] == {"pattern": "^[A-Z]$"}
    kinds = [(q["type"], q.get("metric")) for q in table["quality"]]
    assert kinds[:3] == [
        ("library", "duplicateValues"),
        ("library", "nullValues"),
        ("library", "rowCount"),
    ]
    sql = table["quality"][-1]
    assert sql["type"] == "sql" and sql["mustBe"] == 0
    assert "SELECT * FROM ops.events WHERE at < day" in sql["query"]
    custom = table["quality"][9]
    assert custom == {
        "type": "custom",
        "severity": "error",
        "engine": "meshsim",
        "implementation": {"freshness": "24h", "column": "at"},
    }


@pytest.mark.parametrize(
    ("spec_type", "logical"),
    [
        ("bigint", "integer"),
        ("tinyint", "integer"),
        ("double", "number"),
        ("decimal(15,2)", "number"),
        ("varchar", "string"),
        ("date", "date"),
        ("timestamptz", "timestamp"),
        ("boolean", "boolean"),
        ("struct<a: int>", "object"),
        ("array<int>", "array"),
        ("map<string, int>", "map"),
    ],
)
def test_logical_types(spec_type: str, logical: str):
    assert logical_type(spec_type) == logical


MINIMAL = """\
apiVersion: v3.1.0
kind: DataContract
id: ops.things
version: 1.0.0
name: things
schema:
  - name: things
    properties:
      - name: id
        logicalType: integer
        required: true
"""


def test_a_contract_from_elsewhere_imports_with_types_from_logical_types(tmp_path: Path):
    product = _import(tmp_path, MINIMAL)
    column = product.tables[0].columns[0]
    assert (product.name, column.name, column.type, column.nullable) == (
        "things",
        "id",
        "bigint",
        False,
    )


def _refused(tmp_path: Path, text: str, *needles: str, domain: str = "ops") -> str:
    with pytest.raises(ContractError) as caught:
        _import(tmp_path, text, domain)
    message = caught.value.message
    for needle in needles:
        assert needle in message, message
    return message


@pytest.mark.parametrize(
    ("edit", "needles"),
    [
        (
            ("        required: true\n", "        required: true\n        colour: red\n"),
            ("schema[0].properties[0].colour", "not an ODCS key"),
        ),
        (
            ("version: 1.0.0\n", "version: 1.0.0\nprice: {priceAmount: 3}\n"),
            ("price", "meshsim has no place"),
        ),
        (
            ("        required: true\n", "        required: true\n        businessName: Id\n"),
            ("schema[0].properties[0].businessName",),
        ),
        (
            ("        required: true\n", "        required: true\n        unique: true\n"),
            ("schema[0].properties[0].unique",),
        ),
        (("version: 1.0.0\n", "version: 1.0.0\ndomain: sales\n"), ("domain", "'sales'")),
        (("id: ops.things\n", "id: 53581432-6c55-4ba2-a65f-72344a91553a\n"), ("id",)),
        (("version: 1.0.0\n", "version: 1.0.0\nstatus: retired\n"), ("status", "'retired'")),
        (("version: 1.0.0\n", "version: 1.0.0\ntags: [finance]\n"), ("tags[0]", "key:value")),
        (("apiVersion: v3.1.0\n", "apiVersion: v2.2.2\n"), ("apiVersion",)),
        (
            (
                "version: 1.0.0\n",
                "version: 1.0.0\nservers: [{server: s, type: s3, location: 's3://b'}]\n",
            ),
            ("servers[0]", "type local, format delta"),
        ),
        (
            (
                "version: 1.0.0\n",
                "version: 1.0.0\ncustomProperties: [{property: colour, value: red}]\n",
            ),
            ("customProperties[0].property", "'colour'"),
        ),
        (
            (
                "version: 1.0.0\n",
                "version: 1.0.0\nslaProperties: [{property: retention, value: 3, unit: d}]\n",
            ),
            ("slaProperties[0].property", "'retention'"),
        ),
        (
            ("version: 1.0.0\n", "version: 1.0.0\nteam: {name: other-team}\n"),
            ("team.name", "'other-team'"),
        ),
        (
            ("version: 1.0.0\n", "version: 1.0.0\ndescription: {usage: reports}\n"),
            ("description.usage",),
        ),
        (
            ("        logicalType: integer\n", "        logicalType: object\n"),
            ("needs a physicalType",),
        ),
        (
            (
                "        logicalType: integer\n",
                "        logicalType: string\n        physicalType: bigint\n",
            ),
            ("'string' is not the logical type of 'bigint'",),
        ),
        (
            ("        logicalType: integer\n", "        physicalType: int128\n"),
            ("unknown column type",),
        ),
    ],
)
def test_what_meshsim_cannot_represent_is_refused_by_its_key(tmp_path: Path, edit, needles):
    old, new = edit
    assert old in MINIMAL
    _refused(tmp_path, MINIMAL.replace(old, new, 1), *needles)


@pytest.mark.parametrize(
    ("check", "needle"),
    [
        ("{metric: missingValues, mustBe: 0}", "'missingValues' has no meshsim rule"),
        ("{metric: nullValues, mustBeLessThan: 5}", "needs 'mustBe: 0'"),
        ("{metric: nullValues, mustBe: 0, unit: percent}", "unit: not read"),
        ("{type: text, description: be nice}", "'text' checks cannot run"),
        ("{type: custom, engine: soda, implementation: 'x > 1'}", "'soda' checks cannot run"),
        ("{type: sql, query: 'SELECT 1', mustBe: 0}", "count of failing rows"),
        ("{metric: invalidValues, mustBe: 0, arguments: {minLength: 3}}", "validValues, pattern"),
        ("{metric: rowCount, mustNotBe: 0}", "a rowCount check needs"),
        ("{metric: nullValues, mustBe: 0, severity: fatal}", "'fatal'"),
        ("{metric: nullValues, mustBe: 0, dimension: completeness}", "quality[0].dimension"),
        ("{type: custom, engine: meshsim, implementation: {range: {}}}", "give 'min', 'max'"),
    ],
)
def test_quality_checks_meshsim_cannot_run_are_refused(tmp_path: Path, check: str, needle: str):
    text = MINIMAL + f"        quality: [{check}]\n"
    message = _refused(tmp_path, text, needle)
    assert "schema[0].properties[0].quality[0]" in message


def test_every_problem_is_listed_at_once(tmp_path: Path):
    text = MINIMAL.replace("version: 1.0.0\n", "version: 1.0.0\ntenant: x\nstatus: retired\n")
    message = _refused(tmp_path, text, "tenant", "status")
    assert message.startswith("2 problems")


def test_a_contract_that_is_not_odcs_names_the_file_and_line(tmp_path: Path):
    text = MINIMAL.replace("version: 1.0.0\n", "version: 1.0.0\nvendorThing: 3\n")
    message = _refused(tmp_path, text, "contract.yaml:5", "vendorThing")
    assert "unknown key" in message


def test_keys_at_their_odcs_default_are_not_refused(tmp_path: Path):
    text = MINIMAL.replace(
        "        required: true\n",
        "        required: true\n        unique: false\n        deprecated: false\n"
        "        criticalDataElement: false\n        tags: []\n",
    )
    assert _import(tmp_path, text).tables[0].columns[0].name == "id"


@pytest.mark.parametrize(
    "spec_type",
    [
        "struct<a: int, b: varchar>",
        "array<int>",
        "map<string, bigint>",
        "map<string, struct<a: int, m: map<int, array<date>>>>",
        "array<map<string, int>>",
        "struct<m: map<string, array<struct<x: double>>>>",
    ],
)
def test_every_type_kind_validates_and_round_trips(tmp_path: Path, spec_type: str):
    data = {"name": "x", "tables": [{"name": "x", "columns": [{"name": "c", "type": spec_type}]}]}
    product = Product.model_validate(data)
    text = _export(product)
    _assert_valid(text)
    assert _import(tmp_path, text) == product


def test_a_map_definition_that_disagrees_with_the_type_is_refused(tmp_path: Path):
    data = {
        "name": "x",
        "tables": [{"name": "x", "columns": [{"name": "c", "type": "map<string, int>"}]}],
    }
    text = _export(Product.model_validate(data)).replace(
        "physicalType: int\n", "physicalType: bigint\n"
    )
    _refused(tmp_path, text, "schema[0].properties[0].map")
