"""End to end: tables another writer left (deletion vectors, id mapping, encoded partition
folders) registered in place read through ``meshsim build`` and ``meshsim sql``; a data file
named in the log that is gone is one clean error naming the table and the file."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from tests.cli.clihelpers import assert_clean_error, run
from tests.storage.corpus import HandTable, add, inline_vector, vector_file

SCHEMA = pa.schema([("promo_id", pa.int64()), ("promo_name", pa.string()), ("region", pa.string())])


def _promotions(root: Path) -> HandTable:
    """Three partitions (one with special characters), one file with a vector in a file (dense:
    read as bits), one with an inline vector (sparse: read as a list); 19 rows, 3 deleted."""
    table = HandTable(root, SCHEMA, partition_columns=["region"], column_mapping="id")
    root.mkdir(parents=True)

    def rows(ids: list[int], region: str) -> pa.Table:
        names = [f"promo {i}" for i in ids]
        return pa.table({"promo_id": ids, "promo_name": names, "region": [region] * len(ids)})

    (vector,) = vector_file(root, [[0, 2]], prefix="dv")
    table.commit(
        add(table.data_file(rows([1, 2, 3, 4], "eu"), {"region": "eu"}), vector),
        add(table.data_file(rows([5, 6, 7], "special p@#h"), {"region": "special p@#h"})),
        add(table.data_file(rows(list(range(8, 20)), "us"), {"region": "us"}), inline_vector([1])),
    )
    return table


def _register(mesh: Path, location: Path) -> None:
    (mesh / "sales" / "products" / "promotions.yaml").write_text(
        "name: promotions\nowner: sales-ops\ndescription: Promotions run by another team.\n"
        "production: {method: external}\ntables:\n  - name: promotions\n"
        f"    source: {{location: {location}}}\n    columns:\n"
        "      - {name: promo_id, type: bigint, classification: internal}\n"
        "      - {name: promo_name, type: varchar, classification: internal}\n"
        "      - {name: region, type: varchar, classification: internal}\n"
    )


def test_registered_table_with_deletion_vectors_reads_through_build_and_sql(
    mesh_copy, tmp_path, capsys
):
    external = tmp_path / "lake" / "promotions"
    _promotions(external)
    _register(mesh_copy, external)
    ws = str(tmp_path / "ws")
    code, out, err = run(
        capsys, "build", "--mesh", str(mesh_copy), "--workspace", ws, "--scale", "0.01"
    )
    assert code == 0, err

    def sql(query: str) -> list[dict]:
        code, out, err = run(
            capsys, "sql", "--workspace", ws, "--as", "governance_admin", "--format", "json", query
        )
        assert code == 0, err
        return json.loads(out)

    everything = sql("SELECT promo_id, promo_name, region FROM sales.promotions ORDER BY promo_id")
    assert [r["promo_id"] for r in everything] == [2, 4, 5, 6, 7, 8, *range(10, 20)]
    assert {r["region"] for r in everything} == {"eu", "special p@#h", "us"}
    assert sql("SELECT count(*) AS n FROM sales.promotions WHERE promo_id > 3") == [{"n": 15}]
    joined = sql(
        "SELECT p.promo_id FROM sales.promotions p JOIN sales.promotions q "
        "ON p.promo_id = q.promo_id WHERE p.region = 'special p@#h' ORDER BY 1"
    )
    assert [r["promo_id"] for r in joined] == [5, 6, 7]
    code, out, err = run(capsys, "tables", "--workspace", ws, "--format", "json")
    assert code == 0, err
    (row,) = [t for t in json.loads(out) if t.get("table", t.get("ref")) == "sales.promotions"]
    assert row["rows"] == 16

    # a data file named in the log disappears: both commands name the table and the file
    (gone,) = (external / "region=special%20p%40%23h").glob("*.parquet")
    gone.unlink()
    code, out, err = run(
        capsys,
        "sql",
        "--workspace",
        ws,
        "--as",
        "governance_admin",
        "SELECT * FROM sales.promotions",
    )
    assert_clean_error(code, err, "sales.promotions", gone.name, "is missing")
    assert "special" not in err  # the file's name only: its folder holds a partition value
    code, out, err = run(
        capsys, "build", "--mesh", str(mesh_copy), "--workspace", ws, "--scale", "0.01"
    )
    assert_clean_error(code, err, "sales.promotions", gone.name)


def test_only_storage_scans_may_unnest_or_number_rows():
    """The crosscheck accepts a deletion vector's filter in meshsim's own scans, and nowhere
    else: consumer SQL reaches DuckDB only through the skeleton check."""
    import duckdb
    import pytest

    from meshsim.errors import QueryError
    from meshsim.query import allowlist
    from meshsim.query.crosscheck import crosscheck

    con = duckdb.connect()
    sql = (
        "SELECT * FROM read_parquet(['/d/a.parquet'], hive_partitioning := FALSE, "
        "file_row_number := TRUE) WHERE NOT file_row_number IN (SELECT unnest(CAST('[1]' AS "
        "BIGINT[])))"
    )
    (doc,) = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    crosscheck(doc, ctes=frozenset(), files=frozenset({"/d/a.parquet"}), scan=True)
    if "unnest" not in allowlist.DUCKDB_FUNCTIONS:  # unless consumers may unnest anyway
        with pytest.raises(QueryError, match="function 'unnest'"):
            crosscheck(doc, ctes=frozenset(), files=frozenset({"/d/a.parquet"}))
