"""The interactive shell keeps one history per consumer (issue 8: one file held every
consumer's statements, so the next consumer to open a shell could page through them)."""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest

from meshsim.console import NullConsole
from meshsim.mesh import Mesh
from meshsim.shell import Shell

readline = pytest.importorskip("readline")


def interactive_run(monkeypatch, mesh: Mesh, consumer: str, lines: list[str]) -> list[str]:
    """Run a shell as if at a terminal; returns the history readline held when it started."""
    pending = list(lines)
    loaded: list[str] = []

    def fake_input(prompt: str = "") -> str:
        if not loaded:
            loaded.append("started")
            loaded.extend(
                readline.get_history_item(i)
                for i in range(1, readline.get_current_history_length() + 1)
            )
        if not pending:
            raise EOFError
        line = pending.pop(0)
        readline.add_history(line)  # what input() does at a real terminal
        return line

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr(builtins, "input", fake_input)
    Shell(mesh, consumer, NullConsole()).run()
    return loaded[1:]


def test_a_consumer_never_sees_another_consumers_history(monkeypatch, workspace: Path):
    mesh = Mesh.open(workspace)
    secret = "SELECT count(*) FROM supply.part WHERE p_name LIKE '%secret plan%';"
    interactive_run(monkeypatch, mesh, "external_partner", [secret])
    seen = interactive_run(monkeypatch, mesh, "supply_planner", ["SELECT 1;"])
    assert secret not in seen
    again = interactive_run(monkeypatch, mesh, "external_partner", [])
    assert secret in again  # its own history is kept
    partner = Shell(mesh, "external_partner", NullConsole()).history_file
    planner = Shell(mesh, "supply_planner", NullConsole()).history_file
    assert partner != planner
    assert secret in partner.read_text() and secret not in planner.read_text()


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".", "x.history", "A", "ünï", ""])
def test_history_file_names_are_safe_and_distinct(tmp_path: Path, name: str):
    from meshsim.shell import history_file

    path = history_file(tmp_path, name)
    assert path.parent == history_file(tmp_path, "governance_admin").parent
    assert path.parent.is_relative_to(tmp_path) and "/" not in path.name
    assert path.name not in {".", ".."} and path != history_file(tmp_path, name + "_")
    assert path != history_file(tmp_path, "governance_admin")
