"""A plan is reused after a policy change that does not touch it (issue 17): the engine's
plan cache and the workspace's plan store find a plan by what it depends on, the
consumer's resolved access to each table it reads, not by all of the consumer's policies.
A change to any of that (a revoked subscription, a narrowed grant) plans again.

Whether a query was planned is whether its ``parse`` rule ran (never a wall-clock time)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from meshsim.errors import AccessDenied
from meshsim.mesh import Mesh
from meshsim.query.plan_store import PLAN_FOLDER

REGIONS = "SELECT r_name FROM customer.region ORDER BY r_name"
ORDERS = "SELECT count(*) FROM sales.orders"
ANALYST = "eu_marketing_analyst"
PARTNER = "external_partner"
OWNERS = {"customer": "customer-data", "sales": "sales-ops", "supply": "supply-chain"}


@pytest.fixture
def workspace(workspace: Path) -> Path:
    """The private copy of the built workspace, without other tests' stored plans."""
    shutil.rmtree(workspace / "governance" / PLAN_FOLDER, ignore_errors=True)
    return workspace


def planned(result) -> bool:
    return "parse" in result.timings


def subscribe(mesh: Mesh, consumer: str, product: str) -> int:
    """``consumer``'s request for ``product``, approved by its owner when not at once."""
    request = mesh.catalog.request(consumer, product, "issue 17")
    if request.state == "pending":
        request = mesh.catalog.approve(request.id, by=OWNERS[product.split(".")[0]])
    assert request.state == "approved"
    return request.id


def test_an_approval_of_another_product_leaves_a_cached_plan_in_use(workspace: Path):
    with Mesh.open(workspace) as mesh:
        session = mesh.session(ANALYST)
        first = session.sql(REGIONS)
        assert planned(first) and not planned(session.sql(REGIONS))
        subscribe(mesh, ANALYST, "supply.supply_catalog")
        assert session.sql("SELECT count(*) FROM supply.part").fetchall()  # it took effect
        again = session.sql(REGIONS)
        assert not planned(again) and again.fetchall() == first.fetchall()


def test_an_approval_of_another_product_leaves_a_stored_plan_in_use(workspace: Path):
    def run(text: str):
        with Mesh.open(workspace) as mesh:  # a new engine each time: only the store is shared
            return mesh.sql(ANALYST, text)

    first = run(REGIONS)
    assert planned(first) and not planned(run(REGIONS))
    with Mesh.open(workspace) as mesh:
        subscribe(mesh, ANALYST, "supply.supply_catalog")
    again = run(REGIONS)
    assert not planned(again) and again.fetchall() == first.fetchall()


def _audited_policies(mesh: Mesh, text: str) -> list[str]:
    records = mesh.audit(as_consumer=ANALYST, limit=20)
    return next(r["policies"] for r in records if r["kind"] == "query" and r["sql"] == text)


def test_a_subscription_to_a_table_read_whole_already_reuses_the_plan_and_audits_it(
    workspace: Path,
):
    """The analyst reads customer.region whole through a grant; its subscription to the
    product adds only a grant's name to that access. The plan is reused, from memory and
    from the store, and the audit names the subscription's grant beside the spec's."""
    with Mesh.open(workspace) as mesh:
        session = mesh.session(ANALYST)
        first = session.sql(REGIONS)
        before = _audited_policies(mesh, REGIONS)
        subscribe(mesh, ANALYST, "customer.customer_profiles")
        again = session.sql(REGIONS)
        assert not planned(again) and again.fetchall() == first.fetchall()
        after = _audited_policies(mesh, REGIONS)
    assert set(before) < set(after), (before, after)
    with Mesh.open(workspace) as mesh:  # a new engine: the stored plan
        stored = mesh.sql(ANALYST, REGIONS)
        assert not planned(stored) and stored.fetchall() == first.fetchall()
        assert _audited_policies(mesh, REGIONS) == after
        assert set(mesh.explain(ANALYST, REGIONS).tables[0]["grants"]) == {
            name.removeprefix("grant:") for name in after
        }


def test_a_revoked_subscription_is_never_served_a_reused_plan(workspace: Path):
    """The partner's plan over sales.orders survives its approval of another product, and
    is refused, from memory and from the store, once the subscription it reads is revoked."""
    with Mesh.open(workspace) as mesh:
        orders = subscribe(mesh, PARTNER, "sales.order_history")
        session = mesh.session(PARTNER)
        rows = session.sql(ORDERS).fetchall()
        subscribe(mesh, PARTNER, "customer.customer_profiles")
        again = session.sql(ORDERS)
        assert not planned(again) and again.fetchall() == rows
        mesh.catalog.revoke(orders, by="sales-ops")
        with pytest.raises(AccessDenied, match="no grant on table 'sales.orders'"):
            session.sql(ORDERS)
    with Mesh.open(workspace) as mesh, pytest.raises(AccessDenied):
        mesh.sql(PARTNER, ORDERS)


def test_a_narrowed_subscription_plans_again(workspace: Path):
    """A subscription to the table a plan reads, granting fewer columns than before: the
    star the plan expanded is the visible columns now, from memory and from the store."""
    star = "SELECT * FROM sales.orders ORDER BY o_orderkey LIMIT 1"
    with Mesh.open(workspace) as mesh:
        whole = subscribe(mesh, PARTNER, "sales.order_history")
        session = mesh.session(PARTNER)
        wide = session.sql(star)
        assert "o_comment" in wide.columns
        request = mesh.catalog.request(
            PARTNER, "sales.order_history", "fewer", columns=["sales.orders.o_orderkey"]
        )
        assert request.state == "approved"
        mesh.catalog.revoke(whole, by="sales-ops")
        narrow = session.sql(star)
        assert planned(narrow) and narrow.columns == ["o_orderkey"]
    with Mesh.open(workspace) as mesh:
        assert mesh.sql(PARTNER, star).columns == ["o_orderkey"]


