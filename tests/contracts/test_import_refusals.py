"""What a contract import would drop silently is refused by its key (issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshsim.contracts.reader import product_from_contract, read_contract
from meshsim.errors import ContractError
from tests.contracts.test_odcs import MINIMAL

SERVER = "servers:\n  - {server: ops, type: local, format: delta, path: /ws/accounts/ops}\n"


def _import(tmp_path: Path, text: str):
    file = tmp_path / "contract.yaml"
    file.write_text(text)
    return product_from_contract(read_contract(file), "ops", "ops-team")


def _with(top: str = "", column: str = "", table: str = "") -> str:
    text = MINIMAL.replace("version: 1.0.0\n", "version: 1.0.0\n" + top)
    text = text.replace("    properties:\n", table + "    properties:\n")
    return text + column


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            _with(
                SERVER.replace(
                    "path: /ws/accounts/ops", "path: /ws/accounts/ops, environment: prod"
                )
            ),
            "servers[0].environment",
        ),
        (_with(SERVER.replace("}", ", roles: [{role: reader}]}")), "servers[0].roles"),
        (
            _with(SERVER.replace("}", ", customProperties: [{property: a, value: b}]}")),
            "servers[0].customProperties",
        ),
        (_with(SERVER + "  - {server: ops2, type: local, format: delta}\n"), "servers[1]"),
        (_with(SERVER.replace("/ws/accounts/ops", "s3://elsewhere/data")), "servers[0].path"),
        (_with(SERVER.replace("server: ops,", "server: other,")), "servers[0].server"),
        (_with("tags: ['team:a', 'team:b']\n"), "tags[1]"),
        (
            _with(
                "slaProperties:\n  - {property: freshness, value: 24, unit: hours}\n"
                "  - {property: freshness, value: 2, unit: days}\n"
            ),
            "slaProperties[1]",
        ),
        (
            _with("slaProperties: [{property: latency, value: 4, unit: hours}]\n"),
            "slaProperties[0].property",
        ),
        (
            _with(
                "slaProperties: [{property: freshness, value: 4, unit: hours, description: x}]\n"
            ),
            "slaProperties[0].description",
        ),
        (
            _with(
                table="    customProperties: [{property: primaryKey, value: [name]}]\n",
                column="        primaryKey: true\n",
            ),
            "schema[0].customProperties[0]",
        ),
        (
            _with(table="    customProperties: [{property: columnMapping, value: 'no'}]\n"),
            "schema[0].customProperties[0].value",
        ),
        (
            _with(
                table="    customProperties:\n"
                "      - {property: columnMapping, value: true}\n"
                "      - {property: columnMapping, value: false}\n"
            ),
            "schema[0].customProperties[1]",
        ),
        (
            _with(table="    customProperties: [{property: columnMapping, value: true, id: x1}]\n"),
            "schema[0].customProperties[0].id",
        ),
        (
            _with(
                column="        quality: [{metric: nullValues, rule: duplicateValues, mustBe: 0}]\n"
            ),
            "schema[0].properties[0].quality[0].rule",
        ),
        (
            _with(
                column="        quality: [{type: custom, engine: meshsim, severity: error,"
                " implementation: {range: {min: 0}, severity: warn}}]\n"
            ),
            "schema[0].properties[0].quality[0].implementation.severity",
        ),
    ],
)
def test_what_the_import_would_drop_is_refused_by_its_key(tmp_path: Path, text: str, needle: str):
    with pytest.raises(ContractError) as caught:
        _import(tmp_path, text)
    assert needle in caught.value.message, caught.value.message


def test_the_server_meshsim_writes_imports(tmp_path: Path):
    assert _import(tmp_path, _with(SERVER)).name == "things"


def test_spec_errors_name_contract_keys_under_one_heading(tmp_path: Path):
    waiver = (
        "        customProperties: [{property: allowUnmasked, value: {consumers: [], reason: x}}]\n"
    )
    file = tmp_path / "contract.yaml"
    file.write_text(_with(column=waiver))
    with pytest.raises(ContractError) as caught:
        product_from_contract(read_contract(file), "ops", "ops-team")
    message = caught.value.message
    assert "schema[0].properties[0].customProperties[allowUnmasked].consumers" in message, message
    assert "tables.0" not in message


def test_the_heading_names_the_contract_file(tmp_path: Path):
    from meshsim.contracts.service import read_product

    file = tmp_path / "contract.yaml"
    file.write_text(_with("tenant: x\nstatus: retired\n"))
    with pytest.raises(ContractError) as caught:
        read_product(file, "ops", "ops-team")
    assert caught.value.message.startswith(f"2 problems in the contract {file}:")
