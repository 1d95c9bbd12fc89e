"""Nested columns of column-mapped tables: struct fields have physical names (name mode) and
field ids (id mode) at every level, inside lists and maps too, and the scan maps them back to
the logical names. Every table has its expected rows written here; deltalake's own reader is
the second, independent reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from sqlglot import exp

from meshsim.storage import delta
from meshsim.storage.scan import scan_query
from meshsim.storage.snapshot import load_snapshot
from tests.storage.corpus import HandTable, add

POINT = pa.struct([("x", pa.int64()), ("y", pa.string())])
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("s", pa.struct([("a", pa.int32()), ("inner", pa.struct([("c", pa.string())]))])),
        ("points", pa.list_(POINT)),
        ("m", pa.map_(pa.string(), POINT)),
        (
            "deep",
            pa.struct(
                [
                    ("Field One", pa.list_(pa.struct([("tags", pa.map_(pa.string(), POINT))]))),
                    ("n", pa.int32()),
                ]
            ),
        ),
        ("flat", pa.list_(pa.int32())),
    ]
)

ROWS: list[dict[str, Any]] = [
    {
        "id": 1,
        "s": {"a": 1, "inner": {"c": "one"}},
        "points": [{"x": 1, "y": "p"}, None, {"x": 2, "y": None}],
        "m": [("k", {"x": 5, "y": "v"}), ("n", None)],
        "deep": {"Field One": [{"tags": [("t", {"x": 9, "y": "z"})]}, None], "n": 7},
        "flat": [1, 2],
    },
    {
        "id": 2,
        "s": {"a": None, "inner": None},
        "points": [],
        "m": [],
        "deep": {"Field One": None, "n": None},
        "flat": None,
    },
    {"id": 3, "s": None, "points": None, "m": None, "deep": None, "flat": []},
]


def as_python(row: dict[str, Any], schema: pa.Schema = SCHEMA) -> tuple[Any, ...]:
    """A row as DuckDB returns it (maps as dicts), in column order."""

    def convert(value: Any, dtype: pa.DataType) -> Any:
        if value is None:
            return None
        if pa.types.is_struct(dtype):
            return {f.name: convert(value.get(f.name), f.type) for f in dtype}
        if pa.types.is_list(dtype):
            return [convert(v, dtype.value_type) for v in value]
        if pa.types.is_map(dtype):
            return {k: convert(v, dtype.item_type) for k, v in value}
        return value

    return tuple(convert(row.get(f.name), f.type) for f in schema)


def expected(rows: list[dict[str, Any]], schema: pa.Schema = SCHEMA) -> list[tuple[Any, ...]]:
    return sorted((as_python(r, schema) for r in rows), key=repr)


def scanned(path: Path, columns: list[str] | None = None) -> duckdb.DuckDBPyRelation:
    snapshot = load_snapshot(path, table="t")
    return duckdb.connect().sql(scan_query(snapshot, columns).sql(dialect="duckdb"))


def reference(path: Path, schema: pa.Schema = SCHEMA) -> list[tuple[Any, ...]]:
    """deltalake's own read, as DuckDB would return it."""
    return expected(delta.read_table(path, table="t").to_pylist(), schema)


def write_name_mode(path: Path, rows: list[dict[str, Any]]) -> None:
    from deltalake import write_deltalake

    data = pa.Table.from_pylist(rows, schema=SCHEMA)
    write_deltalake(path, data, configuration={"delta.columnMapping.mode": "name"})


def test_name_mode_nested_columns_read_by_physical_names(tmp_path):
    path = tmp_path / "t"
    write_name_mode(path, ROWS)
    relation = scanned(path)
    assert relation.columns == SCHEMA.names
    assert sorted(relation.fetchall(), key=repr) == expected(ROWS) == reference(path)
    struct = relation.types[1]
    assert str(struct) == 'STRUCT(a INTEGER, "inner" STRUCT(c VARCHAR))'


def test_name_mode_single_nested_column_and_field_access(tmp_path):
    path = tmp_path / "t"
    write_name_mode(path, ROWS)
    scan = scan_query(load_snapshot(path, table="t"), ["m", "id"]).sql(dialect="duckdb")
    query = f"SELECT id, m['k'].x AS kx FROM ({scan}) ORDER BY id"
    assert duckdb.connect().sql(query).fetchall() == [(1, 5), (2, None), (3, None)]


