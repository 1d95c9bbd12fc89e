"""A mesh that registers, in place, a Delta table another tool wrote with nested types:
``sales.events``, written here by deltalake itself (not through meshsim), with policies on
its nested columns for ``eu_marketing_analyst``.

The reference for every governed read is computed independently: deltalake reads the table,
and the policy is applied by hand in Python (:func:`analyst_view`).
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tests.conftest import EXAMPLE_MESH, edit

STRUCT = pa.struct([("a", pa.int32()), ("b", pa.string())])
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("s", STRUCT),
        ("l", pa.list_(pa.int32())),
        ("m", pa.map_(pa.string(), pa.int32())),
        ("deep", pa.list_(pa.struct([("x", pa.int64()), ("tags", pa.list_(pa.string()))]))),
        ("note", pa.string()),
        ("ByteType", pa.int8()),
        ("3d_int_list", pa.list_(pa.list_(pa.list_(pa.int32())))),
        ("Super Name", pa.string()),
        ("a.b", pa.int32()),
        ('quote"d', pa.string()),
        ("ünï", pa.string()),
        ("odd struct", pa.struct([("Field One", pa.int32())])),
    ]
)

COLUMNS = """\
      - {name: id, type: bigint, classification: internal, description: Event id.}
      - {name: s, type: "struct<a: int, b: string>", classification: internal, description: S.}
      - {name: l, type: "ARRAY<INT>", classification: internal, description: L.}
      - {name: m, type: "map<string,int>", classification: internal, description: M.}
      - {name: deep, type: "array<struct<x:long,tags:array<string>>>", classification: internal,
         description: Deep.}
      - {name: note, type: string, classification: internal, description: Note.}
      - {name: ByteType, type: byte, classification: internal, description: Odd.}
      - {name: 3d_int_list, type: "array<array<array<int>>>", classification: internal,
         description: Odd.}
      - {name: Super Name, type: string, classification: internal, description: Odd.}
      - {name: a.b, type: int, classification: internal, description: Odd.}
      - {name: 'quote"d', type: string, classification: internal, description: Odd.}
      - {name: ünï, type: string, classification: internal, description: Odd.}
      - {name: odd struct, type: "struct<`Field One`: int>", classification: internal,
         description: Odd.}
"""

GRANT = """\
    - name: marketing_events
      consumers: [eu_marketing_analyst]
      product: sales.events
      exclude_columns: [sales.events.a.b]
"""
MASKS = """\
    - name: events_struct_hidden
      consumers: [eu_marketing_analyst]
      columns: [sales.events.s]
      function: nullify
    - name: events_map_redacted
      consumers: [eu_marketing_analyst]
      columns: [sales.events.m]
      function: redact
    - name: events_names_redacted
      consumers: [eu_marketing_analyst]
      columns: ['sales.events."Super Name"', 'sales.events."quote""d"']
      function: redact
"""
ROW_FILTER = """\
    - name: even_events
      table: sales.events
      consumers: [eu_marketing_analyst]
      predicate: s.a % 2 = 0 OR len(l) > 2
    - name: odd_names_filter
      table: sales.events
      consumers: [eu_marketing_analyst]
      predicate: '"ByteType" <> 3 AND "odd struct"."Field One" IS DISTINCT FROM 7'
"""


def event_rows(seed: int = 11, count: int = 40) -> list[dict[str, Any]]:
    rng = random.Random(seed)

    def maybe(value: Any) -> Any:
        return None if rng.random() < 0.15 else value

    rows = []
    for i in range(count):
        rows.append(
            {
                "id": i,
                "s": maybe({"a": rng.randint(0, 50), "b": maybe(rng.choice(["x", "y", "é z"]))}),
                "l": maybe([rng.randint(-5, 5) for _ in range(rng.randint(0, 4))]),
                "m": maybe([(f"k{j}", rng.randint(0, 9)) for j in range(rng.randint(0, 3))]),
                "deep": maybe(
                    [
                        {"x": rng.randint(0, 10**12), "tags": maybe(["t"] * rng.randint(0, 2))}
                        for _ in range(rng.randint(0, 2))
                    ]
                ),
                "note": maybe(f"note {i}"),
                "ByteType": maybe(rng.randint(0, 5)),
                "3d_int_list": maybe([[[rng.randint(0, 9)] * rng.randint(0, 2)]]),
                "Super Name": maybe(rng.choice(["Ada", "Grace"])),
                "a.b": rng.randint(0, 99),
                'quote"d': maybe("q"),
                "ünï": maybe("ü"),
                "odd struct": maybe({"Field One": maybe(rng.randint(5, 8))}),
            }
        )
    return rows


def write_events(location: Path) -> None:
    from deltalake import write_deltalake

    rows = event_rows()
    write_deltalake(location, pa.Table.from_pylist(rows[:25], schema=SCHEMA))
    write_deltalake(location, pa.Table.from_pylist(rows[25:], schema=SCHEMA), mode="append")


def register(mesh_dir: Path, location: Path, columns: str = COLUMNS) -> Path:
    product = mesh_dir / "sales" / "products" / "events.yaml"
    product.write_text(
        "name: events\nowner: sales-ops\ndescription: Events another team writes.\n"
        "tags: {confidentiality: internal, channel: b2c}\n"
        "production: {method: external}\ntables:\n  - name: events\n"
        "    description: One row per event.\n"
        f"    source: {{location: '{location}'}}\n    columns:\n{columns}"
    )
    mesh = mesh_dir / "mesh.yaml"
    edit(mesh, "  tag_grants:\n", GRANT + "\n  tag_grants:\n")
    edit(mesh, "  masks:\n", "  masks:\n" + MASKS)
    edit(mesh, "  row_filters:\n", "  row_filters:\n" + ROW_FILTER)
    return product


def analyst_view(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The policy applied by hand: rows where ``s.a % 2 = 0 OR len(l) > 2`` and ``"ByteType"
    <> 3 AND "odd struct"."Field One" IS DISTINCT FROM 7`` (SQL three-valued logic: NULL is
    not true), ``s`` nullified, ``m`` redacted to NULL, the two odd string names redacted to
    '****', ``a.b`` not granted."""

    def visible(row: dict[str, Any]) -> bool:
        even = row["s"] is not None and row["s"]["a"] % 2 == 0
        long = row["l"] is not None and len(row["l"]) > 2
        byte = row["ByteType"] is not None and row["ByteType"] != 3
        field = (row["odd struct"] or {}).get("Field One")
        return (even or long) and byte and field != 7

    masked = {"s": None, "m": None, "Super Name": "****", 'quote"d': "****"}
    return [{k: v for k, v in {**r, **masked}.items() if k != "a.b"} for r in rows if visible(r)]


@pytest.fixture(scope="session")
def events_mesh(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(mesh folder, location of the registered table), before any build."""
    root = tmp_path_factory.mktemp("events")
    mesh_dir = root / "mesh"
    shutil.copytree(EXAMPLE_MESH, mesh_dir)
    location = root / "lake" / "events"
    write_events(location)
    register(mesh_dir, location)
    return mesh_dir, location


@pytest.fixture(scope="session")
def events_workspace(events_mesh: tuple[Path, Path], tmp_path_factory) -> Path:
    from meshsim.mesh import Mesh

    workspace = tmp_path_factory.mktemp("events-ws") / "ws"
    Mesh.build(events_mesh[0], workspace, scale=0.01).close()
    return workspace
