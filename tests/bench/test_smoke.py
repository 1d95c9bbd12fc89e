"""The benchmark harness at a tiny scale: every engine answers every query it runs, and the
answers agree (correctness only: no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from meshsim.bench import answers, harness, queries
from meshsim.bench.engines import DEFAULT_ENGINES, flatten_tables
from meshsim.bench.errors import BenchError
from meshsim.errors import MeshsimError
from tests.conftest import EXAMPLE_MESH

SCALE = 0.01


@pytest.fixture(scope="module")
def bench_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bench")
    harness.prepare_mesh(root / f"sf{SCALE:g}", SCALE, harness.NullConsole(), EXAMPLE_MESH)
    return root


def test_all_engines_agree_on_all_queries(bench_root: Path, tmp_path: Path) -> None:
    result, files = harness.run_benchmark(
        scale=SCALE,
        runs=1,
        out=tmp_path / "report",
        workspace=bench_root,
        smoke=True,
        mesh_dir=EXAMPLE_MESH,
    )
    assert not list(harness.iter_problems(result))
    expected = len(queries.ALL) * 5 + len(queries.RESTRICTED) * 2
    assert len(result.runs) == expected
    bad = [
        (r.engine, r.query, r.status, r.answer, r.error)
        for r in result.runs
        if r.status != "ok" or r.answer not in ("reference", "match", "tolerance")
    ]
    assert bad == []
    assert {r.engine for r in result.runs} == set(DEFAULT_ENGINES)
    data = json.loads(files["json"].read_text())
    assert data["problems"] == []
    report = files["markdown"].read_text()
    assert "Every answer checked agrees" in report
    assert (tmp_path / "report" / "queries_warm.png").is_file()


def test_cli_smoke_on_two_queries(bench_root: Path, tmp_path: Path) -> None:
    from meshsim.cli import main

    code = main(
        [
            "bench",
            "--scale",
            str(SCALE),
            "--smoke",
            "--workspace",
            str(bench_root),
            "--out",
            str(tmp_path / "out"),
            "--engines",
            "duckdb,meshsim",
            "--queries",
            "1,q18",
            "--mesh",
            str(EXAMPLE_MESH),
        ]
    )
    assert code == 0
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [(r["engine"], r["query"]) for r in data["runs"]] == [
        ("duckdb", "q01"),
        ("duckdb", "q18"),
        ("meshsim", "q01"),
        ("meshsim", "q18"),
    ]


def test_wrong_answer_is_detected() -> None:
    want = pa.table({"k": ["a", "b"], "v": [1.0, 2.0]})
    assert answers.compare(pa.table({"x": ["b", "a"], "y": [2.001, 1.0]}), want).status == "match"
    assert answers.compare(pa.table({"k": ["a", "b"], "v": [1.0, 2.5]}), want).status == "wrong"
    assert "rows" in answers.compare(pa.table({"k": ["a"], "v": [1.0]}), want).detail


def test_flat_names_are_rewritten_on_the_tree() -> None:
    sql = flatten_tables(
        "WITH r AS (SELECT 1 AS x) SELECT * FROM sales.lineitem l1, r, customer.nation",
        frozenset({"sales", "customer"}),
    )
    assert sql == (
        "WITH r AS (SELECT 1 AS x) SELECT * FROM sales_lineitem AS l1, r, customer_nation"
    )


def test_unknown_names_suggest_the_closest() -> None:
    with pytest.raises(MeshsimError, match="query 'q1x' is not defined"):
        queries.tpch(["q1x"])
    assert [q.name for q in queries.tpch(["1", "Q6", "q22"])] == ["q01", "q06", "q22"]
    with pytest.raises(BenchError, match="did you mean 'polars'"):
        from meshsim.bench.engines import check_engines

        check_engines(["polar"])


def test_restricted_set_reads_only_granted_tables() -> None:
    import sqlglot
    from sqlglot import exp

    for query in queries.restricted():
        tree = sqlglot.parse_one(query.sql, read="duckdb")
        assert {t.db for t in tree.find_all(exp.Table)} <= {"customer", "sales"}
        assert "c_acctbal" not in {c.name for c in tree.find_all(exp.Column)}


def test_mesh_scale_alone_at_a_tiny_size(tmp_path: Path) -> None:
    """The CI smoke of the mesh-scale micro-benchmark: two tiny sizes, every column measured,
    the targets computed (not asserted: timings on a shared machine are not)."""
    from meshsim.cli import main

    out = tmp_path / "report"
    code = main(
        [
            "bench",
            "--mesh-scale",
            "--max-tables",
            "20",
            "--consumers",
            "10",
            "--startup-samples",
            "2",
            "--out",
            str(out),
            "--workspace",
            str(tmp_path / "ws"),
        ]
    )
    assert code == 0
    data = json.loads((out / "results.json").read_text())
    section = data["micro"]["mesh_scale"]
    assert [row["tables"] for row in section["rows"]] == [10, 20]
    assert all(row["rebuild_published"] == 1 for row in section["rows"])
    catalog = {"subscriptions", "products_ms", "show_ms", "request_ms", "approve_ms", "pending_ms"}
    catalog |= {"query_after_change_ms", "query_after_change_first_ms"} | {
        f"{k}_first_ms" for k in ("products", "show")
    }
    catalog |= {"request_first_ms", "approve_first_ms", "open_session_subscribed_s"}
    assert all(set(section["columns"]) - catalog <= set(row) for row in section["rows"])
    assert section["rows"][-1]["subscriptions"] == 200 and catalog <= set(section["rows"][-1])
    assert len(section["targets"]) == 6 + 6  # ratios, then the catalog's times on the largest
    # the start-up ratios come from the smallest and largest timed in alternation
    first, last = section["rows"][0], section["rows"][-1]
    one_shot = next(t for t in section["targets"] if t[0] == "mesh scale: one-shot meshsim sql")
    assert one_shot[2] == round(last["one_shot_paired_s"] / first["one_shot_paired_s"], 3)
    assert "in alternation at the end (2 samples each" in section["note"]
    assert not (tmp_path / "ws" / "mesh-scale" / "t10").exists()  # the meshes are removed
    assert "Mesh scale (10 consumers" in (out / "report.md").read_text()


def test_mesh_scale_cannot_be_both_asked_for_and_skipped(tmp_path: Path, capsys) -> None:
    from meshsim.cli import main

    code = main(["bench", "--mesh-scale", "--skip-mesh-scale", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code != 0 and err.startswith("Error: --mesh-scale runs only")
    assert "Traceback" not in err and not (tmp_path / "r").exists()


def test_cold_runs_are_each_followed_by_a_fresh_run(bench_root: Path, tmp_path: Path) -> None:
    """Each cold sample (page cache dropped when permitted) is followed by a fresh engine's
    first run with the page cache kept; both are reported as modes of their own."""
    result, files = harness.run_benchmark(
        scale=SCALE,
        runs=2,
        out=tmp_path / "report",
        workspace=bench_root,
        engines=["duckdb", "meshsim"],
        query_names=["q06"],
        micro=False,
        mesh_dir=EXAMPLE_MESH,
    )
    assert not list(harness.iter_problems(result))
    assert [(len(r.cold), len(r.fresh), len(r.warm)) for r in result.runs] == [(2, 2, 2)] * 2
    assert {(r.engine, r.mode) for r in result.ratios} == {
        ("meshsim", mode) for mode in harness.MODES
    }
    report = files["markdown"].read_text()
    assert "## Per query, fresh (ms)" in report and "(fresh)" in report
    assert (tmp_path / "report" / "queries_fresh.png").is_file()
