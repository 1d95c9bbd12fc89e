"""tools/dev.py: the house rules are a task that runs, and CI runs it (issue 9)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from tests.conftest import REPO


def _dev():
    spec = importlib.util.spec_from_file_location("dev", REPO / "tools" / "dev.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_check_lists_itself_among_the_tasks():
    out = subprocess.run(
        [sys.executable, str(REPO / "tools" / "dev.py")], capture_output=True, text=True
    ).stdout
    assert "  check " in out and "mypy" in out


def test_check_runs_ruff_lint_and_format_and_mypy():
    commands = [command for _, command in _dev().CHECKS]
    assert commands[0][:2] == ["ruff", "check"]
    assert commands[1][:3] == ["ruff", "format", "--check"]
    assert commands[2] == ["mypy"]  # its config is [tool.mypy] in pyproject.toml


def test_check_runs_every_rule_and_fails_if_one_fails(monkeypatch, capsys):
    dev = _dev()
    ran = []
    monkeypatch.setattr(
        dev, "_run", lambda command: ran.append(command) or command[0].endswith("mypy")
    )
    assert dev.check() == 1
    assert len(ran) == 3
    assert "house rules broken: mypy" in capsys.readouterr().err


def test_mypy_is_pinned():
    pyproject = (REPO / "pyproject.toml").read_text()
    lock = (REPO / "requirements.lock").read_text().splitlines()
    pinned = [line for line in lock if line.startswith("mypy==")]
    assert pinned and f'"{pinned[0]}"' in pyproject


def test_ci_checks_the_house_rules_before_the_tests():
    script = (REPO / ".ci" / "run").read_text()
    assert "python3 tools/dev.py check" in script
    assert script.index("tools/dev.py check") < script.index("tools/dev.py test")
