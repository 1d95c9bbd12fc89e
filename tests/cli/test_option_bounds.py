"""Option values out of range and unusable paths are refused as they are parsed, naming the
option (issue 9: OverflowError, IsADirectoryError, MemoryError before)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cli.clihelpers import assert_clean_error, run
from tests.conftest import EXAMPLE_MESH

# --- option values validated when they are parsed ----------------------------------------------


def _bench(capsys, tmp_path: Path, *args: str):
    # small enough that a bench which does start (the bug) ends in seconds
    return run(
        capsys,
        "bench",
        *("--scale", "0.01", "--smoke", "--engines", "duckdb", "--queries", "1"),
        *("--mesh", str(EXAMPLE_MESH), "--workspace", str(tmp_path / "bench")),
        *("--out", str(tmp_path / "out")),
        *args,
    )


def test_scaling_that_is_not_a_number(capsys, tmp_path: Path):
    code, _, err = _bench(capsys, tmp_path, "--scaling", "abc")
    assert_clean_error(code, err, "--scaling", "'abc'")


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "inf", "1,-2"])
def test_scaling_that_is_not_a_positive_scale(capsys, tmp_path: Path, bad: str):
    code, _, err = _bench(capsys, tmp_path, "--scaling", bad)
    assert_clean_error(code, err, "--scaling")


@pytest.mark.parametrize("command", ["build", "demo", "bench"])
@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "1e309", "100001", "0", "-1", "x"])
def test_scale_out_of_range(capsys, tmp_path: Path, command: str, bad: str):
    # a missing mesh folder: where the scale is not checked first, the command fails fast on it
    args = ["--mesh", str(tmp_path / "no-mesh"), "--workspace", str(tmp_path / "ws")]
    code, _, err = run(capsys, command, *args, f"--scale={bad}")
    assert_clean_error(code, err, "--scale")
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["history", "sales.orders", "--limit", "-1"],
        ["history", "sales.orders", "--limit", "0"],
        ["history", "sales.orders", "--limit", str(2**64)],
        ["audit", "--limit", str(2**64)],
        ["audit", "--limit", "-1"],
        ["search", "orders", "--limit", str(2**64)],
        ["search", "orders", "--limit", "-5"],
        ["approve", str(2**64), "--by", "governance_admin"],
        ["approve", "0", "--by", "governance_admin"],
        ["reject", str(2**70), "--by", "governance_admin", "--comment", "no"],
        ["revoke", str(2**63), "--by", "governance_admin"],
    ],
    ids=lambda a: " ".join(a)[:40],
)
def test_integers_out_of_range(capsys, built_workspace: Path, args: list[str]):
    code, _, err = run(capsys, *args, "--workspace", str(built_workspace))
    assert_clean_error(code, err, "is out of range")


def test_integers_at_the_bounds_are_accepted(capsys, built_workspace: Path):
    code, _, err = run(
        capsys,
        "audit",
        "--as",
        "governance_admin",
        "--limit",
        str(2**63 - 1),
        "--workspace",
        str(built_workspace),
    )
    assert code == 0, err
    code, _, err = run(
        capsys,
        "history",
        "sales.orders",
        "--limit",
        str(2**63 - 1),
        "--workspace",
        str(built_workspace),
    )
    assert code == 0, err


@pytest.mark.parametrize("bad", ["9999-12-31", "0001-01-01", "10000-01-01", "2030-02-30", "soon"])
def test_expiry_dates_out_of_range(capsys, workspace: Path, bad: str):
    code, _, err = run(
        capsys,
        "request",
        "customer.customer_profiles",
        "--as",
        "external_partner",
        "--reason",
        "x",
        "--expires",
        bad,
        "--workspace",
        str(workspace),
    )
    assert_clean_error(code, err, "--expires")


def test_expiry_date_in_range_is_accepted(capsys, workspace: Path):
    code, out, err = run(
        capsys,
        "request",
        "customer.customer_profiles",
        "--as",
        "external_partner",
        "--reason",
        "x",
        "--expires",
        "9998-12-31",
        "--workspace",
        str(workspace),
    )
    assert code == 0, err
    assert out.strip().isdigit()


# --- files -----------------------------------------------------------------------------------


def _graph(capsys, workspace: Path, out: str, fmt: str = "mermaid"):
    return run(capsys, "graph", "--format", fmt, "--out", out, "--workspace", str(workspace))


@pytest.mark.parametrize("fmt", ["mermaid", "svg"])
def test_graph_out_a_folder(capsys, built_workspace: Path, tmp_path: Path, fmt: str):
    code, _, err = _graph(capsys, built_workspace, str(tmp_path), fmt)
    assert_clean_error(code, err, "--out", "is a folder")


def test_graph_out_empty(capsys, built_workspace: Path):
    code, _, err = _graph(capsys, built_workspace, "")
    assert_clean_error(code, err, "--out", "empty")


def test_graph_out_in_a_missing_folder(capsys, built_workspace: Path, tmp_path: Path):
    code, _, err = _graph(capsys, built_workspace, str(tmp_path / "no" / "such" / "g.mmd"))
    assert_clean_error(code, err, "--out", "does not exist")


def test_graph_out_a_device(capsys, built_workspace: Path):
    code, _, err = _graph(capsys, built_workspace, "/dev/full")
    assert_clean_error(code, err, "--out", "is not a regular file (a character device)")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anything")
def test_graph_out_unwritable(capsys, built_workspace: Path, tmp_path: Path):
    target = tmp_path / "ro.mmd"
    target.write_text("")
    target.chmod(0o444)
    code, _, err = _graph(capsys, built_workspace, str(target))
    assert_clean_error(code, err, "--out", "not writable")


def test_graph_out_in_an_unwritable_folder(capsys, built_workspace: Path, tmp_path: Path):
    # a folder that cannot hold new files even for root: a file where a folder should be
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = _graph(capsys, built_workspace, str(blocker / "g.mmd"))
    assert_clean_error(code, err, "--out", "is not a folder")


def test_graph_out_writes_the_file(capsys, built_workspace: Path, tmp_path: Path):
    target = tmp_path / "g.mmd"
    code, out, err = _graph(capsys, built_workspace, str(target))
    assert code == 0, err
    assert target.read_text() == out


def test_graph_python_api_refuses_a_folder(built_workspace: Path, tmp_path: Path):
    from meshsim.errors import MeshsimError
    from meshsim.mesh import Mesh

    with Mesh.open(built_workspace) as mesh, pytest.raises(MeshsimError, match="is a folder"):
        mesh.catalog.graph("svg", tmp_path)


@pytest.mark.parametrize("bad", ["/dev/zero", "/dev/null", "", "{tmp}", "{tmp}/missing.yaml"])
def test_policies_file_must_be_a_small_regular_file(
    capsys, built_workspace: Path, tmp_path: Path, bad: str
):
    path = bad.format(tmp=tmp_path)
    code, _, err = run(capsys, "access", "--policies", path, "--workspace", str(built_workspace))
    assert_clean_error(code, err, "--policies")


def test_policies_file_too_large(capsys, built_workspace: Path, tmp_path: Path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (16 * 1024 * 1024 + 1))
    code, _, err = run(
        capsys, "access", "--policies", str(big), "--workspace", str(built_workspace)
    )
    assert_clean_error(code, err, "--policies", "larger than")


@pytest.mark.parametrize("option", ["--workspace", "--mesh"])
def test_folder_options_refuse_files_and_empty(capsys, tmp_path: Path, monkeypatch, option: str):
    monkeypatch.chdir(tmp_path)  # '' was the current folder: a build landed there
    afile = tmp_path / "file"
    afile.write_text("")
    other = "--mesh" if option == "--workspace" else "--workspace"
    value = str(EXAMPLE_MESH) if other == "--mesh" else str(tmp_path / "ws")
    for bad in ("", str(afile)):
        code, _, err = run(capsys, "build", option, bad, other, value, "--scale", "0.01")
        assert_clean_error(code, err, option)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
