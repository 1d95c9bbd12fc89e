"""A killed build takes its data generator with it: no orphaned ``tpchgen-cli``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.workspace.conftest import MESHSIM

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _children(pid: int) -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == pid:
            found.append((int(entry.name), name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "term"])
def test_killed_build_leaves_no_data_generator_running(tmp_path: Path, how: int):
    build = subprocess.Popen(
        [MESHSIM, "build", "--workspace", str(tmp_path / "ws"), "--scale", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    generator = None
    try:
        deadline = time.monotonic() + 60
        while generator is None and time.monotonic() < deadline and build.poll() is None:
            generator = next((p for p, n in _children(build.pid) if n.startswith("tpchgen")), None)
            time.sleep(0.01)
        assert generator is not None, "the build never started tpchgen-cli"
        os.kill(build.pid, how)
        build.wait(timeout=30)
        deadline = time.monotonic() + 10
        while _alive(generator) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(generator), "tpchgen-cli outlived the build that started it"
    finally:
        build.kill()
        build.wait()
        if generator is not None and _alive(generator):
            os.kill(generator, signal.SIGKILL)
