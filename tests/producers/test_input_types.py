"""A producer's CSV and JSON files are read with the declared column types (review of issue
10, finding 3): text stays text as written, decimals are exact, dates are ISO unless a format
is given; nothing is inferred and then cast."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from meshsim.errors import WriteError
from meshsim.mesh import Mesh

ORDERS = "sales.orders"
HEADER = (
    "o_orderkey,o_custkey,o_orderstatus,o_totalprice,o_orderdate,o_orderpriority,o_clerk,"
    "o_shippriority,o_comment\n"
)
ROWS = "SELECT o_orderpriority, o_totalprice, o_clerk, o_comment FROM sales.orders WHERE o_orderkey > 9000000 ORDER BY o_orderkey"


def _orders(mesh: Mesh) -> list[tuple]:
    return mesh.sql("governance_admin", ROWS).fetchall()


def test_csv_values_are_stored_as_written(workspace, tmp_path: Path):
    source = tmp_path / "o.csv"
    source.write_text(
        HEADER
        + "9000001,1,O,1.15,2026-01-02,1.50,0012,0,1e3\n"
        + "9000002,1,O,100,2026-01-03,1-URGENT,12:30:00,0,x\n"
    )
    mesh = Mesh.open(workspace)
    mesh.write(ORDERS, source, mode="append", by="sales-ops")
    assert _orders(mesh) == [
        ("1.50", Decimal("1.15"), "0012", "1e3"),
        ("1-URGENT", Decimal("100.00"), "12:30:00", "x"),
    ]


def test_json_values_are_read_as_declared(workspace, tmp_path: Path):
    source = tmp_path / "o.ndjson"
    source.write_text(
        '{"o_orderkey": 9000003, "o_custkey": 1, "o_orderstatus": "O", "o_totalprice": 1.15,'
        ' "o_orderdate": "2026-01-02", "o_orderpriority": "0012", "o_clerk": "c",'
        ' "o_shippriority": 0, "o_comment": "1.50"}\n'
    )
    mesh = Mesh.open(workspace)
    mesh.write(ORDERS, source, mode="append", by="sales-ops")
    assert _orders(mesh) == [("0012", Decimal("1.15"), "c", "1.50")]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("9000004,1,O,1.155,2026-01-02,1,c,0,x\n", "o_totalprice"),
        ("9000005,1,O,1.15,01/02/2026,1,c,0,x\n", "01/02/2026"),
    ],
)
def test_inexact_decimals_and_non_iso_dates_are_refused(workspace, tmp_path, row, message):
    source = tmp_path / "o.csv"
    source.write_text(HEADER + row)
    mesh = Mesh.open(workspace)
    with pytest.raises(WriteError, match=message):
        mesh.write(ORDERS, source, mode="append", by="sales-ops")
    assert _orders(mesh) == []


def test_a_date_format_reads_other_dates(workspace, tmp_path):
    source = tmp_path / "o.csv"
    source.write_text(HEADER + "9000006,1,O,1.15,01/02/2026,1,c,0,x\n")
    mesh = Mesh.open(workspace)
    mesh.write(ORDERS, source, mode="append", by="sales-ops", dateformat="%m/%d/%Y")
    query = "SELECT o_orderdate FROM sales.orders WHERE o_orderkey = 9000006"
    assert str(mesh.sql("governance_admin", query).fetchall()[0][0]) == "2026-01-02"


def test_a_json_number_for_a_text_column_is_refused(workspace, tmp_path: Path):
    """A JSON number in a varchar column was stored as DuckDB printed it (1.50 as '1.5', 1e3
    as '1000.0') without a word (second review of issue 10): nothing is changed silently."""
    source = tmp_path / "o.ndjson"
    source.write_text(
        '{"o_orderkey": 9000006, "o_custkey": 1, "o_orderstatus": "O", "o_totalprice": 1.15,'
        ' "o_orderdate": "2026-01-02", "o_orderpriority": "1", "o_clerk": 1.50,'
        ' "o_shippriority": 0, "o_comment": "x"}\n'
    )
    mesh = Mesh.open(workspace)
    with pytest.raises(WriteError, match=r"o_clerk.*JSON .*not a string"):
        mesh.write(ORDERS, source, mode="append", by="sales-ops")
    assert _orders(mesh) == []
