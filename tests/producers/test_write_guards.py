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