@pytest.mark.parametrize(
    "text",
    [
        "SHOW TABLES",
        "SELECT table_name FROM information_schema.tables ORDER BY table_name",
        "SELECT column_name FROM information_schema.columns ORDER BY column_name",
    ],
)
def test_a_listing_of_the_whole_view_plans_again_after_any_approval(workspace: Path, text):
    with Mesh.open(workspace) as mesh:
        session = mesh.session(ANALYST)
        before = session.sql(text).fetchall()
        assert not planned(session.sql(text))
        subscribe(mesh, ANALYST, "supply.supply_catalog")
        after = session.sql(text)
        assert planned(after) and len(after.fetchall()) > len(before)
    with Mesh.open(workspace) as mesh:
        assert mesh.sql(ANALYST, text).fetchall() == after.fetchall()


@pytest.mark.parametrize(
    ("text", "depends_on"),
    [
        (REGIONS, ("customer.region",)),
        (
            "SELECT o_orderkey FROM sales.orders JOIN customer.customer ON o_custkey = c_custkey",
            ("customer.customer", "sales.orders"),
        ),
        ("DESCRIBE customer.nation", ("customer.nation",)),
        (f"{ANALYST}: {ORDERS}", ("sales.orders",)),  # its row filter looks up three tables
        ("SHOW TABLES", None),
        ("SELECT * FROM information_schema.schemata", None),
        ("SELECT count(*) FROM meshsim.audit", None),  # a system table: the whole view
    ],
)
def test_what_a_plan_depends_on(workspace: Path, text: str, depends_on):
    """The tables whose access a plan is reused by (a row filter's lookups are not among
    them: they are read with the policy's rights, and their versions are bound), or None:
    the fingerprint of all the policies."""
    with Mesh.open(workspace) as mesh:
        engine = mesh.engine
        consumer, _, text = text.rpartition(": ")
        attempt = engine.run(engine.attempt(consumer or "governance_admin", text), execute=False)
        assert attempt.plan is not None
        assert consumer != ANALYST or attempt.plan.lookups  # the row filter's lookups
        assert attempt.plan is not None and attempt.plan.dependencies is not None
        accesses = attempt.plan.dependencies.accesses
        assert (None if accesses is None else tuple(ref for ref, _ in accesses)) == depends_on
        assert attempt.plan.dependencies.fingerprint == attempt.fingerprint


def test_the_fingerprint_of_appended_subscriptions_reads_only_them(monkeypatch):
    """A consumer's policies are the spec's with its subscriptions appended: their
    fingerprint digests the spec's once and then only what was appended (a catalog change
    costs the consumer's subscriptions, not every policy of the mesh), and still tells
    any two contents apart."""
    from meshsim.query.rewrite import policies_fingerprint
    from meshsim.spec.loader import load_mesh
    from meshsim.spec.models import Grant, Policies
    from tests.conftest import EXAMPLE_MESH

    base = load_mesh(EXAMPLE_MESH).policies
    spec = (base, policies_fingerprint(base))

    def subscribed(*tables: str, first: bool = False) -> Policies:
        grants = [
            Grant(name=f"s{i}", consumers=[PARTNER], tables=[t]) for i, t in enumerate(tables)
        ]
        update = [*grants, *base.grants] if first else [*base.grants, *grants]
        return base.model_copy(update={"grants": update})

    orders = policies_fingerprint(subscribed("sales.orders"), spec)
    assert orders == policies_fingerprint(subscribed("sales.orders"), spec)  # the same content
    assert orders != policies_fingerprint(subscribed("sales.lineitem"), spec)
    assert orders != spec[1]
    before = subscribed("sales.orders", first=True)  # not an extension: digested whole
    assert policies_fingerprint(before, spec) == policies_fingerprint(before)
    dumped: list[int] = []
    real = Policies.model_dump_json

    def counting(self: Policies, **kwargs) -> str:
        dumped.append(len(self.grants))
        return real(self, **kwargs)

    monkeypatch.setattr(Policies, "model_dump_json", counting)
    policies_fingerprint(subscribed("sales.orders", "supply.part"), spec)
    assert dumped == [2]


def test_a_listing_is_not_served_from_the_plan_store_after_a_product_file_change(
    mesh_copy: Path, tmp_path: Path
):
    """A listing (SHOW TABLES, information_schema) depends on the whole view: which tables
    the product files define, their columns and the tags tag grants match, none of which the
    policies' fingerprint covers. A stored listing was served to a new engine after a
    product file gave the partner a table (the outside review's finding): listings are
    planned in each engine, never stored."""
    from tests.conftest import edit

    workspace = tmp_path / "ws"
    Mesh.build(mesh_copy, workspace, scale=0.01).close()
    listings = (
        "SHOW TABLES",
        "SELECT table_name FROM information_schema.columns WHERE table_schema = 'supply'",
    )
    for text in listings:
        for _ in range(2):
            with Mesh.open(workspace) as mesh:
                assert "supplier" not in str(mesh.sql(PARTNER, text).fetchall())
    edit(
        mesh_copy / "supply" / "products" / "supply_catalog.yaml",
        "    description: One row per supplier.\n",
        "    description: One row per supplier.\n    tags: {channel: b2b, confidentiality: public}\n",
    )
    for text in listings:
        with Mesh.open(workspace) as mesh:
            assert "supplier" in str(mesh.sql(PARTNER, text).fetchall()), text
