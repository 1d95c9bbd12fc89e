"""Every workshop notebook, and every solutions notebook, runs top to bottom in a real Jupyter
kernel (nbclient), as a student's JupyterLab would run it; a failing cell fails the suite. The
solutions' answers must all be right; the exercise notebooks, left as handed out, must run too.
Notebooks are stored without outputs so that diffs stay readable."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from meshsim.workshop import MODULES, exercises

REPO = Path(__file__).resolve().parent.parent.parent
NOTEBOOKS = REPO / "notebooks"
HANDED_OUT = [NOTEBOOKS / m.notebook for m in MODULES]
SOLUTIONS = [NOTEBOOKS / m.solutions for m in MODULES]
CHECK_CALL = re.compile(r"workshop\.check\(\s*[\"'](\d+\.\d+)[\"']")


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _code(path: Path) -> str:
    return "\n".join("".join(c["source"]) for c in _cells(path) if c["cell_type"] == "code")


def test_every_module_has_its_notebook_and_solutions():
    stored = {p.relative_to(NOTEBOOKS).as_posix() for p in NOTEBOOKS.rglob("*.ipynb")}
    stored = {p for p in stored if ".ipynb_checkpoints" not in p}
    expected = {m.notebook for m in MODULES} | {m.solutions for m in MODULES}
    assert stored == expected


@pytest.mark.parametrize("path", HANDED_OUT + SOLUTIONS, ids=lambda p: p.name)
def test_stored_without_outputs(path: Path):
    for cell in _cells(path):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, path


def test_every_exercise_is_in_its_module_and_its_solutions():
    registered = {e.id for e in exercises()}
    for m in MODULES:
        asked = set(CHECK_CALL.findall(_code(NOTEBOOKS / m.notebook)))
        solved = set(CHECK_CALL.findall(_code(NOTEBOOKS / m.solutions)))
        own = {e for e in registered if e.split(".")[0] == str(m.number)}
        assert asked == own, f"module {m.number}: notebook asks {asked}, checker has {own}"
        assert solved == own, f"module {m.number}: solutions answer {solved}, checker has {own}"


def _execute(path: Path, tmp_path: Path, monkeypatch) -> tuple[object, float]:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("MESHSIM_WORKSHOP_DIR", str(tmp_path / "runs"))
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=240,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    began = time.perf_counter()
    client.execute()
    return notebook, time.perf_counter() - began


def _verdicts(notebook) -> list[str]:
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/plain", "") or output.get("text", "")
            found += re.findall(r"^\d+\.\d+: (?:right|not yet): .*$", text, re.M)
    return found


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.parent.name + "/" + p.name)
def test_solutions_run_and_every_answer_is_right(path: Path, tmp_path: Path, monkeypatch):
    notebook, seconds = _execute(path, tmp_path, monkeypatch)
    verdicts = _verdicts(notebook)
    wrong = [v for v in verdicts if ": not yet: " in v]
    assert verdicts and not wrong, f"{path.name} ({seconds:.1f} s): {wrong or 'no verdicts'}"


@pytest.mark.parametrize("path", HANDED_OUT, ids=lambda p: p.name)
def test_handed_out_notebook_runs(path: Path, tmp_path: Path, monkeypatch):
    notebook, seconds = _execute(path, tmp_path, monkeypatch)
    assert all(": right: " not in v for v in _verdicts(notebook)), (
        f"{path.name}: an exercise is already answered in the handed-out notebook"
    )


def test_notebooks_are_written_from_their_sources():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(REPO / "tools" / "notebooks.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
