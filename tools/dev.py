#!/usr/bin/env python3
"""Developer tasks. Needs only Python 3.11+: it creates .venv and installs pinned dependencies.

python3 tools/dev.py            list the tasks
python3 tools/dev.py demo       set up, then run 'meshsim demo'
python3 tools/dev.py test       set up, then run the test suite on every core (-n 0: one)
python3 tools/dev.py check      set up, then check the house rules (ruff, mypy)
python3 tools/dev.py bench      set up, then run the benchmarks (meshsim bench ...)
python3 tools/dev.py notebook   set up with JupyterLab, then open the workshop (meshsim workshop)
python3 tools/dev.py meshsim …  set up, then run any meshsim command
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".meshsim-installed"

TASKS = {
    "setup": "create .venv and install meshsim with pinned dependencies",
    "demo": "build the example mesh small and show it (meshsim demo)",
    "test": "run the test suite (pytest) on every core (-n 0: serially); arguments go to pytest",
    "check": "house rules: ruff lint, ruff format --check, mypy ([tool.mypy] in pyproject.toml)",
    "bench": "run the benchmarks (meshsim bench); extra arguments go to it",
    "notebook": "the offline workshop: install JupyterLab (pinned), open the notebooks",
    "meshsim": "run any meshsim command inside the environment",
}


#: The house rules `check` runs, in order; each must exit 0. Paths are relative to ROOT.
CHECKED = ("meshsim", "tests", "tools")
CHECKS = (
    ("ruff lint", ["ruff", "check", *CHECKED]),
    ("ruff format", ["ruff", "format", "--check", *CHECKED]),
    ("mypy", ["mypy"]),  # what it checks, and how strictly, is [tool.mypy] in pyproject.toml
)


#: pytest-xdist workers `test` starts at most, one per core below that: each worker imports
#: everything and builds the session's example workspace again (measured on 2 cores only)
MAX_WORKERS = 4
#: pytest arguments that choose the workers (-n 0 runs serially) or need the tests in this
#: process (pytest-xdist refuses --pdb); `test` then starts no workers of its own
OWN_WORKERS = ("-n", "--numprocesses", "--pdb", "--trace")
NO_XDIST = ("-p no:xdist", "-pno:xdist")


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _one_file(args: list[str]) -> bool:
    """Whether ``args`` select tests of one file only (the file, or test ids in it)."""
    paths = {a.split("::")[0] for a in args if not a.startswith("-")}
    chosen = [ROOT / p for p in paths if (ROOT / p).exists()]  # not an option's value
    return len(chosen) == 1 and chosen[0].is_file()


def pytest_arguments(args: list[str], cores: int) -> list[str]:
    """`test`'s pytest arguments: ``args`` run on ``cores`` pytest-xdist workers (MAX_WORKERS at
    most), unless ``args`` (or PYTEST_ADDOPTS) start with OWN_WORKERS, the machine has one core,
    or ``args`` select one test file (starting workers takes longer than most files run). The
    Spark tests share one worker (``--dist loadgroup``, see ONE_WORKER in tests/conftest.py)."""
    given = [*os.environ.get("PYTEST_ADDOPTS", "").split(), *args]
    if any(off in " ".join(given) for off in NO_XDIST):
        return args
    dist = (
        [] if any(a == "-d" or a.startswith("--dist") for a in given) else ["--dist", "loadgroup"]
    )
    if cores < 2 or _one_file(args) or any(a.startswith(OWN_WORKERS) for a in given):
        return [*dist, *args]
    return ["-n", str(min(cores, MAX_WORKERS)), *dist, *args]


def _inputs_digest() -> str:
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "requirements.lock"):
        path = ROOT / name
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def setup(extras: tuple[str, ...] = ("dev",)) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - any python3 may run this file
        sys.exit(f"meshsim needs Python 3.11 or newer, this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        print("creating .venv ...", file=sys.stderr)
        venv.EnvBuilder(with_pip=True, clear=VENV.exists()).create(VENV)
    digest = _inputs_digest()
    # the stamp records the inputs' digest and the extras installed with them
    stamp = STAMP.read_text().split() if STAMP.is_file() else []
    if stamp[:1] == [digest] and set(extras) <= set(stamp[1:]):
        return
    extras = tuple(sorted(set(extras) | (set(stamp[1:]) if stamp[:1] == [digest] else set())))
    print("installing pinned dependencies into .venv ...", file=sys.stderr)
    pip = [
        str(BIN / "python"),
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "-q",
        "--no-cache-dir",
    ]
    lock = ROOT / "requirements.lock"
    constraints = ["-c", str(lock)] if lock.is_file() else []
    subprocess.run([*pip, *constraints, "-e", f"{ROOT}[{','.join(extras)}]"], check=True)
    STAMP.write_text(" ".join((digest, *extras)))


def _run(command: list[str]) -> int:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.call(command, cwd=ROOT, env=env)


def check() -> int:
    """Run every house rule, even after one fails, then name the ones that failed."""
    failed = []
    for name, command in CHECKS:
        print(f"== {name}: {' '.join(command)}", file=sys.stderr, flush=True)
        if _run([str(BIN / command[0]), *command[1:]]) != 0:
            failed.append(name)
    if failed:
        print(f"house rules broken: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("house rules hold: " + ", ".join(name for name, _ in CHECKS), file=sys.stderr)
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help", "help"}:
        width = max(map(len, TASKS))
        print("usage: python3 tools/dev.py TASK [ARGS...]\n\ntasks:")
        for name, text in TASKS.items():
            print(f"  {name:<{width}}  {text}")
        return 0
    task, rest = argv[0], argv[1:]
    if task not in TASKS:
        print(f"unknown task '{task}' (tasks: {', '.join(TASKS)})", file=sys.stderr)
        return 2
    setup(("dev", "notebook") if task == "notebook" else ("dev",))
    if task == "notebook":
        return _run([str(BIN / "meshsim"), "workshop", *rest])
    if task == "setup":
        return 0
    if task == "test":
        return _run([str(BIN / "python"), "-m", "pytest", *pytest_arguments(rest, _cores())])
    if task == "check":
        if rest:
            print("check takes no arguments", file=sys.stderr)
            return 2
        return check()
    if task == "demo":
        return _run([str(BIN / "meshsim"), "demo", *rest])
    if task == "bench":
        return _run([str(BIN / "meshsim"), "bench", *rest])
    return _run([str(BIN / "meshsim"), *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
