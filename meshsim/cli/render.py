"""Render rows for the terminal: a rich table, JSON (a list of row objects) or CSV on stdout."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def render_rows(
    rows: Sequence[dict[str, Any]],
    fmt: Format = Format.table,
    *,
    title: str = "",
    columns: Sequence[str] | None = None,
    console: Any = None,
) -> None:
    columns = list(columns) if columns is not None else (list(rows[0]) if rows else [])
    if fmt == Format.json:
        sys.stdout.write(
            json.dumps([{c: _plain(r.get(c)) for c in columns} for r in rows], indent=2)
        )
        sys.stdout.write("\n")
    elif fmt == Format.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else _cell(row.get(c)) for c in columns])
        sys.stdout.write(buffer.getvalue())
    else:
        from meshsim.console import TerminalConsole

        console = console or TerminalConsole()
        console.table(title, columns, [[_cell(row.get(c)) for c in columns] for row in rows])


def _cell(value: Any) -> str:
    value = _plain(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value) if isinstance(value, dict) else ", ".join(map(str, value))
    return "" if value is None else str(value)
