"""The audit log: governed queries (written by the query engine) and catalog decisions.

The query engine hands :func:`append` any object with the attributes ``time, consumer, sql,
decision, reason, tables, columns, policies, rows, duration_ms`` (a dataclass, or a mapping
with those keys), and the catalog adds the OS user that ran the query. Structured values are
stored as JSON.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from meshsim.catalog.models import stamp
from meshsim.errors import CatalogError

QUERY_FIELDS = (
    "time",
    "consumer",
    "sql",
    "decision",
    "reason",
    "tables",
    "columns",
    "policies",
    "rows",
    "duration_ms",
)
QUERY_DECISIONS = ("allowed", "refused", "error")
#: The stable fields of every row :func:`read` returns.
AUDIT_FIELDS = (
    "id",
    "time",
    "kind",
    "consumer",
    "principal",
    "os_user",
    "request_id",
    "product",
    "transition",
    "sql",
    "decision",
    "reason",
    "tables",
    "columns",
    "policies",
    "rows",
    "duration_ms",
)
_JSON_FIELDS = ("tables", "columns", "policies")


def _field(record: Any, name: str) -> Any:
    if isinstance(record, Mapping):
        return record.get(name)
    return getattr(record, name, None)


def _time(value: Any) -> str:
    if value is None:
        return stamp(datetime.now(UTC))
    if isinstance(value, datetime):
        return stamp(value)
    if isinstance(value, (int, float)):
        return stamp(datetime.fromtimestamp(value, UTC))
    return str(value)


def _json(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, default=str, sort_keys=isinstance(value, dict))


def append(con: sqlite3.Connection, record: Any, *, os_user: str | None) -> int:
    decision = _field(record, "decision")
    if decision not in QUERY_DECISIONS:
        raise CatalogError(
            f"audit decision '{decision}' is not one of {', '.join(QUERY_DECISIONS)}"
        )
    cursor = con.execute(
        "INSERT INTO audit (time, kind, consumer, os_user, sql, decision, reason, tables, columns,"
        " policies, rows, duration_ms) VALUES (?, 'query', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            _time(_field(record, "time")),
            _field(record, "consumer"),
            os_user,
            _field(record, "sql"),
            decision,
            _field(record, "reason"),
            _json(_field(record, "tables")),
            _json(_field(record, "columns")),
            _json(_field(record, "policies")),
            _field(record, "rows"),
            _field(record, "duration_ms"),
        ),
    )
    return int(cursor.lastrowid or 0)


WRITE_DECISIONS = ("allowed", "refused")


def append_write(
    con: sqlite3.Connection,
    *,
    principal: str | None,
    os_user: str | None,
    table: str,
    product: str | None,
    decision: str,
    reason: str,
    rows: int | None = None,
) -> int:
    """One producer's write attempt (write, delete, optimize, vacuum), allowed or refused."""
    if decision not in WRITE_DECISIONS:
        raise CatalogError(
            f"write decision '{decision}' is not one of {', '.join(WRITE_DECISIONS)}"
        )
    cursor = con.execute(
        "INSERT INTO audit (time, kind, principal, os_user, product, decision, reason, tables,"
        " rows) VALUES (?, 'write', ?, ?, ?, ?, ?, ?, ?)",
        (_time(None), principal, os_user, product, decision, reason, _json([table]), rows),
    )
    return int(cursor.lastrowid or 0)


def read(
    con: sqlite3.Connection,
    limit: int | None = None,
    consumer: str | None = None,
    request_id: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Newest first: ``limit`` records after the newest ``offset`` (only those are read)."""
    where: list[str] = []
    params: list[object] = []
    if consumer:
        where.append("consumer = ?")
        params.append(consumer)
    if request_id is not None:
        where.append("request_id = ?")
        params.append(request_id)
    sql = f"SELECT {', '.join(AUDIT_FIELDS)} FROM audit"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC LIMIT ? OFFSET ?"
    params.extend([-1 if limit is None else limit, offset])
    out = []
    for row in con.execute(sql, params):
        item = dict(row)
        for name in _JSON_FIELDS:
            if item[name] is not None:
                try:
                    item[name] = json.loads(item[name])
                except json.JSONDecodeError:
                    pass  # the engine stored plain text; keep it as written
        out.append(item)
    return out
