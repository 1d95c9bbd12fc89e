"""The layout section: what each choice of the Parquet layout meshsim writes, and of the DuckDB
settings it runs with, does to raw DuckDB's query times, as ratios measured in one run.

The three large tables (``sales.lineitem``, ``sales.orders``, ``customer.customer``) are
written again from the mesh's current snapshot once per layout, as Delta tables by meshsim's
own writer (:func:`meshsim.storage.delta.write` with a ``layout``), into a temporary folder;
the other tables are read where they are. Each choice then runs the same queries on a DuckDB
connection configured like meshsim's engine, the runs of every choice interleaved (query by
query, round by round) so that the load of a shared machine falls on all of them alike.
Each ratio is the choice's median over the baseline's, the baseline being delta-rs's own
defaults (1,048,576-row groups, snappy, dictionary pages) over the rows in primary key order
(the order TPC-H generates them in). A layout either keeps that key order or sorts by the
tables' declared ``sort_by`` (:func:`meshsim.build.write_order`), as meshsim's build does.

The peer users would pick instead, Polars (``scan_delta``), runs on the same Delta tables of
the layouts in :data:`POLARS_ON`, interleaved with the rest: its rows say whether raw DuckDB,
which meshsim runs on, is ahead of it on each layout.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshsim.bench import queries
from meshsim.console import Console, NullConsole

if TYPE_CHECKING:
    from meshsim.mesh import Mesh

REWRITTEN = ("sales.lineitem", "sales.orders", "customer.customer")
QUERIES = ("q01", "q03", "q04", "q06", "q10", "q12", "q13", "q18")
BASELINE = "delta-rs defaults: 1,048,576-row groups, snappy, dictionary, key order"
KEY_ORDER = "122,880-row groups, key order"
CHOSEN = "122,880-row groups, snappy, dictionary, sorted by sort_by (meshsim)"

#: choice -> (layout overrides for :func:`meshsim.storage.delta.writer_properties`, plus
#: ``sorted``: rows in declared ``sort_by`` order rather than key order; DuckDB settings)
CHOICES: dict[str, tuple[dict[str, Any], dict[str, bool | int | str]]] = {
    BASELINE: ({"max_row_group_size": 1_048_576, "sorted": False}, {}),
    KEY_ORDER: ({"sorted": False}, {}),
    CHOSEN: ({}, {}),
    "1,048,576-row groups, sorted": ({"max_row_group_size": 1_048_576}, {}),
    "61,440-row groups, sorted": ({"max_row_group_size": 61_440}, {}),
    "sorted, uncompressed": ({"compression": "UNCOMPRESSED"}, {}),
    "sorted, zstd": ({"compression": "ZSTD"}, {}),
    "sorted, no dictionary": ({"dictionary": False}, {}),
    "meshsim layout + parquet_metadata_cache": ({}, {"parquet_metadata_cache": True}),
    "meshsim layout + preserve_insertion_order off": ({}, {"preserve_insertion_order": False}),
}
#: the layouts Polars also reads (its rows are named "Polars on <layout>")
POLARS_ON = (KEY_ORDER, CHOSEN)


def _rewrite(mesh: Mesh, ref: str, target: Path, layout: dict[str, Any]) -> None:
    """``ref``'s current rows as a new Delta table at ``target``, in declared order unless
    ``layout["sorted"]`` is false (then in primary key order)."""
    import tempfile

    import pyarrow.dataset as ds

    from meshsim import engine
    from meshsim.build import write_order
    from meshsim.storage import delta

    overrides = dict(layout)
    table = mesh.spec.table(ref)
    assert table is not None  # REWRITTEN names tables of the example mesh
    order = write_order(table.table) if overrides.pop("sorted", True) else table.table.primary_key
    files = [f.path for f in mesh.snapshot(ref).files]
    reader = ds.dataset(files, format="parquet").scanner().to_reader()
    with tempfile.TemporaryDirectory(prefix="meshsim-layout-sort-") as spill:
        rows = engine.sorted_rows(reader, order, spill_dir=spill) if order else reader
        delta.write(target, rows, mode="create", table=ref, layout=overrides)


def _size_mb(paths: list[str]) -> float:
    return round(sum(Path(p).stat().st_size for p in paths) / 1e6, 1)


def _connection(files: dict[str, list[str]], settings: dict[str, bool | int | str]) -> Any:
    from meshsim import engine
    from meshsim.bench.engines import _create_schemas, _parquet_view

    roots = sorted({str(Path(p).parent.parent) for paths in files.values() for p in paths})
    con = engine.connect(roots, settings=settings)
    _create_schemas(con, {ref.split(".")[0] for ref in files})
    for ref, paths in files.items():
        schema, name = ref.split(".")
        con.execute(_parquet_view(schema, name, paths).sql(dialect="duckdb"))
    return con


def layout(mesh: Mesh, *, runs: int = 5, console: Console | None = None) -> dict[str, Any]:
    from meshsim.bench.engines import polars_runner

    console = console or NullConsole()
    texts = {q.name: q.sql for q in queries.tpch(list(QUERIES))}
    base_files = {t.ref: [f.path for f in mesh.snapshot(t.ref).files] for t in mesh.spec.tables()}
    with tempfile.TemporaryDirectory(prefix="meshsim-layout-") as tmp:
        layouts: dict[str, dict[str, Path]] = {}  # layout -> its rewritten tables' folders
        runners: dict[str, Callable[[str], Any]] = {}
        connections = []
        sizes = {}
        for i, (choice, (overrides, settings)) in enumerate(CHOICES.items()):
            key = repr(sorted(overrides.items()))
            if key not in layouts:
                console.note(f"layout: writing {choice}")
                folder = Path(tmp) / str(i)
                layouts[key] = {ref: folder / ref.replace(".", "_") for ref in REWRITTEN}
                for ref, target in layouts[key].items():
                    _rewrite(mesh, ref, target, overrides)
            rewritten = {ref: _files(target, ref) for ref, target in layouts[key].items()}
            con = _connection({**base_files, **rewritten}, settings)
            connections.append(con)
            runners[choice] = _duckdb_runner(con)
            sizes[choice] = _size_mb([p for paths in rewritten.values() for p in paths])
            if choice in POLARS_ON:
                located = {t.ref: mesh.locate(t.ref) for t in mesh.spec.tables()}
                polars = f"Polars on {choice}"
                runners[polars] = polars_runner(
                    {**located, **{ref: str(t) for ref, t in layouts[key].items()}}
                )
                sizes[polars] = sizes[choice]
        medians: dict[str, dict[str, float]] = {choice: {} for choice in runners}
        try:
            for name, sql in texts.items():
                console.note(f"layout: {name}")
                samples: dict[str, list[float]] = {choice: [] for choice in runners}
                for run in runners.values():
                    run(sql)  # warm-up
                for _ in range(runs):
                    for choice, run in runners.items():
                        started = time.perf_counter()
                        run(sql)
                        samples[choice].append(time.perf_counter() - started)
                for choice in runners:
                    medians[choice][name] = statistics.median(samples[choice])
        finally:
            for con in connections:
                con.close()
    rows = []
    for choice in runners:
        ratios = {q: medians[choice][q] / medians[BASELINE][q] for q in texts}
        geomean = math.exp(sum(math.log(r) for r in ratios.values()) / len(ratios))
        rows.append(
            {
                "choice": choice,
                "size_mb": sizes[choice],
                "geomean": round(geomean, 3),
                **{q: round(r, 3) for q, r in ratios.items()},
            }
        )
    return {
        "title": "Layout: Parquet layout and DuckDB settings, raw DuckDB time as a ratio to "
        "delta-rs's defaults",
        "note": f"{', '.join(REWRITTEN)} rewritten per layout by meshsim's Delta writer "
        f"(size_mb: their data files); median of {runs} interleaved runs per query and "
        f"choice, 2 threads, 1 GB; below 1 is faster than the baseline ({BASELINE}); "
        f"'Polars on' rows: Polars over that layout's Delta tables, against the same "
        f"baseline; meshsim writes: {CHOSEN}",
        "columns": ["choice", "size_mb", "geomean", *texts],
        "rows": rows,
    }


def _files(target: Path, ref: str) -> list[str]:
    from meshsim.storage.snapshot import load_snapshot

    return [f.path for f in load_snapshot(target, table=ref).files]


def _duckdb_runner(con: Any) -> Callable[[str], Any]:
    return lambda sql: con.sql(sql).to_arrow_table()
