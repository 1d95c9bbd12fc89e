"""The CLI's one error boundary: every bad input ends in one ``Error:`` line and a non-zero exit,
never a traceback (issue 9; issue 8 item 7). Also: the one rule for arguments that are not UTF-8."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli.clihelpers import MESHSIM, assert_clean_error, run
from tests.conftest import EXAMPLE_MESH

# --- exceptions that escape a command -----------------------------------------------------------


def test_unexpected_exception_is_one_line_naming_its_class(capsys, monkeypatch, built_workspace):
    from meshsim.mesh import Mesh

    def broken(self, **options):
        raise KeyError("tables")

    monkeypatch.setattr(Mesh, "tables", broken)
    code, out, err = run(capsys, "tables", "--workspace", str(built_workspace))
    assert code != 0 and out == ""
    assert err == (
        "Error: internal error (KeyError) in 'meshsim tables'; run with --debug for the traceback\n"
    )


def test_unexpected_exception_shows_the_traceback_under_debug(capsys, monkeypatch, built_workspace):
    from meshsim.mesh import Mesh

    def broken(self, **options):
        raise KeyError("tables")

    monkeypatch.setattr(Mesh, "tables", broken)
    code, _, err = run(capsys, "--debug", "tables", "--workspace", str(built_workspace))
    assert code != 0
    assert "Traceback" in err and "KeyError" in err


def test_value_error_that_escapes_gets_an_error_line(capsys, monkeypatch, built_workspace):
    from meshsim.mesh import Mesh

    def broken(self, **options):
        raise ValueError("invalid literal for int() with base 10: 'x'")

    monkeypatch.setattr(Mesh, "tables", broken)
    code, _, err = run(capsys, "tables", "--workspace", str(built_workspace))
    assert_clean_error(code, err, "invalid literal for int() with base 10: 'x'", "--debug")


def test_sqlglot_error_that_escapes_gets_an_error_line(capsys, monkeypatch, built_workspace):
    from sqlglot.errors import TokenError

    from meshsim.mesh import Mesh

    def broken(self, **options):
        raise TokenError("Error tokenizing 'x = \x1b[4m'y\x1b[0m'")

    monkeypatch.setattr(Mesh, "tables", broken)
    code, _, err = run(capsys, "tables", "--workspace", str(built_workspace))
    assert_clean_error(code, err, "could not read the SQL", "Error tokenizing")
    assert "\x1b" not in err


def test_os_error_names_the_file(capsys, tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = run(
        capsys, "build", "--mesh", str(EXAMPLE_MESH), "--workspace", str(blocker / "ws")
    )
    assert_clean_error(code, err, str(blocker))


def test_unterminated_quote_in_a_row_filter(capsys, workspace: Path):
    code, _, err = run(
        capsys,
        "request",
        "customer.customer_profiles",
        "--as",
        "external_partner",
        "--reason",
        "x",
        "--workspace",
        str(workspace),
    )
    assert code == 0
    code, _, err = run(
        capsys,
        "approve",
        "1",
        "--by",
        "governance_admin",
        "--row-filter",
        "c_name = 'unterminated",
        "--workspace",
        str(workspace),
    )
    assert_clean_error(code, err)


# --- arguments that are not UTF-8 ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["sql", "--as", "eu_marketing_analyst", "SELECT \udcff"],
            "Error: argument 4 ('SELECT \\xff') is not valid UTF-8 (byte 0xff at position 8)",
        ),
        (
            ["audit", "--consumer", "\udcff"],
            "Error: argument --consumer is not valid UTF-8 (byte 0xff at position 1)",
        ),
        (
            [
                "request",
                "customer.customer_profiles",
                "--as",
                "external_partner",
                "--reason=ab\udcff",
            ],
            "Error: argument --reason is not valid UTF-8 (byte 0xff at position 3)",
        ),
        (
            ["sql", "--as", "governance_admin", "SELECT '\ud800'"],
            "Error: argument 4 ('SELECT '\\ud800'') is not valid UTF-8 "
            "(lone surrogate U+D800 at position 9)",
        ),
    ],
    ids=["sql", "consumer", "reason", "surrogate"],
)
def test_arguments_that_are_not_utf8(capsys, workspace: Path, args, expected):
    before = len(_audit_records(workspace))
    code, out, err = run(capsys, *args, "--workspace", str(workspace))
    assert code != 0 and out == ""
    assert err.splitlines()[0] == expected
    assert "Traceback" not in err
    # refused before any command ran: nothing half-done to audit
    assert len(_audit_records(workspace)) == before


def test_workspace_variable_that_is_not_utf8(capsys, monkeypatch):
    monkeypatch.setenv("MESHSIM_WORKSPACE", "/tmp/\udcffws")
    code, _, err = run(capsys, "tables")
    assert_clean_error(code, err, "MESHSIM_WORKSPACE is not valid UTF-8 (byte 0xff at position 6)")


def test_non_utf8_bytes_from_a_real_shell(workspace: Path):
    proc = subprocess.run(
        [*MESHSIM, "request", "customer.customer_profiles", "--as", "external_partner"]
        + [b"--reason", b"ab\xff", "--workspace", str(workspace)],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert proc.stderr.decode() == (
        "Error: argument --reason is not valid UTF-8 (byte 0xff at position 3)\n"
        "  next: pass arguments as UTF-8 text (check the locale of the shell or script)\n"
    )


def _audit_records(workspace: Path) -> list[dict]:
    from meshsim.mesh import Mesh

    with Mesh.open(workspace) as mesh:
        return mesh.audit(as_consumer="governance_admin")
