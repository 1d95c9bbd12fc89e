"""Writes respect what the table declares and ask before removing everything (review of
issue 10, findings 5 and 6)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from meshsim.errors import WriteError
from meshsim.mesh import Mesh
from meshsim.storage import delta

REGION = "customer.region"


def _rows(keys: list[int]) -> pa.Table:
    return pa.table(
        {"r_regionkey": keys, "r_name": [f"R{k}" for k in keys], "r_comment": ["x"] * len(keys)}
    )


def _latest(mesh: Mesh) -> int:
    return delta.latest_version(mesh.locate(REGION), table=REGION)


def test_an_append_refuses_keys_already_in_the_table(workspace):
    mesh = Mesh.open(workspace)
    with pytest.raises(WriteError) as info:
        mesh.write(REGION, _rows([5, 0, 3]), mode="append")
    assert "2 row(s) have a primary key (r_regionkey) already in the table" in info.value.message
    assert "r_regionkey=0" in info.value.message and "r_regionkey=3" in info.value.message
    assert "--mode upsert" in (info.value.hint or "")
    assert _latest(mesh) == 0


@pytest.mark.parametrize("mode", ["append", "overwrite"])
def test_a_write_refuses_keys_repeated_in_its_input(workspace, mode):
    mesh = Mesh.open(workspace)
    with pytest.raises(WriteError, match=r"repeat a primary key .*r_regionkey=7"):
        mesh.write(REGION, _rows([7, 7, 8]), mode=mode)
    assert _latest(mesh) == 0


@pytest.mark.parametrize("where", ["TRUE", "1=1", "NOT FALSE", "(1 = 1) AND 2 > 1"])
def test_a_predicate_naming_no_column_is_refused(workspace, where):
    mesh = Mesh.open(workspace)
    with pytest.raises(WriteError, match="names no column of 'customer.region'"):
        mesh.delete(REGION, where)
    assert _latest(mesh) == 0


def test_deleting_every_row_needs_all_rows(workspace):
    mesh = Mesh.open(workspace)
    with pytest.raises(WriteError) as info:
        mesh.delete(REGION, "r_regionkey = 1 /* c */ OR 1=1")
    assert "would delete every row (5)" in info.value.message
    assert "--all-rows" in (info.value.hint or "")
    assert _latest(mesh) == 0
    assert mesh.delete(REGION, "r_regionkey < 2").detail["rows_deleted"] == 2
    result = mesh.delete(REGION, "r_regionkey >= 0", all_rows=True)
    assert (result.rows, result.detail["rows_deleted"]) == (0, 3)
    everything = mesh.delete(REGION, None, all_rows=True)
    assert everything.detail["rows_deleted"] == 0


def test_an_overwrite_with_no_rows_needs_all_rows(workspace):
    mesh = Mesh.open(workspace)
    empty = _rows([]).cast(
        pa.schema(
            [("r_regionkey", pa.int64()), ("r_name", pa.string()), ("r_comment", pa.string())]
        )
    )
    with pytest.raises(WriteError, match="would remove every row"):
        mesh.write(REGION, empty, mode="overwrite")
    assert _latest(mesh) == 0
    assert mesh.write(REGION, empty, mode="overwrite", all_rows=True).rows == 0


def test_the_cli_asks_for_all_rows_and_reports_rows_deleted(workspace, capsys):
    from meshsim.cli import main

    base = ["delete", "customer.region", "--workspace", str(workspace)]
    assert main([*base, "--where", "r_regionkey >= 0"]) == 1
    assert "--all-rows" in capsys.readouterr().err
    assert main([*base, "--where", "r_regionkey >= 0", "--all-rows", "--format", "json"]) == 0
    assert '"rows_deleted": 5' in capsys.readouterr().out