def test_flat_filters_still_reach_parquet_next_to_a_mapped_nested_column(tmp_path):
    path = tmp_path / "t"
    write_name_mode(path, ROWS)
    scan = scan_query(load_snapshot(path, table="t")).subquery("s")
    query = exp.select("s").from_(scan).where(exp.column("id").eq(exp.Literal.number(3)))
    relation = duckdb.connect().sql(query.sql(dialect="duckdb"))
    plan = relation.explain()
    assert "Filters" in plan and "=3" in plan.replace(" ", "")
    assert relation.fetchall() == [(None,)]


def hand_table(root: Path, mode: str, schema: pa.Schema = SCHEMA) -> HandTable:
    table = HandTable(root, schema, column_mapping=mode, reader_features=[])
    table.root.mkdir()
    return table


@pytest.mark.parametrize("mode", ["name", "id"])
def test_hand_written_mapped_nested_columns_match_deltalake(tmp_path, mode):
    table = hand_table(tmp_path / "t", mode)
    table.commit(add(table.data_file(pa.Table.from_pylist(ROWS, schema=SCHEMA))))
    assert sorted(scanned(table.root).fetchall(), key=repr) == expected(ROWS)
    assert reference(table.root) == expected(ROWS)


def test_id_mode_maps_nested_fields_by_field_id_alone(tmp_path):
    """The file's nested fields have names the log does not know: only the ids match."""
    table = hand_table(tmp_path / "t", "id")
    data = pa.Table.from_pylist(ROWS, schema=SCHEMA)
    table.commit(add(table.data_file(data, rename_nested=True)))
    assert sorted(scanned(table.root).fetchall(), key=repr) == expected(ROWS)


def evolved_schema() -> pa.Schema:
    """SCHEMA with a field added inside ``s`` and inside the points' struct, and a new
    nested column."""
    point = pa.struct([("x", pa.int64()), ("y", pa.string()), ("z", pa.float64())])
    s = pa.struct(
        [("a", pa.int32()), ("inner", pa.struct([("c", pa.string())])), ("added", pa.string())]
    )
    fields = {f.name: f for f in SCHEMA}
    fields["s"] = pa.field("s", s)
    fields["points"] = pa.field("points", pa.list_(point))
    return pa.schema([*fields.values(), pa.field("later", pa.struct([("q", pa.int32())]))])


@pytest.mark.parametrize("mode", ["name", "id"])
def test_nested_fields_added_later_read_as_null_in_old_files(tmp_path, mode):
    table = hand_table(tmp_path / "t", mode)
    table.commit(add(table.data_file(pa.Table.from_pylist(ROWS[:2], schema=SCHEMA))))
    schema = evolved_schema()
    table.evolve(schema)
    new_row = {
        "id": 4,
        "s": {"a": 4, "inner": {"c": "four"}, "added": "new"},
        "points": [{"x": 4, "y": "q", "z": 0.5}],
        "m": [("k", {"x": 6, "y": None})],
        "deep": None,
        "flat": [4],
        "later": {"q": 44},
    }
    table.commit(add(table.data_file(pa.Table.from_pylist([new_row], schema=schema))))
    old = [
        {
            **r,
            "s": r["s"] and {**r["s"], "added": None},
            "points": r["points"] and [p and {**p, "z": None} for p in r["points"]],
            "later": None,
        }
        for r in ROWS[:2]
    ]
    assert sorted(scanned(table.root).fetchall(), key=repr) == expected([*old, new_row], schema)
    assert reference(table.root, schema) == expected([*old, new_row], schema)


def serialized(sql: str) -> str:
    (doc,) = duckdb.connect().execute("SELECT json_serialize_sql(?)", [sql]).fetchone() or ("",)
    return str(doc)


def test_crosscheck_allows_remap_struct_in_meshsim_scans_only(tmp_path):
    from meshsim.errors import QueryError
    from meshsim.query.crosscheck import crosscheck

    path = tmp_path / "t"
    write_name_mode(path, ROWS)
    snapshot = load_snapshot(path, table="t")
    sql = f"SELECT * FROM ({scan_query(snapshot).sql(dialect='duckdb')}) AS s"
    files = frozenset(f.path for f in snapshot.files)
    assert "REMAP_STRUCT" in sql
    crosscheck(serialized(sql), ctes=frozenset(), files=files, scan=True)
    with pytest.raises(QueryError, match="function 'remap_struct'"):
        crosscheck(serialized(sql), ctes=frozenset(), files=files)


