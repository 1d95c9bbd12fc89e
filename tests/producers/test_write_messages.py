"""Each refused write says what is wrong in the user's own terms (review of issue 10,
finding 8)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from meshsim.errors import MeshsimError, WriteError
from meshsim.mesh import Mesh

ORDERS = "sales.orders"
HEADER = (
    "o_orderkey,o_custkey,o_orderstatus,o_totalprice,o_orderdate,o_orderpriority,o_clerk,"
    "o_shippriority,o_comment\n"
)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("o_orderdate < now()", "the function now()"),
        ("regexp_matches(o_comment, 'x')", "the function regexp_matches()"),
        ("len(list_filter([1], x -> x > 0)) > 0", "the function list_filter()"),
        ("EXISTS (SELECT 1)", "a subquery"),
        ("o_orderkey = 1e400", "1e400 is out of range"),
    ],
)
def test_refused_predicates_are_named_as_written(workspace, where, message):
    mesh = Mesh.open(workspace)
    with pytest.raises(WriteError) as info:
        mesh.delete(ORDERS, where, by="sales-ops")
    assert message in info.value.message, info.value.message
    assert "ANONYMOUS" not in info.value.message and "REGEXP_LIKE" not in info.value.message


def test_unusable_inputs_say_why(workspace, tmp_path: Path):
    mesh = Mesh.open(workspace)
    (tmp_path / "empty.csv").write_text("")
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    cases = {
        str(tmp_path / "empty.csv"): "is empty",
        "/dev/null": "is not a regular file or a folder",
        str(fifo): "is not a regular file or a folder",
        "": "no input named",
    }
    for source, message in cases.items():
        with pytest.raises(WriteError) as info:
            mesh.write(ORDERS, source, by="sales-ops")
        assert message in info.value.message, (source, info.value.message)


def test_a_folder_with_different_headers_names_the_files(workspace, tmp_path: Path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.csv").write_text(HEADER + "9000001,1,O,1.15,2026-01-02,1,c,0,x\n")
    (folder / "b.csv").write_text("o_orderkey,other\n9000002,1\n")
    with pytest.raises(WriteError) as info:
        Mesh.open(workspace).write(ORDERS, folder, by="sales-ops")
    assert "b.csv" in info.value.message and "a.csv" in info.value.message
    assert "columns differ" in info.value.message


def test_a_folder_with_subfolders_says_they_are_not_read(workspace, tmp_path: Path):
    folder = tmp_path / "in"
    (folder / "more").mkdir(parents=True)
    (folder / "a.csv").write_text(HEADER + "9000001,1,O,1.15,2026-01-02,1,c,0,x\n")
    (folder / "more" / "b.csv").write_text(HEADER + "9000002,1,O,1.15,2026-01-02,1,c,0,x\n")
    with pytest.raises(WriteError, match="subfolder.*'more'.*not read"):
        Mesh.open(workspace).write(ORDERS, folder, by="sales-ops")


def test_a_negative_version_is_named_as_such(workspace):
    mesh = Mesh.open(workspace)
    with pytest.raises(MeshsimError) as info:
        mesh.sql("governance_admin", "SELECT count(*) FROM sales.orders AT (VERSION => -1)")
    assert "versions are 0 or more" in info.value.message and "-1" in info.value.message
