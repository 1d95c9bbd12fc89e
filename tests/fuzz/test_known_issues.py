"""Failures the fuzz suite found in the Python API, each kept as a regression test.

The CLI refused these values where it parses them; the facade and the catalog now refuse them
too (``meshsim/values.py``): each is a MeshsimError naming the value, not an OverflowError,
UnicodeEncodeError or a YAML reader error.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from meshsim.errors import MeshsimError
from tests.conftest import EXAMPLE_MESH


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory):
    from meshsim.mesh import Mesh

    workspace = tmp_path_factory.mktemp("known") / "ws"
    with Mesh.build(EXAMPLE_MESH, workspace, scale=0.01) as built:
        yield built


# --- spec loader (helper: spec) ----------------------------------------------------------------


def test_nul_byte_in_a_spec_file_is_a_spec_error(tmp_path: Path):
    from meshsim.errors import SpecError
    from meshsim.spec.loader import load_mesh

    copy = tmp_path / "mesh"
    shutil.copytree(EXAMPLE_MESH, copy)
    domain = copy / "customer" / "domain.yaml"
    domain.write_bytes(b"\x00" + domain.read_bytes())
    with pytest.raises(SpecError, match="domain.yaml"):
        load_mesh(copy)


# --- catalog (helper: workspace) ------------------------------------------------------------------


def test_expiry_at_the_end_of_time_is_a_catalog_error(mesh):
    with pytest.raises(MeshsimError, match="9999-12-31"):
        mesh.catalog.request(
            "external_partner", "customer.customer_profiles", "x", expires="9999-12-31"
        )


def test_request_id_beyond_64_bits_is_a_catalog_error(mesh):
    with pytest.raises(MeshsimError):
        mesh.catalog.approve(2**64, "governance_admin")


def test_search_limit_beyond_64_bits_is_an_error(mesh):
    with pytest.raises(MeshsimError, match="limit"):
        mesh.catalog.search("orders", limit=2**64)


def test_audit_limit_beyond_64_bits_is_an_error(mesh):
    with pytest.raises(MeshsimError, match="limit"):
        mesh.audit(as_consumer="governance_admin", limit=2**64)


def test_unpaired_surrogate_in_a_reason_is_a_catalog_error(mesh):
    with pytest.raises(MeshsimError, match="surrogate"):
        mesh.catalog.request("external_partner", "sales.order_history", "why \udcff")


def test_unpaired_surrogate_in_a_comment_is_a_catalog_error(mesh):
    made = mesh.catalog.request("finance_controller", "supply.supply_catalog", "planning")
    with pytest.raises(MeshsimError, match="surrogate"):
        mesh.catalog.approve(made.id, "governance_admin", comment="\ud800")


# --- facade and storage (the lead) ------------------------------------------------------------


def test_negative_history_limit_is_an_error(mesh):
    with pytest.raises(MeshsimError, match="limit"):
        mesh.history("sales.orders", limit=-1)


def test_history_limit_beyond_64_bits_is_an_error(mesh):
    with pytest.raises(MeshsimError, match="limit"):
        mesh.history("sales.orders", limit=2**64)
