"""Quality results in the catalog: every check run's results, and the latest of each rule.

Stored without sample keys (data values that each viewer may see differently; ``meshsim
check`` computes them again under the viewer's access).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from meshsim.catalog.models import stamp
from meshsim.quality.results import CheckRun


def record_run(con: sqlite3.Connection, run: CheckRun) -> int:
    """Store every result of ``run`` (inside the caller's write transaction)."""
    rows = [
        (
            stamp(r.checked_at),
            run.trigger,
            r.product,
            r.table,
            r.version,
            r.rule,
            r.kind,
            r.severity,
            r.status,
            r.failing_rows,
            r.observed,
            r.message,
        )
        for r in run.results
    ]
    con.executemany(
        "INSERT INTO quality_results (checked_at, trigger, product, table_ref, version, rule,"
        " kind, severity, status, failing_rows, observed, message)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    return len(rows)


def latest_results(con: sqlite3.Connection, product: str) -> list[dict[str, Any]]:
    """The latest result of each rule of ``product``, by table and rule name."""
    found = con.execute(
        "SELECT q.* FROM quality_results q JOIN (SELECT max(id) AS id FROM quality_results"
        " WHERE product = ? GROUP BY table_ref, rule) latest ON q.id = latest.id"
        " ORDER BY q.table_ref, q.id",
        (product,),
    ).fetchall()
    return [
        {
            "table": row["table_ref"],
            "rule": row["rule"],
            "kind": row["kind"],
            "severity": row["severity"],
            "status": row["status"],
            "failing_rows": row["failing_rows"],
            "observed": row["observed"],
            "version": row["version"],
            "checked_at": row["checked_at"],
            "by": row["trigger"],
        }
        for row in found
    ]
