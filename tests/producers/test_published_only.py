"""Time travel reaches only versions that were published (review of issue 10, finding 1):
a refused batch's rolled-back commit and a killed build's commit were never shown to
consumers, so no ``AT (VERSION => n)`` or ``AT (TIMESTAMP => ...)`` may read them."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pytest

from meshsim.errors import StorageError, WriteError
from meshsim.mesh import Mesh
from meshsim.storage import delta

REGION = "customer.region"
FINANCE = "governance_admin"


def _region_rows(keys: list[int]) -> pa.Table:
    return pa.table(
        {
            "r_regionkey": keys,
            "r_name": [f"R{k}" for k in keys],
            "r_comment": ["x"] * len(keys),
        }
    )


def _travel(mesh: Mesh, clause: str) -> int:
    query = f"SELECT count(*) FROM customer.region AT ({clause})"
    return mesh.sql(FINANCE, query).fetchall()[0][0]


def test_a_refused_batch_leaves_no_version_time_travel_can_read(workspace):
    mesh = Mesh.open(workspace)
    with pytest.raises(WriteError) as info, mesh.writes(by="customer-data") as batch:
        batch.write(REGION, _region_rows([5, 6, 7]))
        batch.write("customer.nation", pa.table({"nope": [1]}))
    assert "nothing was published" in str(info.value) and "nothing was written" not in str(
        info.value
    )
    assert _travel(mesh, "VERSION => 0") == 5
    with pytest.raises(StorageError, match="version 1 of customer.region was never published"):
        _travel(mesh, "VERSION => 1")
    committed = delta.history(mesh.locate(REGION), table=REGION)
    refused = next(e for e in committed if e.version == 1)
    # a timestamp in the refused commit's lifetime reads what was published then: version 0
    assert _travel(mesh, f"TIMESTAMP => '{refused.timestamp.isoformat()}'") == 5
    states = {h.version: h.published for h in mesh.history(REGION)}
    assert states == {2: "current", 1: "never", 0: "earlier"}
    # the restored version was read by consumers: once superseded it is "earlier", never "never"
    mesh.write(REGION, _region_rows([8]), mode="append")
    states = {h.version: h.published for h in mesh.history(REGION)}
    assert states == {3: "current", 2: "earlier", 1: "never", 0: "earlier"}
    assert _travel(mesh, "VERSION => 2") == 5


def test_optimize_after_a_killed_write_keeps_its_commit_unreachable(workspace):
    mesh = Mesh.open(workspace)
    location = mesh.locate(REGION)
    delta.write(location, _region_rows([9]), mode="append", table=REGION)  # never published
    unpublished = next(e for e in delta.history(location, table=REGION) if e.version == 1)
    mesh.optimize(REGION)
    with pytest.raises(StorageError, match="never published"):
        _travel(mesh, "VERSION => 1")
    moment = (unpublished.timestamp + timedelta(milliseconds=1)).isoformat()
    assert _travel(mesh, f"TIMESTAMP => '{moment}'") == 5
    assert {h.version: h.published for h in mesh.history(REGION)}[1] == "never"


def test_build_keeps_the_workspace_scale_and_producer_writes(workspace, capsys):
    from meshsim.cli import main

    mesh = Mesh.open(workspace)
    mesh.write(REGION, _region_rows([5]), mode="append")
    code = main(["build", "--workspace", str(workspace)])  # no --scale: the workspace's 0.01
    err = capsys.readouterr().err
    assert code == 0, err
    rebuilt = Mesh.open(workspace)
    assert rebuilt.workspace.read_state().scale == 0.01
    assert _travel(rebuilt, "VERSION => 1") == 6  # the producer's write is still published
    assert "regenerates" not in err


def test_a_build_at_another_scale_says_it_discards_producer_writes(workspace, capsys):
    from meshsim.cli import main

    code = main(["build", "--workspace", str(workspace), "--scale", "0.02"])
    err = " ".join(capsys.readouterr().err.split())  # the terminal may wrap the warning
    assert code == 0, err
    assert "scale 0.02, not the workspace's 0.01" in err
    assert "regenerates the TPC-H tables" in err and "discards producer writes" in err
