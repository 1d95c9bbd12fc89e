"""The benchmark report: ``report.md`` (Markdown), ``results.json`` (every measurement) and
PNG plots (matplotlib, Agg backend), written to one folder.

Wrong answers and failures of meshsim come first, in a section that cannot be missed; then the
targets (met or not, with the ratio), the geometric means, per-query tables, the
micro-benchmarks and the machine.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshsim.bench.engines import ENGINES, engine_info
from meshsim.bench.harness import timed_modes

if TYPE_CHECKING:
    from meshsim.bench.harness import BenchResult


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        out.append("| " + " | ".join("" if v is None else str(v) for v in row) + " |")
    return out


def _engines(result: BenchResult) -> list[str]:
    present = {r.engine for r in result.runs}
    return [name for name in ENGINES if name in present]


def _modes(result: BenchResult) -> tuple[str, ...]:
    return timed_modes(result.config)


def _cell(result: BenchResult, engine: str, query: str, mode: str) -> str:
    run = result.run_of(engine, query)
    if run is None:
        return ""
    if run.status != "ok":
        return {"wrong": "**WRONG**", "failed": "**FAILED**"}.get(run.status, run.status)
    median = run.median(mode)
    text = _fmt(median * 1000, 1) if median is not None else "–"
    return text + (" ≈" if run.answer == "tolerance" else "")


def markdown(result: BenchResult, plots: list[str]) -> str:
    c = result.config
    m = result.machine
    lines = [f"# meshsim benchmark: TPC-H at scale {c.scale:g}", ""]
    if not c.queries:
        lines = ["# meshsim benchmark: mesh scale only (no TPC-H)", ""]
    if c.smoke:
        head = "Smoke run: correctness only, one warm run per query; timings are not meaningful."
    else:
        head = (
            f"Median of {c.runs} run(s) per query and mode; times in milliseconds. Cold "
            f"runs (a fresh engine's first run) dropped the OS page cache: "
            f"{'yes' if result.page_cache_dropped else 'no (not permitted)'}; fresh runs "
            f"are a fresh engine's first run right after, the page cache kept (a new "
            f"session's first query)."
        )
    lines.append(
        f"{head} Started {result.started}; took {result.seconds:.0f} s (mesh build "
        f"or reuse {result.build_seconds:.1f} s)."
    )
    lines += ["", "## Answers", ""]
    problems = result.problems
    if problems:
        lines.append(
            f"**{len(problems)} WRONG ANSWER(S) OR FAILURE(S) OF MESHSIM: their "
            "timings are excluded everywhere below.**"
        )
        lines.append("")
        lines += [
            f"- **{r.engine} {r.query}: {r.status}**: {r.answer or r.error}" for r in problems
        ]
    else:
        checked = sum(1 for r in result.runs if r.answer in ("match", "tolerance"))
        lines.append(
            f"Every answer checked agrees with its reference ({checked} checked; "
            "full-access engines against raw DuckDB, the restricted consumer against "
            "its hand-written twin)."
        )
    tolerance = [r for r in result.runs if r.answer == "tolerance"]
    if tolerance:
        lines.append("")
        lines.append(
            "Matched within one cent after rounding (marked ≈): "
            + ", ".join(f"{r.engine} {r.query}" for r in tolerance)
        )
    unsupported = [r for r in result.runs if r.status == "unsupported"]
    if unsupported:
        lines += ["", "Unsupported by a peer engine (not timed):", ""]
        lines += [f"- {r.engine} {r.query}: {r.error}" for r in unsupported]

    lines += ["", "## Targets", ""]
    lines += _table(
        ["target", "goal", "measured", "result", "note"],
        [
            [
                t.name,
                t.goal,
                _fmt(t.value),
                "not measured" if t.met is None else ("met" if t.met else "**NOT MET**"),
                t.note,
            ]
            for t in result.targets
        ],
    )

    lines += ["", "## Geometric means of per-query ratios", ""]
    lines.append(
        "Ratio = engine median / baseline median, over the queries both answered "
        "correctly; below 1 means the engine is faster."
    )
    lines.append("")
    lines += _table(
        ["engine", "baseline", "mode", "geomean ratio", "queries"],
        [[r.engine, r.baseline, r.mode, _fmt(r.geomean), r.queries] for r in result.ratios],
    )

    for mode in _modes(result):
        lines += ["", f"## Per query, {mode} (ms)", ""]
        engines = _engines(result)
        query_names = sorted({r.query for r in result.runs})
        lines += _table(
            ["query", *engines],
            [[q, *(_cell(result, e, q, mode) for e in engines)] for q in query_names],
        )
    lines += ["", "Engines:", ""]
    for name in _engines(result):
        info = engine_info(name)
        lines.append(
            f"- `{name}` (comparison {info.comparison}): {info.label}, answering as "
            f"`{info.consumer}`"
        )

    if result.micro:
        lines += ["", "## Micro-benchmarks"]
        for key, section in result.micro.items():
            lines += ["", f"### {section.get('title', key)}", ""]
            if section.get("skipped"):
                lines.append(f"Skipped: {section['skipped']}")
                continue
            if section.get("note"):
                lines += [section["note"], ""]
            columns = section["columns"]
            lines += _table(columns, [[row.get(col) for col in columns] for row in section["rows"]])
            if section.get("median_s") is not None:
                lines += ["", f"Median: {section['median_s']:.3f} s"]

    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{p}]({p})" for p in plots]

    lines += ["", "## Machine", ""]
    lines += _table(
        ["", ""],
        [
            ["CPU", m.get("cpu")],
            ["cores", m.get("cores")],
            ["memory (GiB)", m.get("memory_gib")],
            ["OS", m.get("os")],
            ["Python", m.get("python")],
            *([name, version] for name, version in m.get("versions", {}).items()),
        ],
    )
    return "\n".join(lines) + "\n"


def _plot_queries(result: BenchResult, path: Path, mode: str) -> None:
    import matplotlib.pyplot as plt

    engines = _engines(result)
    query_names = sorted({r.query for r in result.runs})
    width = 0.8 / max(1, len(engines))
    fig, ax = plt.subplots(figsize=(max(10, len(query_names) * 0.7), 5))
    for i, engine in enumerate(engines):
        values = []
        for q in query_names:
            run = result.run_of(engine, q)
            median = run.median(mode) if run else None
            values.append(median * 1000 if median else math.nan)
        ax.bar([x + i * width for x in range(len(query_names))], values, width, label=engine)
    ax.set_xticks([x + width * (len(engines) - 1) / 2 for x in range(len(query_names))])
    ax.set_xticklabels(query_names, rotation=45)
    ax.set_yscale("log")
    ax.set_ylabel(f"median {mode} time (ms, log scale)")
    ax.set_title(f"TPC-H sf {result.config.scale:g}, {mode}: per-query median by engine")
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_ratios(result: BenchResult, path: Path) -> None:
    import matplotlib.pyplot as plt

    ratios = [r for r in result.ratios if r.geomean]
    labels = [f"{r.engine} / {r.baseline} ({r.mode})" for r in ratios]
    fig, ax = plt.subplots(figsize=(9, 0.4 * len(labels) + 1.5))
    ax.barh(
        labels,
        [r.geomean or 0.0 for r in ratios],
        color=["tab:green" if (r.geomean or 0.0) <= 1.05 else "tab:red" for r in ratios],
    )
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.axvline(1.05, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("geometric mean of per-query ratios (log scale; < 1 is faster)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_micro(result: BenchResult, out: Path) -> list[str]:
    import matplotlib.pyplot as plt

    written = []
    planning = result.micro.get("planning", {})
    if planning.get("rows"):
        rows = planning["rows"]
        fig, ax = plt.subplots(figsize=(6, 4))
        xs = [r["policies"] for r in rows]
        ax.plot(xs, [r["p50_ms"] for r in rows], marker="o", label="p50")
        ax.plot(xs, [r["p95_ms"] for r in rows], marker="o", label="p95")
        ax.axhline(5.0, color="grey", linestyle="--", linewidth=0.8, label="5 ms target")
        ax.set_xscale("log")
        ax.set_xlabel("synthetic policies")
        ax.set_ylabel("planning time per query (ms)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "planning.png", dpi=110)
        plt.close(fig)
        written.append("planning.png")
    scaling = result.micro.get("scaling", {})
    if scaling.get("rows"):
        fig, ax = plt.subplots(figsize=(6, 4))
        for engine in sorted({r["engine"] for r in scaling["rows"]}):
            rows = [
                r for r in scaling["rows"] if r["engine"] == engine and r["total_s"] is not None
            ]
            ax.plot(
                [r["scale"] for r in rows], [r["total_s"] for r in rows], marker="o", label=engine
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("TPC-H scale factor")
        ax.set_ylabel("total time of its queries (s)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "scaling.png", dpi=110)
        plt.close(fig)
        written.append("scaling.png")
    return written


def plots(result: BenchResult, out: Path) -> list[str]:
    """Write the PNG plots; returns their file names (none if matplotlib is missing)."""
    try:
        import matplotlib
    except ModuleNotFoundError:
        return []
    matplotlib.use("Agg")
    written = []
    for mode in _modes(result) if result.runs else ():  # a mesh-scale run alone has none
        _plot_queries(result, out / f"queries_{mode}.png", mode)
        written.append(f"queries_{mode}.png")
    if any(r.geomean for r in result.ratios):
        _plot_ratios(result, out / "ratios.png")
        written.append("ratios.png")
    return written + _plot_micro(result, out)


def write(result: BenchResult, out: Path) -> dict[str, Path]:
    """Write ``report.md``, ``results.json`` and the plots into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    data = result.to_json()
    data["problems"] = [
        f"{r.engine} {r.query}: {r.status}: {r.answer or r.error}" for r in result.problems
    ]
    files["json"] = out / "results.json"
    files["json"].write_text(json.dumps(data, indent=2, default=str) + "\n")
    written = plots(result, out)
    files.update({name: out / name for name in written})
    files["markdown"] = out / "report.md"
    files["markdown"].write_text(markdown(result, written))
    return files
