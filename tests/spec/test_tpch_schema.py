from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from meshsim.build import TPCH_TABLES
from meshsim.spec.tpch import TPCH_COLUMNS
from meshsim.spec.types import from_arrow


def test_the_static_schema_is_what_tpchgen_writes(built_workspace: Path):
    staging = built_workspace / "staging" / "tpch-sf0.01"
    assert sorted(TPCH_COLUMNS) == sorted(TPCH_TABLES)
    for table, columns in TPCH_COLUMNS.items():
        schema = pq.read_schema(staging / f"{table}.parquet")
        assert tuple((f.name, from_arrow(f.type)) for f in schema) == columns, table
