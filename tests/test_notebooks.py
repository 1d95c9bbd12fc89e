"""The workshop notebook runs top to bottom (cells executed in order, without Jupyter, by
IPython's InteractiveShell: its cells use the %meshsim and %%meshsql magics)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_runs(notebook: Path, tmp_path: Path, monkeypatch, capsys):
    pytest.importorskip("IPython")
    from tests.ipythonshell import interactive_shell

    monkeypatch.chdir(NOTEBOOKS)
    monkeypatch.setenv("MESHSIM_WORKSPACE", str(tmp_path / "ws"))
    cells = json.loads(notebook.read_text())["cells"]
    with interactive_shell() as shell:
        for index, cell in enumerate(cells):
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            outcome = shell.run_cell(source, store_history=False, silent=True)
            error = outcome.error_before_exec or outcome.error_in_exec
            # a magic reports its errors as one 'Error:' line, not as an exception
            printed = capsys.readouterr().err
            if error is not None or "Error: " in printed:  # pragma: no cover - the message
                pytest.fail(f"{notebook.name} cell {index} failed: {error!r} {printed}\n{source}")
