"""Every policy SQL fragment goes through one parser that reports a PolicyError with the line
and column of the error, never a sqlglot traceback (TokenError is not a ParseError)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshsim.errors import PolicyError
from meshsim.mesh import validate
from tests.cli.clihelpers import run
from tests.conftest import edit

UNCLOSED = "a string or quoted name opened here is never closed"


def parse_fragment(text: str, **kwargs):
    from meshsim.policy.fragments import parse_fragment

    return parse_fragment(text, **kwargs)


def fragment_error(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        parse_fragment(text, what="row filter 'f'")
    return info.value


def test_unterminated_quote_names_line_and_column():
    error = fragment_error("c_nationkey IN (\n  SELECT n_nationkey\n  WHERE r_name = 'EUROPE)")
    assert (error.line, error.column) == (3, 18)
    assert error.message == (
        f"row filter 'f' is not valid SQL at line 3, column 18: {UNCLOSED} (near 'EUROPE))"
    )


def test_unterminated_double_quote_and_dollar_quote():
    assert (fragment_error('"c_name = 1').line, fragment_error('"c_name = 1').column) == (1, 1)
    assert fragment_error("c_name = $$x").column == 10


def test_syntax_error_names_line_and_column():
    error = fragment_error("c_nationkey = = 7")
    assert (error.line, error.column) == (1, 15)
    assert error.message == (
        "row filter 'f' is not valid SQL at line 1, column 15: the expression is incomplete "
        "(near =)"
    )


def test_file_and_line_of_the_fragment_prefix_the_message():
    with pytest.raises(PolicyError) as info:
        parse_fragment("x = 'a", what="condition of grant 'g'", file="mesh.yaml", line=12)
    assert info.value.message.startswith(
        "mesh.yaml:12: condition of grant 'g' is not valid SQL at line 1, column 5: "
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("   ", "it is empty; write a SQL expression"),
        ("-- only a comment", "it holds no expression (only comments?)"),
        ("a = 1; b = 2", "it holds 2 statements separated by ';'; write one expression"),
        ("(" * 3000 + "1" + ")" * 3000, "it is nested too deeply; write it with fewer parentheses"),
    ],
)
def test_fragments_that_are_not_one_expression(text: str, reason: str):
    assert fragment_error(text).message == f"row filter 'f' is not valid SQL: {reason}"


def test_a_stray_name_after_the_expression_is_an_error():
    error = fragment_error("c_nationkey = 7 c_name")
    assert (error.line, error.column) == (1, 17)
    assert "unexpected name 'c_name' after the expression" in error.message


def test_callers_get_a_tree_of_their_own():
    first = parse_fragment("a = 1", what="x")
    first.set("this", None)
    assert parse_fragment("a = 1", what="x").sql() == "a = 1"


def test_validate_reports_an_unterminated_quote_in_a_predicate(capsys, mesh_copy: Path):
    mesh_file = mesh_copy / "mesh.yaml"
    edit(
        mesh_file,
        "WHERE r.r_name = consumer.region)\n    - name: regional_orders",
        "WHERE r.r_name = 'EUROPE)\n    - name: regional_orders",
    )
    line = mesh_file.read_text().splitlines().index("    - name: regional_customers") + 4
    [problem] = [p for p in validate(mesh_copy) if p.severity == "error"]
    assert str(problem) == (
        f"{mesh_file}:{line}: error: row filter 'regional_customers': predicate is not valid "
        f"SQL at line 4, column 20: {UNCLOSED} (near 'EUROPE))"
    )
    code, out, err = run(capsys, "validate", "--mesh", str(mesh_copy))
    assert code == 1 and out == ""
    assert f"{UNCLOSED} (near 'EUROPE))" in err and "Traceback" not in err


def test_validate_reports_an_unterminated_quote_in_a_when_condition(mesh_copy: Path):
    mesh_file = mesh_copy / "mesh.yaml"
    edit(mesh_file, "when: consumer.region IS NOT NULL", "when: consumer.region = 'EU")
    line = mesh_file.read_text().splitlines().index("      when: consumer.region = 'EU") + 1
    errors = [str(p) for p in validate(mesh_copy) if p.severity == "error"]
    assert errors == [
        f"{mesh_file}:{line}: error: row filter 'regional_customers': condition is not valid SQL "
        f"at line 1, column 19: {UNCLOSED} (near 'EU)"
    ]


def test_validate_reports_an_unterminated_quote_in_a_custom_mask(mesh_copy: Path):
    mesh_file = mesh_copy / "mesh.yaml"
    edit(
        mesh_file,
        "  masks:\n",
        "  masks:\n    - name: comment_cut\n      consumers: [supply_planner]\n"
        "      columns: [supply.supplier.s_comment]\n      function: custom\n"
        '      expression: "left({column}, \'x)"\n',
    )
    line = mesh_file.read_text().splitlines().index("    - name: comment_cut") + 5
    errors = [str(p) for p in validate(mesh_copy) if p.severity == "error"]
    assert errors == [
        f"{mesh_file}:{line}: error: mask 'comment_cut': expression is not valid SQL at line 1, "
        f"column 16: {UNCLOSED} (near 'x))"
    ]


def test_approve_row_filter_with_an_unterminated_quote(capsys, workspace: Path):
    ws = str(workspace)
    code, out, _ = run(
        capsys,
        "request",
        "--workspace",
        ws,
        "--as",
        "external_partner",
        "customer.customer_profiles",
        "--reason",
        "segments",
    )
    assert code == 0
    request = out.strip()
    code, out, err = run(
        capsys,
        "approve",
        request,
        "--workspace",
        ws,
        "--by",
        "customer-data",
        "--row-filter",
        "c_nationkey = 'x",
    )
    assert code == 1 and out == ""
    assert err == (
        f"Error: row filter is not valid SQL at line 1, column 15: {UNCLOSED} (near 'x)\n"
        f"  next: pass a boolean SQL expression over the table's columns, e.g. "
        f'--row-filter "c_nationkey = 7"\n'
    )
    code, out, _ = run(capsys, "requests", "--workspace", ws, "--pending")
    assert code == 0 and "external_partner" in out
