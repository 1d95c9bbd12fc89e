"""A tiny synthetic mesh for query tests: the ``domains/`` spec over small Delta tables.

Values are deterministic. Canaries (strings containing ``CANARY``, numbers 999999.xx) sit in
rows that row filters hide from eu_marketing_analyst (customers outside EUROPE and their
orders) and in columns some consumers are denied (c_acctbal, s_acctbal), plus ``SECRETPII``
inside masked PII columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake

from meshsim.spec.loader import MeshSpec, load_mesh
from meshsim.spec.types import to_arrow

ROOT = Path(__file__).resolve().parents[2]
REGIONS = ["AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"]
EUROPE = 3
N_CUSTOMERS = 200
N_ORDERS = 300
MESH_KEY = b"test-mesh-key-0123456789abcdef!!"
CANARY = "CANARY"
SECRET = "SECRETPII"


def region_of_nation(n: int) -> int:
    return n % 5


def _rows(ref: str) -> list[dict]:
    rows: list[dict] = []
    if ref == "customer.region":
        rows = [
            {"r_regionkey": i, "r_name": name, "r_comment": f"region {i}"}
            for i, name in enumerate(REGIONS)
        ]
    elif ref == "customer.nation":
        rows = [
            {
                "n_nationkey": i,
                "n_name": f"NATION{i}",
                "n_regionkey": region_of_nation(i),
                "n_comment": f"nation {i}",
            }
            for i in range(25)
        ]
    elif ref == "customer.customer":
        for i in range(N_CUSTOMERS):
            nation = i % 25
            hidden = region_of_nation(nation) != EUROPE
            rows.append(
                {
                    "c_custkey": i,
                    "c_name": f"Customer#{i:05d}-{SECRET}",
                    "c_address": f"{i} Main St {SECRET}",
                    "c_nationkey": nation,
                    "c_phone": f"{10 + nation}-555-{1000 + i}" if i % 17 else None,
                    "c_acctbal": Decimal(f"999999.{i % 100:02d}"),
                    "c_mktsegment": ["BUILDING", "AUTOMOBILE", "MACHINERY"][i % 3],
                    "c_comment": f"{CANARY}_HIDDEN_CUSTOMER_{i}" if hidden else f"visible {i}",
                }
            )
    elif ref == "sales.orders":
        for i in range(N_ORDERS):
            cust = (i * 7) % N_CUSTOMERS
            hidden = region_of_nation(cust % 25) != EUROPE
            rows.append(
                {
                    "o_orderkey": i,
                    "o_custkey": cust,
                    "o_orderstatus": "FOP"[i % 3],
                    "o_totalprice": Decimal(f"{1000 + i}.50"),
                    "o_orderdate": date(1995, 1, 1) + timedelta(days=i),
                    "o_orderpriority": f"{1 + i % 5}-PRIO",
                    "o_clerk": f"Clerk#{i % 10}",
                    "o_shippriority": 0,
                    "o_comment": f"{CANARY}_HIDDEN_ORDER_{i}" if hidden else f"order {i}",
                }
            )
    elif ref == "sales.lineitem":
        for i in range(600):
            ship = date(1995, 1, 1) + timedelta(days=i)
            rows.append(
                {
                    "l_orderkey": i // 2,
                    "l_partkey": i % 50,
                    "l_suppkey": i % 10,
                    "l_linenumber": i % 2 + 1,
                    "l_quantity": Decimal(f"{1 + i % 50}.00"),
                    "l_extendedprice": Decimal(f"{100 + i}.25"),
                    "l_discount": Decimal("0.05"),
                    "l_tax": Decimal("0.08"),
                    "l_returnflag": "RAN"[i % 3],
                    "l_linestatus": "OF"[i % 2],
                    "l_shipdate": ship,
                    "l_commitdate": ship + timedelta(days=3),
                    "l_receiptdate": ship + timedelta(days=7),
                    "l_shipinstruct": "NONE",
                    "l_shipmode": ["AIR", "MAIL", "SHIP"][i % 3],
                    "l_comment": f"line {i}",
                }
            )
    elif ref == "supply.part":
        rows = [
            {
                "p_partkey": i,
                "p_name": f"part {i}",
                "p_mfgr": f"Manufacturer#{i % 5}",
                "p_brand": f"Brand#{i % 7}",
                "p_type": "STANDARD",
                "p_size": i % 30,
                "p_container": "BOX",
                "p_retailprice": Decimal(f"{900 + i}.00"),
                "p_comment": f"part comment {i}",
            }
            for i in range(50)
        ]
    elif ref == "supply.supplier":
        rows = [
            {
                "s_suppkey": i,
                "s_name": f"Supplier#{i}",
                "s_address": f"{SECRET} addr {i}",
                "s_nationkey": i % 25,
                "s_phone": f"{SECRET}-{i}",
                "s_acctbal": Decimal(f"999999.{i:02d}"),
                "s_comment": f"supplier {i}",
            }
            for i in range(10)
        ]
    elif ref == "supply.partsupp":
        rows = [
            {
                "ps_partkey": i % 50,
                "ps_suppkey": i % 10,
                "ps_availqty": 100 + i,
                "ps_supplycost": Decimal(f"{10 + i}.00"),
                "ps_comment": f"ps {i}",
            }
            for i in range(100)
        ]
    return rows


EXTRA_ORDERS = 10  # appended as version 1 of sales.orders


@dataclass
class MeshData:
    spec: MeshSpec
    root: Path

    def path(self, ref: str) -> str:
        domain, table = ref.split(".")
        return str(self.root / domain / table)

    def read(self, ref: str, version: int | None = None) -> pa.Table:
        """Independent reference: deltalake's own engine (not meshsim's DuckDB scan).

        Through the storage wrapper's QueryBuilder reader: deltalake's pyarrow reader must not
        share a process with QueryBuilder (it aborts at exit now and then)."""
        from meshsim.storage import delta

        return delta.read_table(self.path(ref), table=ref, version=version)


def arrow_schema(spec: MeshSpec, ref: str) -> pa.Schema:
    table = spec.table(ref)
    assert table is not None
    return pa.schema([pa.field(c.name, to_arrow(c.type)) for c in table.columns])


def build(root: Path) -> MeshData:
    spec = load_mesh(ROOT / "domains")
    data = MeshData(spec, root)
    for table in spec.tables():
        schema = arrow_schema(spec, table.ref)
        write_deltalake(data.path(table.ref), pa.Table.from_pylist(_rows(table.ref), schema))
    extra = []
    for i in range(N_ORDERS, N_ORDERS + EXTRA_ORDERS):
        extra.append(
            {
                "o_orderkey": i,
                "o_custkey": 3,
                "o_orderstatus": "O",
                "o_totalprice": Decimal("1.00"),
                "o_orderdate": date(1999, 1, 1),
                "o_orderpriority": "1-PRIO",
                "o_clerk": "Clerk#new",
                "o_shippriority": 0,
                "o_comment": f"new order {i}",
            }
        )
    write_deltalake(
        data.path("sales.orders"),
        pa.Table.from_pylist(extra, arrow_schema(spec, "sales.orders")),
        mode="append",
    )
    return data
