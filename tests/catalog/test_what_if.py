"""`meshsim access --policies FILE`: a whole edited mesh.yaml or a policies block, the cells
that would change, and what validate would newly report (issue 10)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.clihelpers import assert_clean_error, run
from tests.conftest import EXAMPLE_MESH

PII_MASK = (
    '    - name: pii_keyed_hash\n      consumers: ["*"]\n      except: [governance_admin]\n'
    "      classification: pii\n      function: keyed_hash\n"
)


def _edited_mesh(tmp_path: Path) -> Path:
    """The example's mesh.yaml without its PII mask."""
    text = (EXAMPLE_MESH / "mesh.yaml").read_text()
    assert PII_MASK in text
    edited = tmp_path / "mesh.yaml"
    edited.write_text(text.replace(PII_MASK, ""))
    return edited


def test_a_whole_mesh_yaml_shows_the_exposure_and_the_lint(capsys, cli_catalog, tmp_path: Path):
    edited = _edited_mesh(tmp_path)
    code, out, err = run(capsys, "access", "--policies", str(edited), "--format", "json")
    assert code == 0
    changed = {(r["consumer"], r["column"]): r for r in json.loads(out)}
    cell = changed[("finance_controller", "c_name")]
    assert (cell["state"], cell["what_if_state"]) == ("masked", "full")
    assert (
        f"{edited}: error: PII column 'customer.customer.c_name' is visible unmasked to "
        "'finance_controller' (grant finance_customer_profiles)"
    ) in err
    assert "Traceback" not in err
    # nothing applied: the current matrix still masks the column
    code, out, _ = run(capsys, "access", "--consumer", "finance_controller", "--format", "json")
    assert {r["state"] for r in json.loads(out) if r["column"] == "c_name"} == {"masked"}


def test_a_policies_block_with_or_without_its_header(capsys, cli_catalog, tmp_path: Path):
    block = "grants:\n  - name: partner_parts\n    consumers: [external_partner]\n    tables: [supply.partsupp]\n"
    for text in (block, "policies:\n" + "".join(f"  {line}\n" for line in block.splitlines())):
        path = tmp_path / "policies.yaml"
        path.write_text(text)
        code, out, err = run(capsys, "access", "--policies", str(path), "--format", "json")
        assert code == 0, err
        full = {
            (r["consumer"], r["table"]) for r in json.loads(out) if r["what_if_state"] == "full"
        }
        assert full == {("external_partner", "supply.partsupp")}


def test_a_consumer_the_edit_adds_shows_as_absent_before(capsys, cli_catalog, tmp_path: Path):
    text = (EXAMPLE_MESH / "mesh.yaml").read_text()
    text = text.replace(
        "consumers:\n  - name: governance_admin",
        "consumers:\n  - name: apac_analyst\n    attributes: {regin: ASIA}\n"
        "  - name: governance_admin",
    ).replace(
        "    - name: marketing_order_history\n      consumers: [eu_marketing_analyst]",
        "    - name: marketing_order_history\n      consumers: [eu_marketing_analyst, apac_analyst]",
    )
    edited = tmp_path / "mesh.yaml"
    edited.write_text(text)
    code, out, err = run(
        capsys,
        "access",
        "--policies",
        str(edited),
        "--consumer",
        "apac_analyst",
        "--format",
        "json",
    )
    assert code == 0, err
    rows = json.loads(out)
    assert rows and {r["state"] for r in rows} == {"absent"}
    assert {r["table"] for r in rows if r["what_if_state"] != "denied"} == {
        "sales.orders",
        "sales.lineitem",
    }


def test_a_bad_what_if_file_is_one_error(capsys, cli_catalog, tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "grants:\n  - name: x\n    consumers: [external_partner]\n    tabels: [supply.part]\n"
    )
    code, _, err = run(capsys, "access", "--policies", str(path))
    assert_clean_error(code, err, "tabels")
