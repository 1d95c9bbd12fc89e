from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.clihelpers import run
from tests.conftest import EXAMPLE_MESH, edit


def test_help_lists_the_commands(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("validate", "schema", "build", "demo", "domains", "tables", "history"):
        assert command in out


def test_validate_the_example(capsys):
    code, out, _ = run(capsys, "validate", "--mesh", str(EXAMPLE_MESH))
    assert code == 0 and "is valid" in out


def test_validate_reports_problems_and_fails(capsys, mesh_copy: Path):
    edit(mesh_copy / "sales" / "products" / "order_history.yaml", "owner: sales-ops\n", "")
    code, _, err = run(capsys, "validate", "--mesh", str(mesh_copy))
    assert code == 1
    assert "product 'sales.order_history' has no owner" in err
    assert "1 error(s)" in err


def test_spec_error_goes_through_the_boundary(capsys, mesh_copy: Path):
    edit(mesh_copy / "mesh.yaml", "classifications:", "clasifications:")
    code, out, err = run(capsys, "validate", "--mesh", str(mesh_copy))
    assert code == 1 and out == ""
    assert err.startswith("Error: ")
    assert "did you mean 'classifications'?" in err
    assert "Traceback" not in err


def test_missing_workspace_names_the_next_command(capsys, tmp_path: Path):
    code, _, err = run(capsys, "tables", "--workspace", str(tmp_path / "none"))
    assert code == 1
    assert err == (
        f"Error: no built mesh in workspace '{tmp_path / 'none'}'\n"
        f"  next: run 'meshsim build --workspace {tmp_path / 'none'}' (or 'meshsim demo') first\n"
    )


def test_debug_shows_the_traceback(capsys, tmp_path: Path):
    code, _, err = run(capsys, "--debug", "tables", "--workspace", str(tmp_path / "none"))
    assert code == 1 and "Traceback" in err


def test_workspace_from_environment(capsys, built_workspace: Path, monkeypatch):
    monkeypatch.setenv("MESHSIM_WORKSPACE", str(built_workspace))
    code, out, _ = run(capsys, "tables", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert [r["table"] for r in rows][:2] == ["customer.customer", "customer.nation"]
    assert {"table", "product", "version", "rows", "files", "bytes", "external", "location"} == set(
        rows[0]
    )


def test_domains_and_history(capsys, built_workspace: Path):
    code, out, _ = run(capsys, "domains", "--workspace", str(built_workspace), "--format", "csv")
    assert code == 0
    assert out.splitlines()[0] == "domain,owner_team,description,contact,products,account"
    assert out.splitlines()[1].startswith("customer,customer-data,")
    code, out, _ = run(
        capsys, "history", "sales.orders", "--workspace", str(built_workspace), "--format", "json"
    )
    assert code == 0
    (entry,) = json.loads(out)
    assert entry["version"] == 0 and entry["operation"] in {"CREATE TABLE", "WRITE"}


def test_history_of_unknown_table_suggests(capsys, built_workspace: Path):
    code, _, err = run(capsys, "history", "sales.order", "--workspace", str(built_workspace))
    assert code == 1
    assert "table 'sales.order' is not defined; did you mean 'sales.orders'?" in err


def test_schema_prints_json_schema(capsys):
    code, out, _ = run(capsys, "schema", "product")
    assert code == 0
    schema = json.loads(out)
    assert schema["additionalProperties"] is False and "tables" in schema["properties"]
    code, _, err = run(capsys, "schema", "prodcut")
    assert code == 1 and "did you mean 'product'?" in err


@pytest.mark.parametrize("bad", ["0", "-1"])
def test_build_rejects_bad_scale(capsys, tmp_path: Path, bad: str):
    code, _, err = run(capsys, "build", "--workspace", str(tmp_path / "ws"), f"--scale={bad}")
    assert code == 2 and f"Invalid value for '--scale': {bad} is out of range" in err


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_build_api_rejects_bad_scale(tmp_path: Path, bad: float):
    from meshsim.errors import SpecError
    from meshsim.mesh import Mesh

    with pytest.raises(SpecError, match="scale factor must be positive"):
        Mesh.build(EXAMPLE_MESH, tmp_path / "ws", scale=bad)
