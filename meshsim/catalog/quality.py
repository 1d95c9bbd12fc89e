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


def latest_results(
    con: sqlite3.Connection, product: str, published: dict[str, int | None] | None = None
) -> list[dict[str, Any]]:
    """The latest result of each rule of ``product``, by table and rule name.

    With ``published`` (table -> the version queries read), the latest result on that
    version; a newer result on another version (a refused candidate, a ``check --version``)
    is named in ``unpublished`` rather than shown as the rule's status."""
    found = con.execute(
        "SELECT q.* FROM quality_results q JOIN (SELECT max(id) AS id FROM quality_results"
        " WHERE product = ? GROUP BY table_ref, rule, version) latest ON q.id = latest.id"
        " ORDER BY q.table_ref, q.id",
        (product,),
    ).fetchall()
    rules: dict[tuple[str, str], dict[str, Any]] = {}
    newer: dict[tuple[str, str], sqlite3.Row] = {}
    for row in found:  # in id order: a later row is a later result
        key = (row["table_ref"], row["rule"])
        if published is None or row["version"] == published.get(row["table_ref"]):
            rules[key] = _shown(row)
            newer.pop(key, None)
        else:
            newer[key] = row
    for key, row in newer.items():
        if key not in rules:  # never checked on the published version
            rules[key] = {**_shown(row), "status": "unchecked"}
        rules[key]["unpublished"] = (
            f"{row['status']} on version {row['version']} (not published; by {row['trigger']}"
            f" at {row['checked_at']})"
        )
    ordered = sorted(rules.items(), key=lambda item: item[0][0])
    return [rule for _, rule in ordered]


def _shown(row: sqlite3.Row) -> dict[str, Any]:
    return {
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
        "unpublished": None,
    }
