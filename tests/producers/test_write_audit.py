"""Every write attempt is audited with its writer, allowed or refused, as queries are (review
of issue 10, finding 7)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from meshsim.errors import WriteError
from meshsim.mesh import Mesh

REGION = "customer.region"


def _writes(mesh: Mesh) -> list[dict]:
    return [r for r in mesh.catalog.audit(limit=50) if r["kind"] == "write"]


def test_allowed_and_refused_writes_are_audited(workspace):
    mesh = Mesh.open(workspace)
    rows = pa.table({"r_regionkey": [5], "r_name": ["A"], "r_comment": ["x"]})
    mesh.write(REGION, rows, mode="append")
    with pytest.raises(WriteError):
        mesh.write(REGION, rows, mode="append", by="sales-ops")  # not an owner
    with pytest.raises(WriteError):
        mesh.delete(REGION, "TRUE")
    refused_delete, refused_write, allowed = _writes(mesh)[:3]
    assert (allowed["principal"], allowed["decision"], allowed["tables"]) == (
        "customer-data",
        "allowed",
        [REGION],
    )
    assert "append" in allowed["reason"] and "version 1" in allowed["reason"]
    assert (refused_write["principal"], refused_write["decision"]) == ("sales-ops", "refused")
    assert "may not write" in refused_write["reason"]
    assert (
        refused_delete["decision"] == "refused" and "names no column" in (refused_delete["reason"])
    )
    assert refused_delete["principal"] == "customer-data"  # the product's owner, by default
