"""Shared helpers: run a scan on a plain DuckDB connection and compare it with deltalake's own
reader (the independent reference), as sorted rows and as types."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from sqlglot import exp

from meshsim.storage import delta
from meshsim.storage.scan import arrow_to_sql_type, scan_files, scan_query
from meshsim.storage.snapshot import Snapshot, load_snapshot


def _normalise(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


def sorted_rows(table: pa.Table) -> list[tuple[Any, ...]]:
    """Rows as tuples, timestamps in UTC, sorted so order never matters."""
    rows = [tuple(_normalise(v) for v in row.values()) for row in table.to_pylist()]
    return sorted(rows, key=repr)


def run_scan(snapshot: Snapshot, columns: Sequence[str] | None = None) -> duckdb.DuckDBPyRelation:
    """The scan of ``snapshot`` as a relation on a fresh in-memory DuckDB."""
    sql = scan_query(snapshot, columns).sql(dialect="duckdb")
    return duckdb.connect().sql(sql)


def check_scan(
    path: Path | str,
    *,
    table: str = "t",
    version: int | None = None,
    columns: Sequence[str] | None = None,
) -> Snapshot:
    """Assert the DuckDB scan equals ``delta.read_table`` in names, types and rows."""
    snapshot = load_snapshot(path, table=table, version=version)
    relation = run_scan(snapshot, columns)
    expected_names = list(columns) if columns else [c.name for c in snapshot.columns]
    assert relation.columns == expected_names
    expected_types = [
        arrow_to_sql_type(snapshot.column(n).type).sql(dialect="duckdb") for n in expected_names
    ]
    actual_types = [
        exp.DataType.build(str(t), dialect="duckdb").sql(dialect="duckdb") for t in relation.types
    ]
    assert actual_types == expected_types
    reference = delta.read_table(path, table=table, version=snapshot.version, columns=columns)
    assert sorted_rows(relation.to_arrow_table()) == sorted_rows(reference)
    sql = scan_query(snapshot, columns).sql(dialect="duckdb")
    for f in scan_files(snapshot):
        assert Path(f).is_file()
        assert exp.Literal.string(f).sql(dialect="duckdb") in sql
    return snapshot


@pytest.fixture
def scan_matches() -> Callable[..., Snapshot]:
    return check_scan


@pytest.fixture
def rows() -> Callable[[pa.Table], list[tuple[Any, ...]]]:
    return sorted_rows


@pytest.fixture
def duck() -> Callable[..., duckdb.DuckDBPyRelation]:
    return run_scan
