"""A cached plan (the engine's in memory, the workspace's plan store) is served only when a
fresh plan would be: a product withheld since the plan was cached (:mod:`meshsim.contracts.
live`) is refused from either cache, and the serving gate is asked once per table and
attempt, not once per rule."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from meshsim.contracts.live import WithheldProductError
from meshsim.mesh import Mesh
from tests.conftest import edit

COUNT = "SELECT count(*) FROM shop.orders"


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Path, Path]:
    """The minimal mesh (meshsim init), built and published."""
    mesh_dir = Mesh.init(tmp_path / "mesh")
    workspace = tmp_path / "ws"
    Mesh.build(mesh_dir, workspace).close()
    return mesh_dir, workspace


def _publish_tightened_elsewhere(mesh_dir: Path, workspace: Path) -> None:
    """Another checkout of the mesh publishes ``ordered_on`` as PII: this checkout's files,
    unchanged, now loosen its protection, so its product is withheld. Only the catalog
    changed (not the spec files this process reads)."""
    other = mesh_dir.parent / "other-checkout"
    shutil.copytree(mesh_dir, other)
    edit(
        other / "shop" / "products" / "orders.yaml",
        "type: date, classification: internal",
        "type: date, classification: pii",
    )
    with Mesh.open(workspace, mesh_dir=other) as elsewhere:
        elsewhere.publish("shop.orders")


#: a query, and listings whose plan reads no table but asks the gate for each it lists
TEXTS = (COUNT, "SHOW TABLES", "SELECT table_name FROM information_schema.tables")


def test_a_product_withheld_after_its_plan_was_cached_is_refused_from_memory(shop):
    mesh_dir, workspace = shop
    with Mesh.open(workspace) as mesh:
        session = mesh.session("analyst")
        for text in TEXTS:
            assert session.sql(text).fetchall()
            assert session.sql(text).timings.get("parse") is None  # the in-memory plan
        _publish_tightened_elsewhere(mesh_dir, workspace)
        for text in TEXTS:
            with pytest.raises(WithheldProductError, match="protection loosened shop.orders"):
                session.sql(text)
        with pytest.raises(WithheldProductError):
            session.explain(COUNT)
    # and from the plan store, in a new session of a new process's engine
    with Mesh.open(workspace) as mesh:
        for text in TEXTS:
            with pytest.raises(WithheldProductError):
                mesh.sql("analyst", text)


def _counting_gate(mesh: Mesh) -> list[str]:
    planner = mesh.engine.planner
    calls: list[str] = []
    real = planner.serves

    def counting(ref: str) -> None:
        calls.append(ref)
        real(ref)

    planner.serves = counting
    return calls


def test_the_serving_gate_is_asked_once_per_table_and_attempt(workspace: Path):
    text = (
        "SELECT n_name, count(*) FROM sales.orders o"
        " JOIN customer.customer c ON o.o_custkey = c.c_custkey"
        " JOIN customer.nation n ON c.c_nationkey = n.n_nationkey GROUP BY n_name"
    )
    tables = ["customer.customer", "customer.nation", "sales.orders"]
    with Mesh.open(workspace) as mesh:
        calls = _counting_gate(mesh)
        planned = mesh.sql("governance_admin", text)
        assert "parse" in planned.timings and sorted(calls) == tables
        calls.clear()
        again = mesh.sql("governance_admin", text)
        assert "parse" not in again.timings and sorted(calls) == tables
        assert again.fetchall() == planned.fetchall()


def test_a_plan_made_by_other_rules_is_not_served_from_memory(workspace: Path):
    """A test or a benchmark may plan with a prefix or a changed rule: the whole pipeline
    run afterwards on the same engine plans (and verifies) the text itself."""
    from meshsim.query import pipeline

    text = "SELECT count(*) FROM customer.region"
    with Mesh.open(workspace) as mesh:
        engine = mesh.engine
        engine.plan_rules = pipeline.PLAN_RULES[:-1]  # no verify-plan
        assert "verify-plan" not in mesh.sql("governance_admin", text).timings
        engine.plan_rules = pipeline.PLAN_RULES
        assert "verify-plan" in mesh.sql("governance_admin", text).timings
        assert "parse" not in mesh.sql("governance_admin", text).timings  # now its own


def test_a_subscription_that_expired_is_not_served_from_either_cache(workspace: Path):
    """No catalog write happens at the expiry: the caches see it because the policies'
    key (the catalog revision) expires what is due each time it is read."""
    from datetime import UTC, datetime, timedelta

    from meshsim.catalog import Catalog
    from meshsim.errors import AccessDenied
    from meshsim.workspace import Workspace
    from tests.catalog.conftest import Clock

    clock = Clock()
    clock.now = datetime.now(UTC)
    count = "SELECT count(*) FROM sales.orders"

    def mesh_at_clock() -> Mesh:
        opened = Mesh.open(workspace)
        return Mesh(
            opened.workspace,
            opened.mesh_dir,
            catalog=Catalog(Workspace.at(workspace), lambda: opened.spec, clock=clock),
        )

    mesh = mesh_at_clock()
    until = (clock.now + timedelta(days=2)).date().isoformat()
    mesh.catalog.request("external_partner", "sales.order_history", "volumes", expires=until)
    session = mesh.session("external_partner")
    rows = session.sql(count).fetchall()
    assert session.sql(count).fetchall() == rows  # from memory
    other = mesh_at_clock()
    assert "parse" not in other.sql("external_partner", count).timings  # from the plan store
    clock.advance(days=4)
    with pytest.raises(AccessDenied):
        session.sql(count)
    with pytest.raises(AccessDenied):
        other.sql("external_partner", count)
    mesh.close()
    other.close()


def test_a_query_looks_at_the_spec_files_once(workspace: Path, monkeypatch):
    """The engine, the policies and the serving gate (once per table) each ask for the spec:
    one look at the spec files it read per query, not one per asker."""
    from meshsim.spec.watch import SpecFiles

    looks: list[bool] = []
    real = SpecFiles.changed

    def counting(self, *, scans: bool = False) -> bool:
        looks.append(scans)
        return real(self, scans=scans)

    text = "SELECT count(*) FROM sales.orders o JOIN customer.customer c ON o_custkey = c_custkey"
    with Mesh.open(workspace) as mesh:
        session = mesh.session("governance_admin")
        session.sql(text)
        monkeypatch.setattr(SpecFiles, "changed", counting)
        for _ in range(2):
            looks.clear()
            session.sql(text)
            assert len(looks) == 1
        mesh.engine.caches.plans.clear()
        for call in (session.explain, lambda t: mesh.sql("governance_admin", t)):
            looks.clear()
            call(text)
            assert len(looks) == 1


def test_a_query_reads_the_catalog_revision_once(workspace: Path, monkeypatch):
    """The policies and the serving gate of each table key their caches by the catalog's
    revision: one read of it per query (each a transaction), not one per asker."""
    from meshsim.catalog import Catalog

    reads: list[int] = []
    real = Catalog.revision

    def counting(self) -> int:
        reads.append(1)
        return real(self)

    text = "SELECT count(*) FROM sales.orders o JOIN customer.customer c ON o_custkey = c_custkey"
    with Mesh.open(workspace) as mesh:
        session = mesh.session("governance_admin")
        session.sql(text)
        monkeypatch.setattr(Catalog, "revision", counting)
        for call in (session.sql, session.explain, lambda t: mesh.sql("governance_admin", t)):
            reads.clear()
            call(text)
            assert len(reads) == 1


def test_queries_in_one_outer_block_each_read_the_catalog_of_their_moment(workspace: Path):
    """The revision is read once per query, not once per outer block: an approval between
    two queries made inside one longer command is in force for the second."""
    from meshsim.errors import AccessDenied

    count = "SELECT count(*) FROM sales.orders"
    with Mesh.open(workspace) as mesh, mesh._one_command():
        session = mesh.session("external_partner")
        with pytest.raises(AccessDenied):
            session.sql(count)
        request = mesh.catalog.request("external_partner", "sales.order_history", "volumes")
        if request.state == "pending":
            mesh.catalog.approve(request.id, by="sales-ops")
        assert session.sql(count).fetchall()[0][0] > 0
