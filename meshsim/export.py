"""Write the rows of a query result as csv, json, ndjson or Parquet, batch by batch.

One writer per format, each reading the Arrow result in batches, so that no more than one
batch is ever held as Python values. :func:`write_result` picks the writer by the file's
extension and writes through :func:`meshsim.files.atomic_output` (a temporary file renamed
into place: a failed export never leaves half a file, and an existing file is replaced only
when asked). :func:`write_rows` writes the same formats to a text stream (stdout).

>>> from meshsim.export import export_format
>>> export_format("orders.parquet")
'parquet'
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from meshsim.files import FileProblem, atomic_output

if TYPE_CHECKING:
    import pyarrow as pa

    from meshsim.console import Console

#: file extensions and the format each one writes
EXTENSIONS = {
    ".csv": "csv",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".parquet": "parquet",
}
TEXT_FORMATS = ("csv", "json", "ndjson")
#: rows per batch read from the result
BATCH_ROWS = 65_536
#: results at least this long show a progress bar while they are written
PROGRESS_ROWS = 100_000


def export_format(path: str | Path) -> str:
    """The format a file name asks for, by its extension; FileProblem for any other."""
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        known = ", ".join(EXTENSIONS)
        what = f"extension '{suffix}'" if suffix else "no extension"
        raise FileProblem(
            path,
            f"has {what}; meshsim writes {known}",
            hint="name the file by the format you want, e.g. result.parquet",
        )
    return EXTENSIONS[suffix]


def plain(value: Any) -> Any:
    """A value as JSON can hold it: dates as ISO text, decimals as text, bytes as hex."""
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)  # UUIDs and anything else a result may hold


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


def python_rows(data: pa.Table | pa.RecordBatch) -> list[tuple[Any, ...]]:
    """Rows as tuples of Python values; a column Python cannot hold (a date past year 9999)
    is given as DuckDB's text of each value rather than refused, so nothing is dropped."""
    columns = []
    for column in data.columns:
        try:
            columns.append(column.to_pylist())
        except (OverflowError, ValueError):
            columns.append(column.cast("string").to_pylist())
    return list(zip(*columns, strict=True)) if columns else []


def batches(table: pa.Table) -> Iterator[pa.RecordBatch]:
    return iter(table.to_batches(max_chunksize=BATCH_ROWS))


# --- text writers ----------------------------------------------------------------------------

Cell = Callable[[Any], str]


def _csv_cell(value: Any) -> str:
    value = plain(value)
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)


def _write_csv(
    out: IO[str], columns: list[str], parts: Iterator[pa.RecordBatch], cell: Cell, step: Any
) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([cell(c) for c in columns])
    for batch in parts:
        writer.writerows(["" if v is None else cell(v) for v in row] for row in python_rows(batch))
        step(batch.num_rows)


def _write_json(
    out: IO[str], columns: list[str], parts: Iterator[pa.RecordBatch], cell: Cell, step: Any
) -> None:
    """A JSON array of row objects, laid out as ``json.dumps(rows, indent=2)`` lays it."""
    first = True
    for batch in parts:
        for row in python_rows(batch):
            item = json.dumps({c: plain(v) for c, v in zip(columns, row, strict=True)}, indent=2)
            out.write(("[\n" if first else ",\n") + "\n".join("  " + x for x in item.split("\n")))
            first = False
        step(batch.num_rows)
    out.write("[]\n" if first else "\n]\n")


def _write_ndjson(
    out: IO[str], columns: list[str], parts: Iterator[pa.RecordBatch], cell: Cell, step: Any
) -> None:
    for batch in parts:
        for row in python_rows(batch):
            out.write(json.dumps({c: plain(v) for c, v in zip(columns, row, strict=True)}))
            out.write("\n")
        step(batch.num_rows)


_TEXT_WRITERS = {"csv": _write_csv, "json": _write_json, "ndjson": _write_ndjson}


def _ignore(rows: int) -> None:
    pass


def write_rows(
    table: pa.Table, fmt: str, out: IO[str], *, cell: Cell = _csv_cell, step: Any = _ignore
) -> None:
    """Write ``table`` to a text stream as csv, json or ndjson, batch by batch; ``cell``
    turns a csv header or value into text (the terminal escapes control characters)."""
    columns = unique_names(table.column_names)  # duplicate output names: keep every column
    _TEXT_WRITERS[fmt](out, columns, batches(table), cell, step)


# --- files -----------------------------------------------------------------------------------


def write_result(
    table: pa.Table,
    path: str | Path,
    *,
    overwrite: bool = False,
    console: Console | None = None,
) -> Path:
    """Write ``table`` to ``path`` in the format its extension names, atomically; an
    existing file is refused unless ``overwrite``. Long results show progress on
    ``console``."""
    fmt = export_format(path)
    total = table.num_rows
    with (
        _progress(console, f"writing {Path(path).name}", total) as step,
        atomic_output(path, overwrite=overwrite) as handle,
    ):
        if fmt == "parquet":
            _write_parquet(table, handle, step)
        else:
            import io

            text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
            write_rows(table, fmt, text, step=step)
            text.flush()
            text.detach()
    return Path(path)


def _write_parquet(table: pa.Table, handle: IO[bytes], step: Any) -> None:
    import pyarrow.parquet as pq

    renamed = table.rename_columns(unique_names(table.column_names))
    with pq.ParquetWriter(handle, renamed.schema) as writer:
        for batch in batches(renamed):
            writer.write_batch(batch)
            step(batch.num_rows)


@contextmanager
def _progress(console: Console | None, description: str, total: int) -> Iterator[Any]:
    """A step function advancing a progress bar on ``console`` when the result is long."""
    if console is None or total < PROGRESS_ROWS:
        yield _ignore
        return
    with console.progress(description, total) as bar:
        yield bar.advance
