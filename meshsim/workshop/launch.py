"""``meshsim workshop``: check that JupyterLab is installed, build the workshop mesh once (so a
broken setup shows before the browser opens), and start JupyterLab on the notebooks."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

from meshsim.errors import MeshsimError
from meshsim.workshop.modules import example_mesh, runs_dir

NEEDED = ("jupyterlab", "ipykernel")


def notebooks_dir() -> Path:
    return example_mesh().parent / "notebooks"


def missing_packages() -> list[str]:
    return [name for name in NEEDED if importlib.util.find_spec(name) is None]


def lab_command(notebooks: Path, *, no_browser: bool = False, port: int | None = None) -> list[str]:
    command = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={notebooks}"]
    if no_browser:
        command.append("--no-browser")
    if port is not None:
        command.append(f"--port={port}")
    return command


def prepare() -> tuple[Path, float]:
    """Check the environment and build module 0's state; returns the notebooks folder and the
    build's seconds. Raises :class:`MeshsimError` naming what is missing."""
    missing = missing_packages()
    if missing:
        raise MeshsimError(
            f"the workshop needs {', '.join(missing)}, which this environment does not have",
            hint="python3 tools/dev.py notebook (it installs the pinned notebook extra), or "
            "pip install 'meshsim[notebook]'",
        )
    notebooks = notebooks_dir()
    if not notebooks.is_dir():
        raise MeshsimError(f"the workshop notebooks are not at '{notebooks}'")
    from meshsim.workshop.modules import start

    began = time.perf_counter()
    start(0).close()
    return notebooks, time.perf_counter() - began


def launch(*, no_browser: bool = False, port: int | None = None) -> int:
    """Start JupyterLab on the notebooks; returns its exit status."""
    import os

    notebooks, _ = prepare()
    env = {**os.environ, "MESHSIM_WORKSHOP_DIR": str(runs_dir())}
    try:
        return subprocess.run(
            lab_command(notebooks, no_browser=no_browser, port=port), env=env
        ).returncode
    except KeyboardInterrupt:
        return 130
