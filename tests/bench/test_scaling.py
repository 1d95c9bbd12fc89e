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


def test_an_engine_process_reports_its_own_peak_not_its_parents(workspace: Path):
    """Linux carries ru_maxrss across exec: with 600 MB held here, every child reported at
    least that (3.4 GB for every engine in the scale-10 run)."""
    held = bytearray(600 * 1024 * 1024)
    held[::4096] = b"x" * len(held[::4096])  # touched: resident
    run = run_engine(workspace, "duckdb", timeout_s=300)
    del held
    assert run.failed == ""
    assert 20 < run.peak_rss_mb < 550, run.peak_rss_mb
