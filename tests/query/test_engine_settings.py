"""The DuckDB settings every engine connection runs with (:data:`meshsim.engine.QUERY_SETTINGS`)
and what they must never change: the rows a query returns."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq

from meshsim import engine


def _write(path: str, values: list[int], *, row_group_size: int = 2) -> None:
    pq.write_table(pa.table({"a": values}), path, row_group_size=row_group_size)


def _sum_and_count(con, path: str) -> tuple[int, int]:
    cur = con.cursor()
    try:
        row = cur.execute(f"SELECT sum(a), count(*) FROM read_parquet('{path}')").fetchall()[0]
        return int(row[0]), int(row[1])
    finally:
        cur.close()


def test_every_connection_caches_parquet_footers(tmp_path) -> None:
    con = engine.connect([str(tmp_path)])
    try:
        cur = con.cursor()
        settings = dict(
            cur.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name = 'parquet_metadata_cache'"
            ).fetchall()
        )
        cur.close()
        assert settings == {"parquet_metadata_cache": "true"}
    finally:
        con.close()


def test_a_file_replaced_in_place_is_read_anew(tmp_path) -> None:
    """The footer cache answers from a file's status; a file rewritten under the same name,
    even with its old modification time put back, is read again, never from the old footer."""
    path = str(tmp_path / "part-0.parquet")
    _write(path, list(range(10)))
    con = engine.connect([str(tmp_path)])
    try:
        assert _sum_and_count(con, path) == (45, 10)
        before = os.stat(path)
        _write(path + ".new", [100 * i for i in range(20)], row_group_size=3)
        os.replace(path + ".new", path)
        assert _sum_and_count(con, path) == (19_000, 20)
        before = os.stat(path)
        _write(path + ".new", [7 * i for i in range(5)], row_group_size=4)
        os.utime(path + ".new", ns=(before.st_atime_ns, before.st_mtime_ns))
        os.replace(path + ".new", path)
        assert _sum_and_count(con, path) == (70, 5)
    finally:
        con.close()
