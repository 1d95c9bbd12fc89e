"""CSV, Parquet and JSON sources: loaded into the domain's Delta table, checked against the
declared columns (every mismatch at once, file:line), rebuilt only when the files change."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from meshsim.errors import SpecError
from meshsim.mesh import Mesh
from tests.sources.conftest import add_product, col, errors, warnings

PEOPLE = "id,name,born,score\n1,ann,2001-02-03,1.5\n2,bob,1999-12-31,\n3,cy,2010-06-07,3.25\n"
COLUMNS = "\n".join(
    [
        col("id", "bigint", ", nullable: false"),
        col("name", "varchar"),
        col("born", "date"),
        col("score", "decimal(6,2)"),
    ]
)


def _grant_admin_rows(ws: Path, mesh_dir: Path, sql: str) -> list[tuple]:
    with Mesh.open(ws, mesh_dir=mesh_dir) as mesh:
        return mesh.sql("governance_admin", sql).fetchall()


def test_csv_file_is_loaded_with_declared_types(mesh_dir: Path, tmp_path: Path):
    data = tmp_path / "people.csv"
    data.write_text(PEOPLE)
    add_product(mesh_dir, "hr", "people", f"{{csv: '{data}'}}", COLUMNS)
    assert errors(mesh_dir) == []
    Mesh.build(mesh_dir, tmp_path / "ws").close()
    rows = _grant_admin_rows(
        tmp_path / "ws", mesh_dir, "SELECT id, born, score FROM hr.people ORDER BY id"
    )
    assert [(r[0], str(r[1]), None if r[2] is None else str(r[2])) for r in rows] == [
        (1, "2001-02-03", "1.50"),
        (2, "1999-12-31", None),
        (3, "2010-06-07", "3.25"),
    ]


def test_csv_reader_options_are_duckdbs(mesh_dir: Path, tmp_path: Path):
    data = tmp_path / "people.csv"
    data.write_text("# exported\nid;name;born;score\n1;ann;03/02/2001;1,5\n")
    source = (
        f"{{csv: '{data}', delim: ';', comment: '#', dateformat: '%d/%m/%Y', "
        f"decimal_separator: ','}}"
    )
    add_product(mesh_dir, "hr", "people", source, COLUMNS)
    assert errors(mesh_dir) == []
    Mesh.build(mesh_dir, tmp_path / "ws").close()
    rows = _grant_admin_rows(tmp_path / "ws", mesh_dir, "SELECT born, score FROM hr.people")
    assert [(str(a), str(b)) for a, b in rows] == [("2001-02-03", "1.50")]


def test_unknown_reader_option_is_refused_with_its_line(mesh_dir: Path, tmp_path: Path):
    file = add_product(mesh_dir, "hr", "people", "{csv: x.csv, delimiter: ';'}", COLUMNS)
    with pytest.raises(SpecError) as raised:
        errors(mesh_dir)
    assert f"{file}:7: tables[0].source.delimiter: unknown key 'delimiter'" in str(raised.value)


def test_every_type_mismatch_is_reported_at_once(mesh_dir: Path, tmp_path: Path):
    data = tmp_path / "people.csv"
    data.write_text("id,name,born,score\n1,ann,2001-02-03,1.5\nx,bob,yesterday,2\n")
    file = add_product(mesh_dir, "hr", "people", f"{{csv: '{data}'}}", COLUMNS)
    found = errors(mesh_dir)
    assert len(found) == 2, found
    assert found[0].startswith(f"{file}:9: error: table 'hr.people': column 'id' declared bigint")
    assert 'line 3: could not convert string "x" to' in found[0]
    assert found[1].startswith(f"{file}:11: error: table 'hr.people': column 'born' declared date")


def test_missing_declared_columns_are_all_named(mesh_dir: Path, tmp_path: Path):
    data = tmp_path / "people.csv"
    data.write_text("id,name\n1,ann\n")
    file = add_product(mesh_dir, "hr", "people", f"{{csv: '{data}'}}", COLUMNS)
    found = errors(mesh_dir)
    assert [f.split(": error: ")[0] for f in found] == [f"{file}:11", f"{file}:12"]
    assert (
        "column 'born' is not in" in found[0]
        and "(its columns: id bigint, name varchar)" in found[0]
    )


def test_undeclared_file_columns_are_a_warning(mesh_dir: Path, tmp_path: Path):
    data = tmp_path / "people.csv"
    data.write_text(PEOPLE)
    add_product(mesh_dir, "hr", "people", f"{{csv: '{data}'}}", col("id", "bigint"))
    assert errors(mesh_dir) == []
    assert any(
        "columns name, born, score of" in w and "not loaded" in w for w in warnings(mesh_dir)
    )


def test_nulls_in_a_not_nullable_column(mesh_dir: Path, tmp_path: Path):
    data = tmp_path / "people.csv"
    data.write_text("id,name,born,score\n,ann,2001-02-03,1\n")
    add_product(mesh_dir, "hr", "people", f"{{csv: '{data}'}}", COLUMNS)
    (found,) = errors(mesh_dir)
    assert "column 'id' is declared nullable: false but has 1 NULL value(s)" in found


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "holds no file"),
        (lambda p: p.write_text(PEOPLE + "4,dee,2001-01-01,1,ragged\n"), "Error when sniffing"),
        (lambda p: p.write_bytes(b"\xff\xfe\x00garbage,\x00\n\x01"), "Error"),
        (lambda p: os.mkfifo(p), "is not a regular file"),  # read, it would block the build
    ],
    ids=["missing", "empty-folder", "malformed", "binary", "fifo"],
)
def test_bad_files_give_one_clear_error(mesh_dir: Path, tmp_path: Path, make, why):
    data = tmp_path / "people.csv"
    make(data)
    file = add_product(mesh_dir, "hr", "people", f"{{csv: '{data}', delim: ','}}", COLUMNS)
    found = errors(mesh_dir)
    assert len(found) == 1, found
    assert found[0].startswith(f"{file}:7: error: table 'hr.people': source.csv")
    assert why in found[0]


def test_unreadable_file(mesh_dir: Path, tmp_path: Path):
    """Run as an unprivileged user: root reads any file whatever its mode."""
    import subprocess

    from tests.workspace.test_unreadable_files import NOBODY, run_as_nobody

    data = mesh_dir / "people.csv"
    data.write_text(PEOPLE)
    file = add_product(mesh_dir, "hr", "people", "{csv: people.csv}", COLUMNS)
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(mesh_dir)], check=True)
        for parent in mesh_dir.parents:
            if parent == Path("/"):
                break
            parent.chmod(parent.stat().st_mode | 0o005)
    data.chmod(0)
    result = run_as_nobody(tmp_path / "ws", "validate", "--mesh", str(mesh_dir))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    (found,) = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert found.startswith(f"{file}:7: error: table 'hr.people': source.csv '{data}'")
    assert "permission denied" in found.lower(), found


def test_build_refuses_bad_files_before_writing(mesh_dir: Path, tmp_path: Path):
    add_product(mesh_dir, "hr", "people", "{csv: nowhere/*.csv}", COLUMNS)
    with pytest.raises(SpecError, match="matches no file"):
        Mesh.build(mesh_dir, tmp_path / "ws")
    assert not (tmp_path / "ws" / "accounts").exists()


def test_folder_and_glob_of_csv_files(mesh_dir: Path, tmp_path: Path):
    Mesh.new_domain("hr", mesh_dir=mesh_dir)
    folder = mesh_dir / "hr" / "data"
    folder.mkdir()
    (folder / "a.csv").write_text("id,name,born,score\n1,ann,2001-02-03,1\n")
    (folder / "b.csv").write_text("id,name,born,score\n2,bob,2001-02-04,2\n")
    (folder / ".hidden.csv").write_text("id,name,born,score\n9,eve,2001-02-04,2\n")
    add_product(mesh_dir, "hr", "people", "{csv: hr/data}", COLUMNS)
    add_product(mesh_dir, "hr", "some", "{csv: 'hr/data/b*.csv'}", COLUMNS)
    Mesh.build(mesh_dir, tmp_path / "ws").close()
    assert _grant_admin_rows(tmp_path / "ws", mesh_dir, "SELECT id FROM hr.people ORDER BY 1") == [
        (1,),
        (2,),
    ]
    assert _grant_admin_rows(tmp_path / "ws", mesh_dir, "SELECT id FROM hr.some") == [(2,)]


def test_parquet_types_must_be_held_by_the_declared_ones(mesh_dir: Path, tmp_path: Path):
    data = tmp_path / "people.parquet"
    pq.write_table(pa.table({"id": pa.array([1, 2], pa.int64()), "name": ["a", "b"]}), data)
    file = add_product(
        mesh_dir,
        "hr",
        "people",
        f"{{parquet: '{data}'}}",
        col("id", "integer") + "\n" + col("name", "varchar"),
    )
    (found,) = errors(mesh_dir)
    assert found.startswith(f"{file}:9: error: table 'hr.people': column 'id' is declared integer")
    assert "declare bigint" in found
    file.write_text(file.read_text().replace("type: 'integer'", "type: 'bigint'"))
    Mesh.build(mesh_dir, tmp_path / "ws").close()
    assert _grant_admin_rows(tmp_path / "ws", mesh_dir, "SELECT sum(id) FROM hr.people") == [(3,)]


def test_a_file_that_is_not_parquet(mesh_dir: Path, tmp_path: Path):
    data = tmp_path / "people.parquet"
    data.write_text("not parquet at all")
    add_product(mesh_dir, "hr", "people", f"{{parquet: '{data}'}}", col("id", "bigint"))
    (found,) = errors(mesh_dir)
    assert "source.parquet" in found and "people.parquet" in found


@pytest.mark.parametrize(
    ("text", "options"),
    [
        ('{"id": 1, "born": "2001-02-03"}\n{"id": 2, "born": null}\n', ""),
        ('[{"id": 1, "born": "2001-02-03"}, {"id": 2}]', ", format: array"),
    ],
    ids=["newline-delimited", "array"],
)
def test_json_sources(mesh_dir: Path, tmp_path: Path, text: str, options: str):
    data = tmp_path / "people.json"
    data.write_text(text)
    columns = col("id", "bigint") + "\n" + col("born", "date")
    add_product(mesh_dir, "hr", "people", f"{{json: '{data}'{options}}}", columns)
    assert errors(mesh_dir) == []
    Mesh.build(mesh_dir, tmp_path / "ws").close()
    rows = _grant_admin_rows(
        tmp_path / "ws", mesh_dir, "SELECT id, born FROM hr.people ORDER BY id"
    )
    assert [(a, None if b is None else str(b)) for a, b in rows] == [(1, "2001-02-03"), (2, None)]


def test_json_type_mismatch(mesh_dir: Path, tmp_path: Path):
    data = tmp_path / "people.json"
    data.write_text('{"id": "one", "born": "2001-02-03"}\n')
    file = add_product(
        mesh_dir,
        "hr",
        "people",
        f"{{json: '{data}'}}",
        col("id", "bigint") + "\n" + col("born", "date"),
    )
    (found,) = errors(mesh_dir)
    assert found.startswith(f"{file}:9: error: table 'hr.people': column 'id' declared bigint")


def test_rebuild_skips_unchanged_files_and_reloads_changed_ones(mesh_dir: Path, tmp_path: Path):
    data = tmp_path / "people.csv"
    data.write_text(PEOPLE)
    add_product(mesh_dir, "hr", "people", f"{{csv: '{data}'}}", COLUMNS)
    ws = tmp_path / "ws"

    def action() -> tuple[str, int]:
        with Mesh.build(mesh_dir, ws) as mesh:
            assert mesh.last_build is not None
            built = {t.ref: t for t in mesh.last_build.tables}["hr.people"]
            return built.action, built.version

    assert action() == ("written", 0)
    assert action() == ("unchanged", 0)
    data.write_text(PEOPLE + "4,dee,2000-01-01,4\n")
    assert action() == ("written", 1)
    assert _grant_admin_rows(ws, mesh_dir, "SELECT count(*) FROM hr.people") == [(4,)]
    assert action() == ("unchanged", 1)


def test_no_row_is_skipped_unless_the_source_says_so(mesh_dir: Path, tmp_path: Path):
    """DuckDB's sniffer, left to detect rows to skip, dropped this file's first line and
    loaded the rest without a word."""
    data = tmp_path / "people.csv"
    data.write_text("a,b\n" + PEOPLE)
    file = add_product(mesh_dir, "hr", "people", f"{{csv: '{data}'}}", COLUMNS)
    found = errors(mesh_dir)
    assert found and all("column" in f and "is not in" in f for f in found), found
    file.write_text(file.read_text().replace(f"{{csv: '{data}'}}", f"{{csv: '{data}', skip: 1}}"))
    assert errors(mesh_dir) == []


def test_csv_without_a_header_names_its_columns(mesh_dir: Path, tmp_path: Path):
    data = tmp_path / "people.csv"
    data.write_text(PEOPLE.split("\n", 1)[1])
    source = f"{{csv: '{data}', header: false, names: [id, name, born, score]}}"
    add_product(mesh_dir, "hr", "people", source, COLUMNS)
    assert errors(mesh_dir) == []
    Mesh.build(mesh_dir, tmp_path / "ws").close()
    assert _grant_admin_rows(tmp_path / "ws", mesh_dir, "SELECT count(*) FROM hr.people") == [(3,)]


def test_a_producers_write_from_csv_drops_no_line(workspace: Path, tmp_path: Path):
    """The same reader serves 'meshsim write --from': a stray first line is an error there
    too, not a line DuckDB's sniffer drops."""
    from meshsim.errors import WriteError

    source = tmp_path / "r.csv"
    source.write_text("exported today\nr_regionkey,r_name,r_comment\n5,ANTARCTICA,cold\n")
    with Mesh.open(workspace) as mesh:
        with pytest.raises(WriteError, match="is missing"):
            mesh.write("customer.region", source, mode="append")
        assert mesh.sql("governance_admin", "SELECT count(*) FROM customer.region").fetchall() == [
            (5,)
        ]
