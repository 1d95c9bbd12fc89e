"""Render rows for the terminal: a rich table, JSON (a list of row objects) or CSV on stdout."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


#: C0 and C1 control characters but tab and newline: in a terminal they move the cursor,
#: recolour or erase (a consumer's SQL comment in the audit could hide other lines)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    r"""``text`` with control characters shown as escapes, safe to print to a terminal.

    >>> printable("a\x1b[2Kb\tc")
    'a\\x1b[2Kb\tc'
    """
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def unique_names(names: Sequence[str]) -> list[str]:
    """Column names made unique by position, never colliding with another given name.

    >>> unique_names(["a", "a", "a_1"])
    ['a', 'a_2', 'a_1']
    """
    taken = set(names)
    seen: set[str] = set()
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            candidate = f"{name}_{n}"
            n += 1
            while candidate in taken and candidate != name:
                candidate = f"{name}_{n}"
                n += 1
        seen.add(candidate)
        out.append(candidate)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)  # UUIDs and anything else a result may hold


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
        writer.writerow([printable(c) for c in columns])
        for row in rows:
            writer.writerow(["" if row.get(c) is None else _cell(row.get(c)) for c in columns])
        sys.stdout.write(buffer.getvalue())
    else:
        from meshsim.console import TerminalConsole

        console = console or TerminalConsole()
        console.table(
            printable(title),
            [printable(c) for c in columns],
            [[_cell(row.get(c)) for c in columns] for row in rows],
        )


def _cell(value: Any) -> str:
    value = _plain(value)
    if isinstance(value, (list, dict)):  # nested values as JSON: [5] is not 5, nor "a, b"
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = "" if value is None else str(value)
    return printable(text)
