"""The workshop's library side: modules, fresh state per module, the checker, the launcher."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshsim import workshop
from meshsim.errors import MeshsimError
from meshsim.workshop import checker, launch, modules
from tests.cli.clihelpers import assert_clean_error, run


@pytest.fixture
def runs(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("MESHSIM_WORKSHOP_DIR", str(tmp_path / "runs"))
    monkeypatch.setattr(modules, "_current", {})
    return tmp_path / "runs"


def test_a_module_starts_from_a_fresh_copy_of_the_example(runs: Path):
    mesh = workshop.start(2)
    mesh_file = mesh.mesh_dir / "mesh.yaml"
    assert mesh.mesh_dir == runs / "module-2" / "mesh"
    mesh_file.write_text(mesh_file.read_text() + "\n# a student's edit\n")
    again = workshop.start("2")
    assert "a student's edit" not in (again.mesh_dir / "mesh.yaml").read_text()
    assert workshop.current() is again
    assert [t.ref for t in again.tables()]


def test_an_unknown_module_names_the_valid_ones(runs: Path):
    with pytest.raises(MeshsimError, match=r"workshop module '9' is not defined.*0, 1, 2"):
        workshop.start(9)


def test_check_before_any_module_says_what_to_run(runs: Path):
    verdict = workshop.check("0.1", ["customer"])
    assert not verdict and "workshop.start" in verdict.message


def test_check_says_right_or_what_to_look_at(runs: Path):
    workshop.start(0)
    right = workshop.check("0.1", ["customer", "sales", "supply"])
    assert right and str(right).startswith("0.1: right")
    wrong = workshop.check("0.1", ["customer", "finance"])
    assert not wrong and "2 domains missing" in wrong.message and "finance" in wrong.message
    assert "&#10007;" in wrong._repr_html_()
    assert "replace the ..." in workshop.check("0.1", ...).message
    unknown = workshop.check("0.9", [])
    assert not unknown and "there is no exercise 0.9" in unknown.message


def test_every_module_has_exercises():
    numbers = {e.id.split(".")[0] for e in checker.exercises()}
    assert numbers == {str(m.number) for m in workshop.MODULES}


def test_missing_jupyter_is_one_error_line(monkeypatch, capsys):
    monkeypatch.setattr(launch, "missing_packages", lambda: ["jupyterlab"])
    code, _, err = run(capsys, "workshop", "--check")
    assert_clean_error(code, err, "the workshop needs jupyterlab", "python3 tools/dev.py notebook")
    assert err.strip().splitlines()[0].startswith("Error: the workshop needs jupyterlab")


def test_workshop_check_builds_module_zero(runs: Path, monkeypatch, capsys):
    monkeypatch.setattr(launch, "missing_packages", lambda: [])
    code, out, err = run(capsys, "workshop", "--check")
    assert code == 0, err
    assert "the workshop is ready" in out
    assert (runs / "module-0" / "workspace" / "workspace.json").is_file()


def test_lab_command_opens_the_notebooks():
    command = launch.lab_command(Path("/n"), no_browser=True, port=8899)
    assert command[1:] == ["-m", "jupyterlab", "--notebook-dir=/n", "--no-browser", "--port=8899"]


def test_an_answer_checked_in_another_module_is_not_right(runs: Path):
    # found by an outside review: the checker judged any module's answer against the state of
    # the module started last, so answers were "right" without the exercise's steps
    workshop.start(0)
    verdict = workshop.check("2.2", ["customer.customer.c_acctbal", "supply.supplier.s_acctbal"])
    assert not verdict and "workshop.start(2)" in verdict.message


def test_a_step_not_done_is_said_not_accepted(runs: Path):
    workshop.start(2)
    verdict = workshop.check("2.1", ["supply.part"])  # before the retagging cell
    assert not verdict and "retagging" in verdict.message


def test_numbers_from_arrow_or_numpy_are_numbers_and_odd_answers_are_verdicts(runs: Path):
    import pyarrow as pa

    mesh = workshop.start(4)
    count = mesh.sql("eu_marketing_analyst", "SELECT count(*) FROM customer.customer")
    scalar = count.arrow().column(0)[0]
    assert workshop.check("4.1", scalar), "an Arrow integer scalar is a number"
    assert workshop.check("4.1", pa.scalar(scalar.as_py(), pa.int32()))
    assert workshop.check("4.2", "REDACT")  # names are not case-sensitive
    odd = workshop.check("4.1", 10**40)
    assert not odd
