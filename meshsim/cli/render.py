"""Render rows for the terminal: a rich table, JSON (a list of row objects), CSV or one
``column = value`` line per value on stdout.

Query results (:func:`render_result`) are read from Arrow in batches: a table shows the first
and last rows only, as DuckDB's shell does (``150,000 rows (40 shown)``), and csv or json
stream every row without holding them all as Python values.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any

from meshsim.export import plain as _plain
from meshsim.export import python_rows, unique_names, write_rows

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Format", "printable", "render_result", "render_rows", "unique_names"]


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    line = "line"


#: C0 and C1 control characters but tab and newline: in a terminal they move the cursor,
#: recolour or erase (a consumer's SQL comment in the audit could hide other lines)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    r"""``text`` with control characters shown as escapes, safe to print to a terminal.

    >>> printable("a\x1b[2Kb\tc")
    'a\\x1b[2Kb\tc'
    """
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def page_note(shown: int, offset: int, total: int | None) -> str:
    """``rows 21-40 of 10,000 (--offset 40 for more)``; empty when every row is shown; an
    empty page says so (``no rows at --offset 50: past the end of 4``), never numbering rows
    that do not exist."""
    if offset == 0 and total is not None and shown == total:
        return ""
    if not shown:
        end = f" of {total:,}" if total is not None else ""
        return f"no rows at --offset {offset:,}" + (f": past the end{end}" if offset else "")
    first, last = offset + 1, offset + shown
    of = f" of {total:,}" if total is not None else ""
    more = total is None or last < total
    return f"rows {first:,}-{last:,}{of}" + (f" (--offset {last} for more)" if more else "")


def render_rows(
    rows: Sequence[dict[str, Any]],
    fmt: Format = Format.table,
    *,
    title: str = "",
    columns: Sequence[str] | None = None,
    console: Any = None,
    limit: int | None = None,
    offset: int = 0,
    total: int | None = -1,
) -> None:
    """Print ``rows``: with ``limit``/``offset`` that page of them, and how many there are
    (``total``: all of ``rows`` by default, None when the listing cannot know it) under a
    table, or on stderr for json, csv and line output, which stay parseable."""
    if limit is not None or offset:
        count = len(rows) if total == -1 else total
        rows = rows[offset : None if limit is None else offset + limit] if total == -1 else rows
        note = page_note(len(rows), offset, count)
        if note and fmt != Format.table:
            sys.stderr.write(note + "\n")
        elif note:
            _render(rows, fmt, title=title, columns=columns, console=console, caption=note)
            return
    _render(rows, fmt, title=title, columns=columns, console=console)


def _render(
    rows: Sequence[dict[str, Any]],
    fmt: Format,
    *,
    title: str,
    columns: Sequence[str] | None,
    console: Any,
    caption: str = "",
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
    elif fmt == Format.line:
        sys.stdout.write(_lines(columns, [[row.get(c) for c in columns] for row in rows]))
    else:
        from meshsim.console import TerminalConsole

        console = console or TerminalConsole()
        console.table(
            printable(title),
            [printable(c) for c in columns],
            [[_cell(row.get(c)) for c in columns] for row in rows],
            caption=caption,
        )


def _cell(value: Any) -> str:
    value = _plain(value)
    if isinstance(value, (list, dict)):  # nested values as JSON: [5] is not 5, nor "a, b"
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = "" if value is None else str(value)
    return printable(text)


#: rows a table shows by default, as DuckDB's shell does (.maxrows)
MAX_ROWS = 40


def render_result(
    table: pa.Table,
    fmt: Format = Format.table,
    *,
    max_rows: int = MAX_ROWS,
    console: Any = None,
    out: Any = None,
) -> None:
    """A query result on ``out`` (stdout): a table capped at ``max_rows`` rows (the first and
    last halves, with a row of ``…`` between and a footer counting them), or every row as
    csv, json or lines. Only the rows shown are converted to Python values."""
    out = out or sys.stdout
    if fmt in (Format.csv, Format.json):
        write_rows(table, fmt.value, out, cell=_cell)
        return
    columns = unique_names(table.column_names)
    total = table.num_rows
    if fmt == Format.line:
        from meshsim.export import batches

        for batch in batches(table):
            out.write(_lines(columns, python_rows(batch)))
        return
    from meshsim.console import TerminalConsole

    console = console or TerminalConsole()
    if total <= max_rows:
        rows = [[_cell(v) for v in row] for row in python_rows(table)]
        footer = rows_text(total)
    else:
        head = max_rows - max_rows // 2
        tail = max_rows // 2
        rows = [[_cell(v) for v in row] for row in python_rows(table.slice(0, head))]
        rows.append(["…"] * len(columns))
        rows += [[_cell(v) for v in row] for row in python_rows(table.slice(total - tail))]
        footer = f"{rows_text(total)} ({max_rows:,} shown)"
    console.table("", [printable(c) for c in columns], rows, caption=footer)


def rows_text(count: int) -> str:
    """``1 row``, ``150,000 rows``."""
    return f"{count:,} row{'' if count == 1 else 's'}"


def _lines(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """DuckDB's line mode: ``column = value``, names right-aligned, a blank line per row."""
    width = max((len(printable(c)) for c in columns), default=0)
    blocks = [
        "\n".join(
            f"{printable(c):>{width}} = {_cell(v)}" for c, v in zip(columns, row, strict=True)
        )
        for row in rows
    ]
    return "".join(block + "\n\n" for block in blocks)
