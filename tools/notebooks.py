#!/usr/bin/env python3
"""Write the workshop notebooks from their sources: ``notebooks/src/NN-name.py`` gives
``notebooks/NN-name.ipynb`` (handed out) and ``notebooks/solutions/NN-name.ipynb``.

A source is a Python file in the "percent" format: ``# %%`` starts a code cell, ``# %% [markdown]``
a markdown cell (its lines start with ``# ``). In a code cell, a line ending in ``# answer`` is
the solution: the handed-out notebook has ``NAME = ...  # your turn`` in its place (a line
that is a step, not an assignment, becomes a ``# your turn`` comment). One source
per module keeps the exercise and its solution from drifting apart.

    python3 tools/notebooks.py            write the notebooks
    python3 tools/notebooks.py --check    exit 1 if a notebook differs from its source
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SOURCES = NOTEBOOKS / "src"
ANSWER = re.compile(r"^(?P<indent>\s*)(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*=.*#\s*answer\s*$")
ANSWER_STEP = re.compile(r"^(?P<indent>\s*)\S.*#\s*answer\s*$")
KERNEL = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def _cells(text: str) -> list[tuple[str, list[str]]]:
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("# %%"):
            cells.append(("markdown" if "[markdown]" in line else "code", []))
        elif cells:
            cells[-1][1].append(line)
    return [(kind, _trim(lines)) for kind, lines in cells if _trim(lines)]


def _trim(lines: list[str]) -> list[str]:
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def _handed_out(line: str) -> str:
    m = ANSWER.match(line)
    if m:
        return f"{m['indent']}{m['name']} = ...  # your turn"
    step = ANSWER_STEP.match(line)
    return f"{step['indent']}# your turn: a step of the answer goes here" if step else line


def _strip_answer_mark(line: str) -> str:
    return re.sub(r"\s*#\s*answer\s*$", "", line) if ANSWER_STEP.match(line) else line


def notebook(source: Path, solutions: bool) -> str:
    cells = []
    for index, (kind, lines) in enumerate(_cells(source.read_text())):
        if kind == "markdown":
            lines = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines]
        else:
            lines = [_strip_answer_mark(x) if solutions else _handed_out(x) for x in lines]
        text = "\n".join(lines)
        cell: dict = {"cell_type": kind, "id": f"cell-{index:02d}", "metadata": {}}
        if kind == "code":
            cell |= {"execution_count": None, "outputs": []}
        cell["source"] = text.splitlines(keepends=True)
        cells.append(cell)
    book = {"cells": cells, "metadata": KERNEL, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(book, indent=1, ensure_ascii=False) + "\n"


def targets() -> dict[Path, str]:
    out: dict[Path, str] = {}
    for source in sorted(SOURCES.glob("*.py")):
        name = source.with_suffix(".ipynb").name
        out[NOTEBOOKS / name] = notebook(source, solutions=False)
        out[NOTEBOOKS / "solutions" / name] = notebook(source, solutions=True)
    return out


def main(argv: list[str]) -> int:
    stale = [
        path for path, text in targets().items() if not path.is_file() or path.read_text() != text
    ]
    if argv == ["--check"]:
        for path in stale:
            print(f"{path.relative_to(ROOT)} differs from its source: python3 tools/notebooks.py")
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(targets()[path])
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
