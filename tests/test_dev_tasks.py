"""tools/dev.py: the house rules are a task that runs, and CI runs it (issue 9)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.fixture(autouse=True)
def _no_addopts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)  # pytest_arguments reads it


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


def test_the_suite_runs_on_every_core_up_to_the_worker_cap():
    assert _dev().pytest_arguments(["-q"], 2) == ["-n", "2", "--dist", "loadgroup", "-q"]
    assert _dev().pytest_arguments(["tests/spec"], 64)[:2] == ["-n", str(_dev().MAX_WORKERS)]


def test_a_worker_count_given_is_kept_and_zero_runs_serially():
    for given in (["-n", "0"], ["-n0"], ["--numprocesses=3"], ["--pdb"]):
        assert _dev().pytest_arguments(given, 2) == ["--dist", "loadgroup", *given]
    assert _dev().pytest_arguments(["--dist", "load"], 2) == ["-n", "2", "--dist", "load"]


def test_one_file_or_one_core_runs_serially_and_no_xdist_gets_no_xdist_options():
    dev = _dev()
    one_file = ["tests/test_dev_tasks.py::test_mypy_is_pinned", "-k", "pinned"]
    assert dev.pytest_arguments(one_file, 2) == ["--dist", "loadgroup", *one_file]
    assert dev.pytest_arguments(["tests/cli", "-k", "pinned"], 2)[:2] == ["-n", "2"]
    assert dev.pytest_arguments([], 1) == ["--dist", "loadgroup"]
    for off in (["-p", "no:xdist"], ["-pno:xdist", "-q"]):
        assert dev.pytest_arguments(off, 2) == off


def test_the_spark_tests_are_one_work_unit_and_every_other_test_its_own():
    """Two Spark JVMs on two busy cores made a governed Spark query run past its timeout."""
    from tests.conftest import work_unit

    assert (
        work_unit("tests/engines/test_spark.py::test_masks_really_are_applied_on_spark") == "spark"
    )
    assert work_unit("tests/engines/test_spark_semantics.py::test_x[a@b]") == "spark"
    assert work_unit("tests/spec/test_lint.py::test_y") == "tests/spec/test_lint.py::test_y"


def test_loadgroup_schedules_with_the_folder_groups(
    pytestconfig: pytest.Config, monkeypatch: pytest.MonkeyPatch
):
    from tests.conftest import pytest_xdist_make_scheduler

    if not pytestconfig.pluginmanager.hasplugin("xdist"):
        pytest.skip("pytest-xdist is off (-p no:xdist)")
    monkeypatch.setattr(pytestconfig.option, "tx", ["popen", "popen"])
    monkeypatch.setattr(pytestconfig.option, "dist", "load")
    assert pytest_xdist_make_scheduler(pytestconfig, None) is None  # pytest-xdist's own
    monkeypatch.setattr(pytestconfig.option, "dist", "loadgroup")
    scheduler = pytest_xdist_make_scheduler(pytestconfig, None)
    assert scheduler._split_scope("tests/engines/test_spark.py::test_z") == "spark"
