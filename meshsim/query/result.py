"""What a governed query returns: :class:`Result` (rows) and :class:`Explanation` (why)."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from meshsim.errors import QueryError

if TYPE_CHECKING:
    import pandas
    import polars
    import pyarrow as pa


@dataclass(frozen=True)
class Result:
    """Rows of a governed query, held as an Arrow table."""

    table: pa.Table
    tables: tuple[tuple[str, int], ...] = ()
    #: milliseconds spent in each rule of the pipeline (a cached plan shows only execute)
    timings: dict[str, float] = field(default_factory=dict, compare=False)

    def arrow(self) -> pa.Table:
        return self.table

    def pl(self) -> polars.DataFrame:
        import polars as pl

        frame = pl.from_arrow(self.table)
        assert isinstance(frame, pl.DataFrame)
        return frame

    def df(self) -> pandas.DataFrame:
        try:
            import pandas  # noqa: F401
        except ImportError:
            raise QueryError(
                "Result.df() needs pandas, which is not installed",
                hint="pip install pandas, or use .arrow() or .pl()",
            ) from None
        return self.table.to_pandas()

    def fetchall(self) -> list[tuple[Any, ...]]:
        """Rows as tuples of the Python values DuckDB's own ``fetchall()`` returns; a value
        Python cannot hold (a date past year 9999, an infinite date) is a :class:`QueryError`
        naming the column."""
        columns = _python_columns(self.table)
        return list(zip(*columns, strict=True)) if columns else []

    def _head(self, rows: int) -> list[tuple[Any, ...]]:
        """The first rows for display, as text where Python cannot hold a value."""
        head = self.table.slice(0, rows)
        try:
            columns = _python_columns(head)
        except QueryError:
            columns = [c.cast("string").to_pylist() for c in head.columns]
        return list(zip(*columns, strict=True)) if columns else []

    @property
    def columns(self) -> list[str]:
        return list(self.table.column_names)

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    def __len__(self) -> int:
        return self.num_rows

    def __repr__(self) -> str:
        lines = [" | ".join(self.columns)]
        lines += [" | ".join(str(v) for v in row) for row in self._head(10)]
        more = f"\n... {self.num_rows - 10} more rows" if self.num_rows > 10 else ""
        return (
            f"<Result {self.num_rows} rows x {len(self.columns)} columns>\n"
            + "\n".join(lines)
            + more
        )

    def _repr_html_(self) -> str:
        cells = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
            for row in self._head(20)
        )
        return (
            f"<table><thead><tr>{cells}</tr></thead><tbody>{rows}</tbody></table>"
            f"<p>{self.num_rows} rows</p>"
        )


def _duckdb_types(table: pa.Table) -> list[str | None]:
    from meshsim.engine import DUCKDB_TYPES

    metadata = table.schema.metadata or {}
    try:
        types = json.loads(metadata.get(DUCKDB_TYPES, b"[]"))
    except ValueError:
        types = []
    if not isinstance(types, list) or len(types) != table.num_columns:
        return [None] * table.num_columns
    return [str(t) for t in types]


def _as_duckdb_returns(values: list[Any], duckdb_type: str | None) -> list[Any]:
    """Python values as DuckDB's own ``fetchall()`` returns them where Arrow's differ: a
    HUGEINT (the type of a sum of integers) is an ``int``, not a ``Decimal``; an INTERVAL a
    ``timedelta`` (a month counted as 30 days, as DuckDB counts it); a BIGNUM (which DuckDB
    gives as its digits, a ``str``) an ``int``, never its internal bytes."""
    if duckdb_type == "HUGEINT":
        return [None if v is None else int(v) for v in values]
    if duckdb_type == "UHUGEINT":
        # exported as a 128-bit decimal: a value past 2**127 arrives as its two's complement
        return [None if v is None else int(v) % 2**128 for v in values]
    if duckdb_type == "BIGNUM":
        return [None if v is None else _bignum(v) for v in values]
    if duckdb_type == "INTERVAL":
        return [
            None
            if v is None
            else timedelta(days=v.months * 30 + v.days, microseconds=v.nanoseconds // 1000)
            for v in values
        ]
    return values


def _bignum(data: bytes) -> int:
    """DuckDB's BIGNUM (an integer literal past 128 bits) from its Arrow bytes: a 3-byte
    header whose top bit is set for a positive number, then the magnitude big-endian; a
    negative number has every byte inverted."""
    negative = not data[0] & 0x80
    body = bytes(b ^ 0xFF for b in data[3:]) if negative else data[3:]
    magnitude = int.from_bytes(body, "big")
    return -magnitude if negative else magnitude


def _python_columns(table: pa.Table) -> list[list[Any]]:
    columns = []
    types = _duckdb_types(table)
    for name, column, duckdb_type in zip(table.column_names, table.columns, types, strict=True):
        try:
            columns.append(_as_duckdb_returns(column.to_pylist(), duckdb_type))
        except (OverflowError, ValueError) as exc:
            raise QueryError(
                f"column '{name}' holds a value Python cannot represent ({exc})",
                hint="read it with .arrow() or .pl(), or CAST it AS VARCHAR in the query",
            ) from None
    return columns


@dataclass(frozen=True)
class Explanation:
    """What a query reads and which policies apply, without running it."""

    consumer: str
    sql: str  # the consumer's query
    governed_sql: str  # the SQL that would run, mesh key redacted
    tables: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"consumer: {self.consumer}", f"query: {self.sql}"]
        for table in self.tables:
            lines.append(f"table {table['table']} @ version {table['version']}")
            lines.append(f"  grants: {', '.join(table['grants']) or 'none'}")
            for name, column in table["columns"].items():
                lines.append(f"  {name}: {column['state']} ({column['rule']})")
            filters = ", ".join(table["row_filters"]) or "none"
            lines.append(f"  row filters: {filters}")
        lines.append("governed SQL:")
        lines.append("  " + self.governed_sql)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from meshsim.reprs import explanation_html

        return explanation_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


def explain_table(explanation: Explanation) -> pa.Table:
    """``EXPLAIN <query>`` as DuckDB shapes it (``explain_key``, ``explain_value``), holding
    meshsim's explanation: each table read with its version, grants and row filters, each
    visible column's state, and the governed SQL (storage shown by name, never by path)."""
    import pyarrow as pa

    rows: list[tuple[str, str]] = [("consumer", explanation.consumer)]
    for table in explanation.tables:
        filters = ", ".join(table["row_filters"]) or "none"
        rows.append(
            (
                "table",
                f"{table['table']} @ version {table['version']}; grants: "
                f"{', '.join(table['grants']) or 'none'}; row filters: {filters}",
            )
        )
        for name, column in table["columns"].items():
            if column["state"] != "denied":
                rows.append(("column", f"{table['table']}.{name}: {column['state']}"))
    rows.append(("governed_sql", explanation.governed_sql))
    return pa.table(
        {"explain_key": [k for k, _ in rows], "explain_value": [v for _, v in rows]},
        schema=pa.schema([("explain_key", pa.string()), ("explain_value", pa.string())]),
    )
