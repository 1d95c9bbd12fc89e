"""Timestamps read the same whatever the machine's time zone: Spark writes a Delta ``timestamp``
as INT96 or as a Parquet timestamp not marked UTC-adjusted, and a cast to TIMESTAMPTZ in the
session's local zone shifted every value by the zone's offset (review finding)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake

NOON = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)

READ = """
import sys
from meshsim import engine
from meshsim.storage.scan import scan_query
from meshsim.storage.snapshot import load_snapshot
snapshot = load_snapshot(sys.argv[1], table="t")
sql = f"SELECT epoch(ts)::BIGINT, count(*) FILTER (WHERE ts = TIMESTAMPTZ '2024-01-01 12:00:00+00') OVER () FROM ({scan_query(snapshot).sql(dialect='duckdb')})"
con = engine.connect([sys.argv[1]])
print(con.execute(sql).fetchall())
"""


def _rewrite(path: Path, how: str) -> None:
    """Rewrite the table's only data file as Spark would, and fix its size in the log."""
    [data] = list(path.glob("*.parquet"))
    table = pq.read_table(data)
    if how == "int96":
        pq.write_table(table, data, use_deprecated_int96_timestamps=True)
    else:
        naive = table.set_column(1, "ts", table.column("ts").cast(pa.timestamp("us")))
        pq.write_table(naive, data)
    commit = path / "_delta_log" / f"{0:020d}.json"
    actions = [json.loads(line) for line in commit.read_text().splitlines()]
    for action in actions:
        if "add" in action:
            action["add"]["size"] = data.stat().st_size
    commit.write_text("".join(json.dumps(a) + "\n" for a in actions))


@pytest.mark.parametrize("how", ["int96", "not_adjusted_to_utc"])
@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata"])
def test_spark_timestamps_do_not_move_with_the_local_zone(tmp_path: Path, how: str, zone: str):
    path = tmp_path / "t"
    ts = pa.array([NOON, NOON], pa.timestamp("us", tz="UTC"))
    write_deltalake(str(path), pa.table({"id": pa.array([1, 2], pa.int64()), "ts": ts}))
    _rewrite(path, how)
    result = subprocess.run(
        [sys.executable, "-c", READ, str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "TZ": zone},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"[({int(NOON.timestamp())}, 2), ({int(NOON.timestamp())}, 2)]"
