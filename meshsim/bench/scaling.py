"""The scaling run: every engine's total TPC-H time and peak memory, one process per engine.

Each (scale, engine) runs in a fresh Python process (``python -m meshsim.bench.scaling``), so
its peak resident memory (``ru_maxrss`` of that child, read with ``os.wait4``) is the engine's
own, whatever ran before it, and an engine that runs out of memory or time is one failed row,
not a failed benchmark. Each query runs once on the engine the process prepared (the first
run on a fresh engine), as in the main run's cold mode without dropping the page cache.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

#: a whole engine's 22 queries at one scale; past it the process is killed and reported
DEFAULT_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class EngineRun:
    engine: str
    total_s: float | None
    peak_rss_mb: float
    failed: str  # the queries that failed, or why the process did not finish


def run_engine(workspace: Path, engine: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> EngineRun:
    """Run ``engine``'s queries over the mesh built in ``workspace`` in a child process."""
    command = [sys.executable, "-m", "meshsim.bench.scaling", str(workspace), engine]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    timer = threading.Timer(timeout_s, child.kill)
    timer.start()
    try:
        assert child.stdout is not None
        output = child.stdout.read().decode(errors="replace")
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage, not all children's
    finally:
        timer.cancel()
    child.returncode = os.waitstatus_to_exitcode(status)
    child.stdout.close()
    peak = round(usage.ru_maxrss / 1024, 1)  # kilobytes on Linux
    lines = [line for line in output.splitlines() if line.startswith("{")]
    if child.returncode != 0 or not lines:
        seconds = time.perf_counter() - started
        why = (
            f"killed after {seconds:.0f} s (timeout {timeout_s:g} s)"
            if seconds >= timeout_s
            else f"process exited with status {child.returncode}"
        )
        return EngineRun(engine, None, peak, why)
    data = json.loads(lines[-1])
    if data.get("peak_rss_mb") is not None:
        peak = data["peak_rss_mb"]  # the child's own: its rusage holds the parent's at fork
    return EngineRun(engine, round(data["total_s"], 3), peak, ", ".join(data["failed"]))


def own_peak_rss_mb() -> float | None:
    """This process's peak resident memory since its last exec (Linux ``VmHWM``), or None.
    Not ``ru_maxrss``: Linux carries a forked child's maximum across its exec, so every
    engine process reported the benchmark parent's peak (3.4 GB at scale 10)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)  # kilobytes
    except OSError:
        return None
    return None


def _child(workspace: str, name: str) -> dict[str, object]:
    """In the child: prepare the engine, run each of its queries once, total the times."""
    from meshsim.bench import queries
    from meshsim.bench.engines import ENGINES, RESTRICTED
    from meshsim.mesh import Mesh

    mesh = Mesh.open(Path(workspace))
    engine = ENGINES[name](mesh)
    engine.prepare()
    total, failed = 0.0, []
    try:
        for q in queries.restricted(None) if name in RESTRICTED else queries.tpch():
            started = time.perf_counter()
            try:
                engine.run(q.sql)
            except Exception:  # noqa: BLE001 - reported as a failed query
                failed.append(q.name)
                continue
            total += time.perf_counter() - started
    finally:
        engine.close()
        mesh.close()
    return {"total_s": total, "failed": failed, "peak_rss_mb": own_peak_rss_mb()}


if __name__ == "__main__":
    sys.stdout.write(json.dumps(_child(sys.argv[1], sys.argv[2])) + "\n")
