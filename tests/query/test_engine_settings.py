"""The DuckDB settings every engine connection runs with (:data:`meshsim.engine.QUERY_SETTINGS`)
and what they must never change: the rows a query returns."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from meshsim import engine


def _write(path: str, values: list[int]) -> None:
    pq.write_table(pa.table({"a": pa.array(values, pa.int64())}), path, row_group_size=len(values))


def _query(con, sql: str) -> list[tuple]:
    cur = con.cursor()
    try:
        return cur.execute(sql).fetchall()
    finally:
        cur.close()


def test_a_file_rewritten_in_place_at_its_size_and_time_is_read_anew(tmp_path) -> None:
    """A footer kept from an earlier query would prune by the old row-group statistics:
    a file rewritten under its name, at the same size, with its old modification time put
    back (as a copy that keeps times does), must be read as it is now (an outside review); a
    file replaced by a new one (``os.replace``) DuckDB reads anew either way."""
    path = str(tmp_path / "part-0.parquet")
    _write(path, [1, 2, 3, 4])
    hour_ago = os.stat(path).st_mtime_ns - 3600 * 10**9
    os.utime(path, ns=(hour_ago, hour_ago))
    con = engine.connect([str(tmp_path)])
    try:
        scan = f"read_parquet(['{path}'])"
        assert _query(con, f"SELECT min(a), max(a) FROM {scan}") == [(1, 4)]
        size = os.stat(path).st_size
        _write(path + ".new", [5, 6, 7, 8])
        rewritten = Path(path + ".new").read_bytes()
        assert len(rewritten) == size
        with open(path, "r+b") as data_file:  # in place: the same file, not a new one
            data_file.write(rewritten)
        os.utime(path, ns=(hour_ago, hour_ago))
        assert _query(con, f"SELECT count(*) FROM {scan} WHERE a > 4") == [(4,)]
        assert _query(con, f"SELECT min(a), max(a) FROM {scan}") == [(5, 8)]
    finally:
        con.close()


def test_no_connection_keeps_parquet_footers_across_queries(tmp_path) -> None:
    """The footer cache trusts size and time alone; meshsim leaves it off on every cursor."""
    con = engine.connect([str(tmp_path)])
    try:
        got = _query(
            con, "SELECT value FROM duckdb_settings() WHERE name = 'parquet_metadata_cache'"
        )
        assert got == [("false",)]
    finally:
        con.close()
