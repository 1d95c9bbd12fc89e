"""meshsim never discards a commit it did not write (review of issue 10, finding 2): a table
registered in place (``source: {location: ...}``) is written by its owning engine, so meshsim's
writes and maintenance refuse it instead of restoring it to its pin."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from meshsim.cli import main
from meshsim.errors import WriteError
from meshsim.mesh import Mesh
from meshsim.storage import delta
from tests.conftest import EXAMPLE_MESH

RETURNS = "sales.returns"
PRODUCT = """name: returns
owner: sales-ops
description: Returns another team writes.
tags: {confidentiality: internal, channel: b2c}
production: {method: external}
tables:
  - name: returns
    description: One row per return.
    source: {location: 'LOCATION'}
    columns:
      - {name: r_id, type: bigint, classification: internal, description: Return.}
"""


def test_writes_and_maintenance_refuse_a_registered_table(tmp_path, capsys):
    location = tmp_path / "lake" / "returns"
    write_deltalake(location, pa.table({"r_id": pa.array([1, 2], pa.int64())}))
    mesh_dir = tmp_path / "mesh"
    shutil.copytree(EXAMPLE_MESH, mesh_dir)
    product = mesh_dir / "sales" / "products" / "returns.yaml"
    product.write_text(PRODUCT.replace("LOCATION", str(location)))
    workspace = tmp_path / "ws"
    mesh = Mesh.build(mesh_dir, workspace, scale=0.01)
    # the owning engine commits after the build: meshsim has not published it yet
    write_deltalake(location, pa.table({"r_id": pa.array([3], pa.int64())}), mode="append")
    rows = pa.table({"r_id": pa.array([4], pa.int64())})
    attempts = [
        lambda: mesh.write(RETURNS, rows, mode="append"),
        lambda: mesh.delete(RETURNS, "r_id = 1"),
        lambda: mesh.optimize(RETURNS),
        lambda: mesh.vacuum(RETURNS),
    ]
    for attempt in attempts:
        with pytest.raises(WriteError) as info:
            attempt()
        assert "registered" in info.value.message and "meshsim is not its writer" in (
            info.value.message
        )
        assert "meshsim build" in (info.value.hint or "")
    assert delta.latest_version(location, table=RETURNS) == 1  # the external commit is kept
    assert mesh.optimize() and delta.latest_version(location, table=RETURNS) == 1
    # doctor does not call the external commit an interrupted build or write
    code = main(["doctor", "--workspace", str(workspace)])
    out = capsys.readouterr().out
    assert code == 0, out
    line = next(x for x in out.splitlines() if RETURNS in x)
    assert "interrupted" not in line and "committed by another engine" in line
    # the next build publishes the owning engine's commit
    rebuilt = Mesh.build(mesh_dir, workspace, scale=0.01)
    assert rebuilt.sql("governance_admin", "SELECT count(*) FROM sales.returns").fetchall() == [
        (3,)
    ]
