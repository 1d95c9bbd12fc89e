"""Issue 12, the CLI: table output capped like DuckDB's, --out by extension, -f FILE, and a
query that opens with a ``--`` comment."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from meshsim.mesh import Mesh
from tests.cli.clihelpers import assert_clean_error, run

AS = ("--as", "eu_marketing_analyst")
ORDERS = "SELECT o_orderkey, o_orderdate FROM sales.orders ORDER BY o_orderkey"


def sql(capsys, workspace: Path, *args: str) -> tuple[int, str, str]:
    return run(capsys, "sql", *AS, "--workspace", str(workspace), *args)


def expected_orders(workspace: Path) -> list[tuple]:
    with Mesh.open(workspace) as mesh:
        return mesh.sql("eu_marketing_analyst", ORDERS).fetchall()


def test_a_table_shows_the_first_and_last_rows_and_counts_them(capsys, built_workspace: Path):
    rows = expected_orders(built_workspace)
    code, out, err = sql(capsys, built_workspace, ORDERS, "--max-rows", "6")
    assert code == 0, err
    assert f"{len(rows):,} rows (6 shown)" in out
    keys = [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")]
    assert keys == [str(r[0]) for r in rows[:3]] + ["…"] + [str(r[0]) for r in rows[-3:]]


def test_the_default_cap_is_forty_rows(capsys, built_workspace: Path):
    code, out, _ = sql(capsys, built_workspace, ORDERS)
    assert code == 0
    assert "rows (40 shown)" in out
    assert sum(1 for line in out.splitlines() if line.startswith("│")) == 41


def test_a_short_result_shows_every_row_and_its_count(capsys, built_workspace: Path):
    code, out, _ = sql(capsys, built_workspace, "SELECT 1 AS one")
    assert code == 0 and out.splitlines()[-1].rstrip() == "1 row"


def test_a_large_result_renders_without_converting_every_row(capsys, built_workspace, monkeypatch):
    """Rendering converts only the rows shown: converting the whole result to Python is what
    made 'SELECT * FROM sales.orders' print nothing for minutes."""
    import meshsim.cli.render

    converted: list[int] = []
    original = meshsim.cli.render.python_rows

    def counting(data):
        converted.append(data.num_rows)
        return original(data)

    monkeypatch.setattr(meshsim.cli.render, "python_rows", counting)
    code, out, _ = sql(capsys, built_workspace, "SELECT * FROM sales.orders")
    assert code == 0 and "rows (40 shown)" in out
    assert converted == [20, 20]


@pytest.mark.parametrize("fmt", ["csv", "json", "line"])
def test_csv_json_and_line_print_every_row(capsys, built_workspace: Path, fmt: str):
    rows = expected_orders(built_workspace)
    code, out, _ = sql(capsys, built_workspace, ORDERS, "--format", fmt)
    assert code == 0
    if fmt == "csv":
        assert len(out.splitlines()) == len(rows) + 1
    elif fmt == "json":
        assert [r["o_orderkey"] for r in json.loads(out)] == [r[0] for r in rows]
    else:
        assert out.count("o_orderkey = ") == len(rows)
        assert out.startswith(f" o_orderkey = {rows[0][0]}\no_orderdate = {rows[0][1]}\n\n")


@pytest.mark.parametrize("extension", ["csv", "json", "ndjson", "jsonl", "parquet"])
def test_out_writes_the_format_its_extension_names(
    capsys, built_workspace: Path, tmp_path: Path, extension: str
):
    rows = expected_orders(built_workspace)
    target = tmp_path / f"orders.{extension}"
    code, out, err = sql(capsys, built_workspace, ORDERS, "--out", str(target))
    assert code == 0, err
    assert out == "" and f"wrote {len(rows):,} rows to {target}" in err
    if extension == "parquet":
        table = pq.read_table(target)
        assert table.column("o_orderkey").to_pylist() == [r[0] for r in rows]
        assert table.column("o_orderdate").to_pylist() == [r[1] for r in rows]
        return
    text = target.read_text()
    if extension == "csv":
        assert text.splitlines()[0] == "o_orderkey,o_orderdate"
        assert text.splitlines()[1] == f"{rows[0][0]},{rows[0][1]}"
        assert len(text.splitlines()) == len(rows) + 1
    elif extension == "json":
        assert [r["o_orderkey"] for r in json.loads(text)] == [r[0] for r in rows]
    else:
        lines = [json.loads(line) for line in text.splitlines()]
        assert lines[0] == {"o_orderkey": rows[0][0], "o_orderdate": rows[0][1].isoformat()}
        assert len(lines) == len(rows)
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary file left


def test_out_refuses_an_unknown_extension_before_running(capsys, built_workspace, tmp_path):
    code, _, err = sql(capsys, built_workspace, "SELECT 1", "--out", str(tmp_path / "r.xlsx"))
    assert_clean_error(code, err, "'.xlsx'", ".csv, .json, .ndjson, .jsonl, .parquet")
    assert not (tmp_path / "r.xlsx").exists()


def test_out_keeps_an_existing_file_unless_told_to_overwrite(capsys, built_workspace, tmp_path):
    target = tmp_path / "kept.csv"
    target.write_text("precious\n")
    code, _, err = sql(capsys, built_workspace, "SELECT 1 AS x", "--out", str(target))
    assert_clean_error(code, err, "already exists", "--overwrite")
    assert target.read_text() == "precious\n"
    code, _, err = sql(
        capsys, built_workspace, "SELECT 1 AS x", "--out", str(target), "--overwrite"
    )
    assert code == 0, err
    assert target.read_text() == "x\n1\n"


def test_a_failed_export_leaves_no_file(capsys, built_workspace, tmp_path, monkeypatch):
    import meshsim.export

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(meshsim.export, "_write_parquet", broken)
    target = tmp_path / "r.parquet"
    code, _, err = sql(capsys, built_workspace, ORDERS, "--out", str(target))
    assert_clean_error(code, err, "could not be written", "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_a_long_export_shows_progress(built_workspace: Path, tmp_path: Path):
    from meshsim.export import PROGRESS_ROWS, write_result

    advanced: list[float] = []

    class Recording:
        def progress(self, description: str, total: float):
            from contextlib import contextmanager

            @contextmanager
            def bar():
                class Bar:
                    def advance(self, step: float = 1, description: str | None = None) -> None:
                        advanced.append(step)

                yield Bar()

            return bar()

    with Mesh.open(built_workspace, limits=None) as mesh:
        result = mesh.sql("eu_marketing_analyst", f"SELECT range AS n FROM range({PROGRESS_ROWS})")
    write_result(result.arrow(), tmp_path / "n.csv", console=Recording())  # type: ignore[arg-type]
    assert sum(advanced) == PROGRESS_ROWS and len(advanced) > 1


def test_a_query_that_opens_with_a_comment_runs(capsys, built_workspace: Path):
    code, out, err = sql(
        capsys, built_workspace, "-- orders per status\nSELECT 42 AS answer", "--format", "csv"
    )
    assert code == 0, err
    assert out == "answer\n42\n"
    code, out, err = sql(capsys, built_workspace, "--format", "csv", "-- first\nSELECT 1 AS a")
    assert code == 0 and out == "a\n1\n", err


def test_f_runs_every_statement_of_a_file(capsys, built_workspace: Path, tmp_path: Path):
    script = tmp_path / "report.sql"
    script.write_text("-- two answers\nSELECT 1 AS a;\n\nSELECT 'x;y' AS b; -- the end\n")
    code, out, err = sql(capsys, built_workspace, "-f", str(script), "--format", "csv")
    assert code == 0, err
    assert out == "a\n1\nb\nx;y\n"


@pytest.mark.parametrize("text", ["", "\n  \n", "-- nothing here\n/* or here */;\n"])
def test_f_refuses_a_file_without_a_statement(capsys, built_workspace, tmp_path, text: str):
    script = tmp_path / "empty.sql"
    script.write_text(text)
    code, _, err = sql(capsys, built_workspace, "-f", str(script))
    assert_clean_error(code, err, "holds no SQL statement", str(script))


def test_f_with_out_needs_one_statement_and_f_excludes_a_query(capsys, built_workspace, tmp_path):
    script = tmp_path / "two.sql"
    script.write_text("SELECT 1; SELECT 2;")
    code, _, err = sql(capsys, built_workspace, "-f", str(script), "--out", str(tmp_path / "x.csv"))
    assert_clean_error(code, err, "holds 2 statements")
    code, _, err = sql(capsys, built_workspace, "SELECT 1", "-f", str(script))
    assert_clean_error(code, err, "not both")


def test_f_runs_statements_in_order_and_stops_at_the_first_refusal(capsys, workspace, tmp_path):
    # a copy of the workspace: the refusal is audited, and the shared one must stay clean
    script = tmp_path / "mixed.sql"
    script.write_text("SELECT 1 AS a; SELECT c_acctbal FROM customer.customer; SELECT 3 AS c;")
    started = time.perf_counter()
    code, out, err = sql(capsys, workspace, "-f", str(script), "--format", "csv")
    assert_clean_error(code, err, "c_acctbal")
    assert out == "a\n1\n"
    assert time.perf_counter() - started < 30
