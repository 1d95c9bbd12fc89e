"""The governed DuckDB may read under its data roots only, however a path spells them: DuckDB
resolves symbolic links in the roots and in every path it opens, so meshsim hands it the
roots as given (made absolute), without stat'ing each one itself."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from meshsim import engine


def _parquet(folder: Path) -> Path:
    folder.mkdir()
    path = folder / "x.parquet"
    pq.write_table(pa.table({"a": [1]}), path)
    return path


@pytest.mark.parametrize("allowed", ["link", "real"])
def test_a_root_and_its_symlink_read_the_same_files_and_no_sibling(
    tmp_path: Path, allowed: str
) -> None:
    real = _parquet(tmp_path / "real")
    sibling = _parquet(tmp_path / "real2")  # a prefix of the root's name is not the root
    (tmp_path / "link").symlink_to(tmp_path / "real")
    duck = engine.open_governed([str(tmp_path / allowed)])
    try:
        for path in (real, tmp_path / "link" / "x.parquet"):
            assert duck.con.execute(f"SELECT a FROM read_parquet('{path}')").fetchall() == [(1,)]
        for path in (sibling, tmp_path / "link" / ".." / "real2" / "x.parquet"):
            with pytest.raises(duckdb.PermissionException):
                duck.con.execute(f"SELECT a FROM read_parquet('{path}')").fetchall()
    finally:
        duck.close()


def test_a_relative_root_is_the_folder_it_names(tmp_path: Path, monkeypatch) -> None:
    real = _parquet(tmp_path / "real")
    monkeypatch.chdir(tmp_path)
    duck = engine.open_governed(["real"])
    try:
        assert duck.con.execute(f"SELECT a FROM read_parquet('{real}')").fetchall() == [(1,)]
    finally:
        duck.close()
