"""The layout section at a tiny scale: every choice is written, read and timed, and the
rewritten tables keep the mesh's rows (correctness only: no timing is asserted)."""

from __future__ import annotations

from pathlib import Path

from meshsim.bench.layout import BASELINE, CHOICES, POLARS_ON, QUERIES, layout
from meshsim.mesh import Mesh
from meshsim.storage import delta


def test_every_layout_choice_is_measured_against_the_baseline(built_workspace: Path):
    with Mesh.open(built_workspace) as mesh:
        section = layout(mesh, runs=1)
    rows = {r["choice"]: r for r in section["rows"]}
    assert set(rows) == set(CHOICES) | {f"Polars on {choice}" for choice in POLARS_ON}
    assert rows[BASELINE]["geomean"] == 1.0
    assert all(r["size_mb"] > 0 and all(r[q] > 0 for q in QUERIES) for r in rows.values())


def test_the_written_layout_is_a_valid_delta_table_with_small_row_groups(tmp_path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from meshsim.storage.snapshot import load_snapshot

    rows = delta.ROW_GROUP_ROWS * 2 + 7
    data = pa.table(
        {"k": pa.array(range(rows), pa.int64()), "s": [f"v{i % 13}" for i in range(rows)]}
    )
    delta.write(tmp_path / "t", data, mode="create", table="x.t")
    snapshot = load_snapshot(tmp_path / "t", table="x.t")
    (file,) = snapshot.files
    meta = pq.ParquetFile(file.path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [
        delta.ROW_GROUP_ROWS,
        delta.ROW_GROUP_ROWS,
        7,
    ]
    assert meta.row_group(0).column(0).compression == "SNAPPY"
    assert file.null_counts.get("k") == 0  # statistics are in the log
    assert delta.read_table(tmp_path / "t", table="x.t").num_rows == rows


def test_a_rewritten_layout_is_in_declared_order_or_in_key_order(
    built_workspace: Path, tmp_path: Path
):
    """The layout section compares sorted tables with tables in key order: each rewrite has
    the mesh's rows in the order it names."""
    import pyarrow.parquet as pq

    from meshsim.bench.layout import _files, _rewrite

    with Mesh.open(built_workspace) as mesh:
        for sort in (True, False):
            target = tmp_path / str(sort)
            _rewrite(mesh, "sales.orders", target, {"sorted": sort})
            (path,) = _files(target, "sales.orders")
            columns = pq.read_table(path, columns=["o_orderdate", "o_orderkey"]).to_pydict()
            by_date = list(zip(columns["o_orderdate"], columns["o_orderkey"], strict=True))
            assert len(by_date) == 15_000
            assert (by_date == sorted(by_date)) is sort
            assert (columns["o_orderkey"] == sorted(columns["o_orderkey"])) is not sort
