"""The scaling run's engine processes: each reports its queries' total time and its own peak
memory; one that runs past its time is killed and reported, not waited for. Each runs on a
private copy of the workspace: meshsim audits the queries it runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshsim.bench.scaling import run_engine


@pytest.mark.parametrize("engine", ["duckdb", "meshsim_restricted", "polars"])
def test_an_engine_process_reports_time_and_peak_memory(workspace: Path, engine: str):
    run = run_engine(workspace, engine, timeout_s=300)
    assert run.failed == ""
    assert run.total_s is not None and run.total_s > 0
    assert run.peak_rss_mb > 20  # the child's own peak: at least Python and the engine


def test_an_engine_process_past_its_timeout_is_killed_and_reported(workspace: Path):
    run = run_engine(workspace, "meshsim", timeout_s=0.2)
    assert run.total_s is None
    assert run.failed.startswith("killed after")
