"""Issue 12, the shell's dot-commands and statement reading, driven through its input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from meshsim.console import NullConsole
from meshsim.mesh import Mesh
from meshsim.shell import Shell


class Recording(NullConsole):
    def __init__(self) -> None:
        self.notes: list[str] = []
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def error(self, text: str) -> None:
        self.errors.append(text)


def shell_run(workspace: Path, consumer: str, text: str) -> Recording:
    console = Recording()
    with Mesh.open(workspace) as mesh:
        Shell(mesh, consumer, console).run(stdin=io.StringIO(text))
    return console


def test_output_writes_results_to_a_new_file_then_back(workspace, tmp_path, capsys):
    target = tmp_path / "results.csv"
    script = (
        f".mode csv\n.output {target}\nSELECT 1 AS a;\nSELECT 2 AS b;\n.output\nSELECT 3 AS c;\n"
    )
    shell_run(workspace, "eu_marketing_analyst", script)
    assert target.read_text() == "a\n1\nb\n2\n"
    assert capsys.readouterr().out == "c\n3\n"


def test_output_refuses_an_existing_file(workspace, tmp_path, capsys):
    target = tmp_path / "kept.txt"
    target.write_text("precious")
    console = shell_run(workspace, "eu_marketing_analyst", f".output {target}\nSELECT 1;\n")
    assert target.read_text() == "precious"
    assert any("already exists" in e for e in console.errors)
    assert "1" in capsys.readouterr().out  # results stay on the screen


def test_a_semicolon_in_a_string_does_not_end_the_statement(workspace, capsys):
    shell_run(workspace, "eu_marketing_analyst", ".mode csv\nSELECT 'a;\nb' AS t;\n")
    assert capsys.readouterr().out == 't\n"a;\nb"\n'


def test_statements_on_one_line_all_run(workspace, capsys):
    shell_run(workspace, "eu_marketing_analyst", ".mode csv\nSELECT 1 AS a; SELECT 2 AS b;\n")
    assert capsys.readouterr().out == "a\n1\nb\n2\n"


@pytest.mark.parametrize("word", ["exit", "quit", "\\q", ".quit", ".exit"])
def test_exit_words_stop_reading(workspace, capsys, word: str):
    shell_run(workspace, "eu_marketing_analyst", f".mode csv\n{word}\nSELECT 1 AS a;\n")
    assert capsys.readouterr().out == ""


def test_schema_shows_only_the_consumers_view(workspace):
    console = shell_run(workspace, "supply_planner", ".schema\n")
    schema = console.notes[-1]
    assert "CREATE TABLE supply.supplier (" in schema and "s_acctbal" not in schema
    assert "customer.customer" not in schema and "sales.lineitem" in schema


def test_bad_dot_command_values_are_named(workspace):
    console = shell_run(workspace, "supply_planner", ".mode xml\n.maxrows zero\n.timer maybe\n")
    assert len(console.warnings) == 3 and ".mode xml" in console.warnings[0]


def test_completion_offers_only_visible_names(workspace):
    from meshsim.shell import Completer

    with Mesh.open(workspace) as mesh:
        completer = Completer(Shell(mesh, "eu_marketing_analyst", NullConsole()))
        assert completer.candidates("customer.c", "SELECT * FROM customer.c") == [
            "customer.customer"
        ]
        assert completer.candidates("c_ph", "SELECT c_ph") == ["c_phone"]
        assert completer.candidates("c_acct", "SELECT c_acct") == []  # not granted
        assert completer.candidates("supply.", "FROM supply.") == []
        assert completer.candidates(".ta", ".ta") == [".tables"]
