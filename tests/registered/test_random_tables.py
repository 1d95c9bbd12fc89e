"""Property: for random Delta tables written by deltalake (random schemas of nested types
and odd column names, with or without column mapping, several appends), meshsim's governed
read of a table registered in place equals deltalake's own read; as a consumer with one
column nullified and one not granted, it equals that read with the policy applied by hand."""

from __future__ import annotations

import random
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshsim.mesh import Mesh
from meshsim.spec.types import to_arrow

NAMES = ["id", "ByteType", "3d_int_list", "Super Name", "a.b", 'quote"d', "ünï", "x-y", "select"]
LEAVES = ["boolean", "tinyint", "integer", "bigint", "double", "varchar", "date", "decimal(9,2)"]


def spec_types() -> st.SearchStrategy[str]:
    leaf = st.sampled_from(LEAVES)
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            inner.map(lambda t: f"array<{t}>"),
            st.tuples(st.sampled_from(["varchar", "integer"]), inner).map(
                lambda kv: f"map<{kv[0]}, {kv[1]}>"
            ),
            st.lists(inner, min_size=1, max_size=3).map(
                lambda ts: "struct<" + ", ".join(f"`F {i}`: {t}" for i, t in enumerate(ts)) + ">"
            ),
        ),
        max_leaves=4,
    )


def value(dtype: pa.DataType, rng: random.Random) -> Any:
    if rng.random() < 0.2:
        return None
    if pa.types.is_struct(dtype):
        return {
            dtype.field(i).name: value(dtype.field(i).type, rng) for i in range(dtype.num_fields)
        }
    if pa.types.is_map(dtype):
        keys = {value(dtype.key_type, rng) for _ in range(rng.randint(0, 3))} - {None}
        return [(k, value(dtype.item_type, rng)) for k in sorted(keys)]
    if pa.types.is_list(dtype):
        return [value(dtype.value_type, rng) for _ in range(rng.randint(0, 3))]
    if pa.types.is_boolean(dtype):
        return rng.random() < 0.5
    if pa.types.is_integer(dtype):
        return rng.randint(-100, 100)
    if pa.types.is_floating(dtype):
        return rng.choice([0.5, -1.25, 1e10])
    if pa.types.is_decimal(dtype):
        return Decimal(rng.randint(-99999, 99999)).scaleb(-2)
    if pa.types.is_date(dtype):
        import datetime

        return datetime.date(2000, 1, 1) + datetime.timedelta(days=rng.randint(0, 9000))
    return rng.choice(["", "a", "Ünï", "x y"])


def make_mesh(root: Path, columns: list[tuple[str, str]]) -> Path:
    lake = root / "mesh"
    (lake / "d" / "products").mkdir(parents=True)
    masked, hidden = columns[0][0], columns[-1][0]
    ref = 'd.t."' + "{}" + '"'

    def quoted(name: str) -> str:
        return "'" + ref.format(name.replace('"', '""')).replace("'", "''") + "'"

    (lake / "mesh.yaml").write_text(
        "name: mini\nconsumers:\n  - {name: admin, admin: true}\n  - {name: analyst}\n"
        "policies:\n  grants:\n    - {name: everything, consumers: [admin], all: true}\n"
        f"    - {{name: some, consumers: [analyst], tables: [d.t], "
        f"exclude_columns: [{quoted(hidden)}]}}\n"
        f"  masks:\n    - {{name: hide, consumers: [analyst], columns: [{quoted(masked)}], "
        f"function: nullify}}\n"
    )
    (lake / "d" / "domain.yaml").write_text("name: d\nowner_team: d-team\ndescription: D.\n")
    declared = "".join(
        f"      - {{name: '{n.replace(chr(39), chr(39) * 2)}', type: '{t}', "
        f"classification: internal, description: C.}}\n"
        for n, t in columns
    )
    (lake / "d" / "products" / "p.yaml").write_text(
        "name: p\nowner: o\ndescription: P.\nproduction: {method: external}\ntables:\n"
        f"  - name: t\n    description: T.\n    source: {{location: '{root / 't'}'}}\n"
        f"    columns:\n{declared}"
    )
    return lake


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    columns=st.lists(
        st.tuples(st.sampled_from(NAMES), spec_types()),
        min_size=2,
        max_size=5,
        unique_by=lambda c: c[0],
    ),
    seed=st.integers(0, 2**16),
    appends=st.integers(1, 3),
    column_mapping=st.booleans(),
)
def test_governed_reads_of_random_tables_equal_deltalake(
    tmp_path_factory, columns, seed, appends, column_mapping
):
    from deltalake import write_deltalake

    from meshsim.storage import delta

    root = tmp_path_factory.mktemp("random")
    rng = random.Random(seed)
    schema = pa.schema([(n, to_arrow(t)) for n, t in columns])
    # column mapping gives every struct field, at every level, a physical name
    configuration = {"delta.columnMapping.mode": "name"} if column_mapping else None
    for _ in range(appends):
        rows = [{f.name: value(f.type, rng) for f in schema} for _ in range(rng.randint(0, 6))]
        data = pa.Table.from_pylist(rows, schema=schema)
        write_deltalake(root / "t", data, mode="append", configuration=configuration)
    mesh = Mesh.build(make_mesh(root, columns), root / "ws", scale=0.01)
    try:
        # deltalake's QueryBuilder (to_pyarrow_table reads a column-mapped table as NULLs)
        expected = delta.read_table(root / "t", table="d.t").to_pylist()
        got = mesh.sql("admin", "SELECT * FROM d.t").arrow()
        assert got.column_names == schema.names
        assert sorted(got.to_pylist(), key=repr) == sorted(expected, key=repr)
        masked, hidden = columns[0][0], columns[-1][0]
        view = [{**{k: v for k, v in r.items() if k != hidden}, masked: None} for r in expected]
        analyst = mesh.sql("analyst", "SELECT * FROM d.t").arrow()
        assert analyst.column_names == schema.names[:-1]
        assert analyst.schema.types == got.schema.types[:-1]
        assert sorted(analyst.to_pylist(), key=repr) == sorted(view, key=repr)
    finally:
        mesh.close()
        shutil.rmtree(root, ignore_errors=True)


def test_an_undeclared_column_of_an_unreadable_type_does_not_stop_the_table(tmp_path):
    """Spark's ``void`` (Arrow null) has no spec type; undeclared, it is never visible, so
    the governed scan leaves it out instead of failing every query of the table."""
    from deltalake import write_deltalake

    data = pa.table({"id": pa.array([1, 2], pa.int64()), "v": pa.nulls(2), "note": ["a", "b"]})
    write_deltalake(tmp_path / "t", data)
    mesh = Mesh.build(
        make_mesh(tmp_path, [("id", "bigint"), ("note", "varchar")]), tmp_path / "ws", scale=0.01
    )
    try:
        assert mesh.sql("admin", "SELECT * FROM d.t ORDER BY id").fetchall() == [
            (1, "a"),
            (2, "b"),
        ]
        assert mesh.sql("analyst", "SELECT * FROM d.t ORDER BY id").fetchall() == [
            (None,),
            (None,),
        ]
    finally:
        mesh.close()
