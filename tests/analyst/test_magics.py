"""Issue 12, Jupyter: ``%load_ext meshsim`` gives ``%meshsim`` and ``%%meshsql`` (JupySQL
conventions), tested through IPython's InteractiveShell; answers have notebook and terminal
reprs; ``import meshsim`` never imports IPython."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("IPython")


@pytest.fixture
def ip(workspace: Path) -> Iterator:
    from tests.ipythonshell import interactive_shell

    with interactive_shell() as shell:
        shell.run_line_magic("load_ext", "meshsim")
        shell.run_line_magic("meshsim", f"connect --workspace {workspace}")
        yield shell


def test_meshsql_returns_the_governed_result(ip, workspace):
    from meshsim.mesh import Mesh
    from meshsim.query.result import Result

    result = ip.run_cell_magic(
        "meshsql",
        "--as eu_marketing_analyst",
        "-- EU customers\nSELECT c_phone FROM customer.customer",
    )
    assert isinstance(result, Result)
    with Mesh.open(workspace) as mesh:
        expected = mesh.sql("eu_marketing_analyst", "SELECT c_phone FROM customer.customer")
    assert result.fetchall() == expected.fetchall()
    assert all(phone.startswith("****") for (phone,) in result.fetchall())
    html = result._repr_html_()
    assert f"{result.num_rows} rows" in html and html.count("<tr>") <= 21  # capped


def test_meshsql_stores_the_result_with_var_lt_lt(ip):
    shown = ip.run_cell_magic(
        "meshsql", "--as supply_planner parts <<", "SELECT count(*) AS n FROM supply.part;"
    )
    assert shown is None
    assert ip.user_ns["parts"].fetchall() == [(2000,)]


def test_meshsql_runs_every_statement_and_returns_the_last(ip):
    result = ip.run_cell_magic("meshsql", "--as supply_planner", "SELECT 1 AS a; SELECT 2 AS b;")
    assert result.columns == ["b"]


def test_connect_sets_the_consumer_for_later_cells(ip):
    ip.run_line_magic("meshsim", "connect --as supply_planner")
    result = ip.run_cell_magic("meshsql", "", "SELECT count(*) FROM supply.supplier")
    assert result.fetchall() == [(100,)]


@pytest.mark.parametrize(
    ("line", "cell", "needle"),
    [
        ("--as supply_planner", "SELECT c_name FROM customer.customer", "no grant on table"),
        ("--as nobody", "SELECT 1", "consumer 'nobody' is not defined"),
        ("--bogus", "SELECT 1", "does not take '--bogus'"),
        ("--as", "SELECT 1", "--as needs a value"),
        ("--as supply_planner", "-- nothing\n", "holds no SQL statement"),
        ("--as supply_planner 1x <<", "SELECT 1", "not a Python name"),
        ("--as supply_planner", "SELECT 'open", "could not read the SQL"),
    ],
)
def test_errors_are_one_line_without_a_traceback(ip, capsys, line, cell, needle):
    assert ip.run_cell_magic("meshsql", line, cell) is None
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and needle in err, err
    assert "Traceback" not in err and len(err.splitlines()) <= 2


def test_meshsql_without_a_consumer_says_how_to_name_one(capsys):
    from tests.ipythonshell import interactive_shell

    with interactive_shell() as shell:
        shell.run_line_magic("load_ext", "meshsim")
        assert shell.run_cell_magic("meshsql", "", "SELECT 1") is None
    assert "say which consumer" in capsys.readouterr().err


def test_the_line_magic_runs_commands_in_the_connected_workspace(ip, capsys):
    ip.run_line_magic("meshsim", "tables --as supply_planner --format csv")
    out = capsys.readouterr().out
    assert "supply.part," in out and "customer.customer" not in out
    ip.run_line_magic("meshsim", "show supply.supply_catalog --as nobody")
    err = capsys.readouterr().err
    assert "Error: consumer 'nobody'" in err and "Traceback" not in err


def test_answers_have_notebook_and_terminal_reprs(ip, workspace):
    from meshsim.mesh import Mesh

    with Mesh.open(workspace) as mesh:
        access = mesh.access("supply_planner")
        search = mesh.search("orders")
        explanation = mesh.explain("supply_planner", "SELECT count(*) FROM supply.part")
        details = mesh.show("supply.supply_catalog", as_consumer="supply_planner")
    assert "<table>" in access._repr_html_() and "supply.part" in access._repr_html_()
    assert repr(access).startswith("what supply_planner can read (")
    assert "s_acctbal" in repr(access) and "customer.customer" not in repr(access)
    cells = {(r["table"], r["column"]): r["state"] for r in access.cells()}
    assert cells["supply.supplier", "s_acctbal"] == "denied"
    assert "sales.orders" in repr(search) and "<td>sales.orders</td>" in search._repr_html_()
    formatted, _ = ip.display_formatter.format(explanation)
    assert "supply.part @ version" in formatted["text/html"]
    assert formatted["text/plain"] == str(explanation)
    formatted, _ = ip.display_formatter.format(details)
    assert "who can read it" in formatted["text/html"] and "<script" not in formatted["text/html"]
    assert formatted["text/plain"].startswith("supply.supply_catalog (1 row)")


def test_reprs_escape_values():
    from meshsim.reprs import Listing

    rows = Listing([{"name": "<script>alert(1)</script>", "note": "\x1b[2K"}], title="<b>")
    assert "<script>" not in rows._repr_html_() and "&lt;b&gt;" in rows._repr_html_()
    assert "\x1b" not in repr(rows)


def test_import_meshsim_does_not_import_ipython():
    code = "import sys, meshsim; print('IPython' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    code = (
        "import sys\nfrom meshsim.cli import main\nmain(['--help'])\n"
        "print('IPython' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("False")


def test_the_shell_leaves_the_process_main_module_alone():
    import sys

    from tests.ipythonshell import interactive_shell

    main = sys.modules["__main__"]
    with interactive_shell() as shell:
        shell.run_line_magic("load_ext", "meshsim")
    assert sys.modules["__main__"] is main
