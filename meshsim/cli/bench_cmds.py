"""``meshsim bench``: the TPC-H benchmark and micro-benchmarks (see benchmarks/README.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from meshsim.bench.meshscale import CONSUMERS as MESH_CONSUMERS
from meshsim.bench.meshscale import PAIRED_SAMPLES as MESH_STARTUP_SAMPLES
from meshsim.bench.meshscale import SIZES as MESH_SIZES
from meshsim.cli import app
from meshsim.cli.options import (
    MAX_RUNS,
    MeshDir,
    ScaleFactors,
    console,
    folder,
    integer,
    scale_factors,
    scale_option,
)


def _split(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


@app.command()
def bench(
    scale: float = scale_option(1.0, "TPC-H scale factor (0.1 quick, 1 default)."),
    runs: int = typer.Option(
        3,
        "--runs",
        parser=integer(1, MAX_RUNS),
        metavar="N",
        help="Runs per query and mode; the median counts.",
    ),
    out: Path = typer.Option(
        Path("benchmarks/results/latest"),
        "--out",
        parser=folder,
        metavar="DIR",
        help="Folder for report.md, results.json, PNGs.",
    ),
    workspace: Path = typer.Option(
        Path("meshsim-bench"),
        "--workspace",
        parser=folder,
        metavar="DIR",
        help="Folder of the benchmark meshes (one per scale, sf<SF>/), built or reused.",
    ),
    engines: str | None = typer.Option(
        None,
        "--engines",
        help="Comma-separated engines (default all but spark): duckdb, meshsim, "
        "duckdb_twin, meshsim_restricted, polars, deltars, duckdb_dataset, spark.",
    ),
    queries: str | None = typer.Option(
        None, "--queries", help="Comma-separated TPC-H queries, e.g. 1,6,18 (default all 22)."
    ),
    skip_micro: bool = typer.Option(False, "--skip-micro", help="Skip the micro-benchmarks."),
    skip_mesh_scale: bool = typer.Option(
        False,
        "--skip-mesh-scale",
        help="Skip the mesh-scale micro-benchmark only (its own run: --mesh-scale).",
    ),
    no_cold: bool = typer.Option(False, "--no-cold", help="Warm runs only."),
    scaling: ScaleFactors | None = typer.Option(
        None,
        "--scaling",
        parser=scale_factors,
        metavar="SF,SF",
        help="Scale factors of the scaling micro-benchmark, e.g. 0.1,1,10 "
        "(default: 0.1, 1 and 10 up to --scale).",
    ),
    smoke: bool = typer.Option(
        False, "--smoke", help="Correctness only: one warm run, no cold runs, no micro-benchmarks."
    ),
    mesh_scale: bool = typer.Option(
        False,
        "--mesh-scale",
        help="Only the mesh-scale micro-benchmark (generated meshes of 10 to 10,000 tables).",
    ),
    max_tables: int = typer.Option(
        MESH_SIZES[-1],
        "--max-tables",
        parser=integer(1, MESH_SIZES[-1]),
        metavar="N",
        help="Largest mesh of the mesh-scale micro-benchmark (sizes 10, 100, 1000, 10000 up "
        "to N, and N).",
    ),
    consumers: int = typer.Option(
        MESH_CONSUMERS,
        "--consumers",
        parser=integer(1, 100_000),
        metavar="N",
        help="Consumers of the mesh-scale meshes.",
    ),
    startup_samples: int = typer.Option(
        MESH_STARTUP_SAMPLES,
        "--startup-samples",
        parser=integer(1, 100),
        metavar="N",
        help="Samples of the smallest and the largest mesh's start-up costs, timed in "
        "alternation at the end of the mesh-scale micro-benchmark (the targets' ratios).",
    ),
    mesh: Path = MeshDir,
) -> None:
    """Run TPC-H on meshsim, raw DuckDB and peer engines; check answers; write a report."""
    from meshsim.bench.harness import iter_problems, run_benchmark, run_mesh_scale

    out_console = console()
    sizes = tuple(sorted({s for s in MESH_SIZES if s <= max_tables} | {max_tables}))
    if mesh_scale and skip_mesh_scale:
        from meshsim.bench.errors import BenchError

        raise BenchError(
            "--mesh-scale runs only the mesh-scale micro-benchmark and --skip-mesh-scale "
            "skips it: give one of them",
            hint="meshsim bench --mesh-scale  (or: meshsim bench --skip-mesh-scale)",
        )
    if mesh_scale:
        result, files = run_mesh_scale(
            out=out,
            workspace=workspace,
            sizes=sizes,
            consumers=consumers,
            startup_samples=startup_samples,
            console=out_console,
        )
        _report(out_console, result, files)
        return
    result, files = run_benchmark(
        scale=scale,
        runs=runs,
        out=out,
        workspace=workspace,
        engines=_split(engines),
        query_names=_split(queries),
        micro=not skip_micro,
        cold=not no_cold,
        smoke=smoke,
        scaling=scaling,
        mesh_sizes=() if skip_mesh_scale else sizes,
        mesh_dir=mesh,
        console=out_console,
    )
    _report(out_console, result, files)
    if any(True for _ in iter_problems(result)):
        raise typer.Exit(1)


def _report(out_console: Any, result: Any, files: dict[str, Path]) -> None:
    out_console.table(
        "targets",
        ["target", "goal", "measured", "result"],
        [
            [
                t.name,
                t.goal,
                "–" if t.value is None else f"{t.value:.3f}",
                "not measured" if t.met is None else ("met" if t.met else "NOT MET"),
            ]
            for t in result.targets
        ],
    )
    out_console.note(f"report: {files['markdown']}  (data: {files['json']})")