@pytest.mark.parametrize(
    "mapping",
    [
        "{'a': s.b}",  # a computed source name
        "{'a': ROW('p', {'x': lower('y')})}",  # a function inside the mapping
        "{'a': 'p'}, NULL, NULL",  # not the four arguments
    ],
)
def test_crosscheck_refuses_remap_struct_with_a_computed_mapping(mapping):
    from meshsim.errors import QueryError
    from meshsim.query.crosscheck import crosscheck

    sql = f"SELECT remap_struct(s, NULL::STRUCT(a INT), {mapping}, NULL) FROM (SELECT 1 AS s)"
    with pytest.raises(QueryError, match="remap_struct with a mapping that is not constant"):
        crosscheck(serialized(sql), ctes=frozenset(), files=frozenset(), scan=True)


def test_crosscheck_refuses_struct_pack_outside_remap_struct_even_in_scans():
    from meshsim.errors import QueryError
    from meshsim.query.crosscheck import crosscheck

    with pytest.raises(QueryError, match="function 'struct_pack'"):
        crosscheck(
            serialized("SELECT {'a': 1} AS v"), ctes=frozenset(), files=frozenset(), scan=True
        )


def test_meshsim_writes_nested_columns_with_column_mapping_and_reads_them(tmp_path):
    path = tmp_path / "t"
    data = pa.Table.from_pylist(ROWS, schema=SCHEMA)
    delta.write(path, data, mode="create", column_mapping=True, table="t")
    assert delta.column_mapping_mode(path, table="t") == "name"
    assert sorted(scanned(path).fetchall(), key=repr) == expected(ROWS)


def test_id_mode_nested_field_without_an_id_is_refused_naming_it(tmp_path):
    from meshsim.errors import StorageError

    table = hand_table(tmp_path / "t", "id")
    table.commit(add(table.data_file(pa.Table.from_pylist(ROWS, schema=SCHEMA))))
    log = table.root / "_delta_log" / f"{0:020d}.json"
    missing = f'\\"delta.columnMapping.id\\": {table.field_id("s.inner.c")}, '
    assert missing in log.read_text()
    log.write_text(log.read_text().replace(missing, ""))
    with pytest.raises(StorageError, match=r"'s\.inner\.c' lacks the delta.columnMapping.id"):
        load_snapshot(table.root, table="t")


def test_a_struct_none_of_whose_fields_a_file_stores_reads_as_null(tmp_path):
    """Every field of ``s`` dropped and a new one added: the old file stores none of them."""
    table = hand_table(tmp_path / "t", "name")
    table.commit(add(table.data_file(pa.Table.from_pylist(ROWS, schema=SCHEMA))))
    fields = {f.name: f for f in SCHEMA}
    fields["s"] = pa.field("s", pa.struct([("fresh", pa.int32())]))
    table.evolve(pa.schema(list(fields.values())))
    table.commit()
    got = scanned(table.root, ["id", "s"]).fetchall()
    assert sorted(got) == [(1, None), (2, None), (3, None)]


def test_a_file_storing_a_nested_column_in_another_shape_is_refused_naming_it(tmp_path):
    import pyarrow.parquet as pq

    from meshsim.errors import StorageError

    table = hand_table(tmp_path / "t", "name")
    action = table.data_file(pa.Table.from_pylist(ROWS, schema=SCHEMA), name="odd.parquet")
    stored = pq.read_table(table.root / "odd.parquet")
    index = stored.schema.get_field_index("col-s")
    pq.write_table(
        stored.set_column(index, "col-s", pa.array([1, 2, 3])), table.root / "odd.parquet"
    )
    action["size"] = (table.root / "odd.parquet").stat().st_size
    table.commit(add(action))
    with pytest.raises(StorageError) as info:
        scanned(table.root)
    message = str(info.value)
    assert "'odd.parquet'" in message and "stores 's' as int64, not as a struct" in message
