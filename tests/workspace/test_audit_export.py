"""Concurrent readers of ``meshsim.audit``: none fails on a Delta commit conflict, each sees
every record written before it started, and the export is written by one reader at a time."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from meshsim.mesh import Mesh

COUNT = "SELECT count(*) FROM meshsim.audit"
THREADS = 30
PROCESSES = 4
QUERIES_EACH = 5


def _count(workspace: str) -> int:
    with Mesh.open(workspace) as mesh:
        return mesh.sql("governance_admin", COUNT).fetchall()[0][0]


def _counts(workspace: str) -> list[int]:
    with Mesh.open(workspace) as mesh:
        admin = mesh.session("governance_admin")
        return [admin.sql(COUNT).fetchall()[0][0] for _ in range(QUERIES_EACH)]


def _records(workspace: Path) -> int:
    with Mesh.open(workspace) as mesh:
        return len(mesh.audit(as_consumer="governance_admin"))


def test_concurrent_threads_reading_the_audit_all_succeed(workspace: Path):
    before = _records(workspace)
    with ThreadPoolExecutor(THREADS) as pool:
        counts = list(pool.map(_count, [str(workspace)] * THREADS))
    assert len(counts) == THREADS
    # each saw at least the records written before any of them ran, and at most all but itself
    assert all(before <= c < before + THREADS for c in counts), counts
    assert _records(workspace) == before + THREADS


def test_concurrent_processes_reading_the_audit_all_succeed(workspace: Path):
    before = _records(workspace)
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        results = pool.map(_counts, [str(workspace)] * PROCESSES)
    counts = [c for each in results for c in each]
    assert len(counts) == PROCESSES * QUERIES_EACH
    assert all(before <= c < before + len(counts) for c in counts), counts
    for each in results:  # one process's own earlier queries are always in what it reads next
        assert each == sorted(each) and len(set(each)) == len(each), each
    assert _records(workspace) == before + len(counts)


def test_a_current_export_is_not_rewritten(workspace: Path):
    from meshsim.storage import delta
    from meshsim.system import export_audit

    location = workspace / "governance" / "system" / "audit"
    with Mesh.open(workspace) as mesh:
        export_audit(mesh.catalog, location)
        version = delta.latest_version(location)
        export_audit(mesh.catalog, location)
        assert delta.latest_version(location) == version
