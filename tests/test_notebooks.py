"""The workshop notebook runs top to bottom (cells executed in order, without Jupyter)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_runs(notebook: Path, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(NOTEBOOKS)
    monkeypatch.setenv("MESHSIM_WORKSPACE", str(tmp_path / "ws"))
    cells = json.loads(notebook.read_text())["cells"]
    namespace: dict = {}
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        try:
            exec(compile(source, f"{notebook.name}[cell {index}]", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message is the point
            pytest.fail(
                f"{notebook.name} cell {index} failed: {type(exc).__name__}: {exc}\n{source}"
            )
