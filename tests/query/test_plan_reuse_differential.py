"""Plans reused across policy changes against plans made afresh, after random policy edits.

A cached or stored plan is reused after a policy change only while what it depends on
holds (:mod:`meshsim.query.dependencies`); a reuse that missed a new mask, a revoked grant,
a changed row filter or attribute would leak data. So after each random edit (a grant, a
column grant, a mask, a row filter, a tag grant, a subscription approved or revoked, a
consumer attribute changed), every query of :data:`QUERIES` is run three ways and must
agree exactly (governed SQL, audited policies, rows, or the refusal):

* ``memory``: one engine for the whole example, so its plan cache carries plans across
  the edits (a new one after an attribute change, as the mesh makes one for a new spec);
* ``store``: a new engine per edit over one plan store (a new process each time);
* ``fresh``: the whole pipeline with every cache cleared, the reference.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshsim.errors import MeshsimError
from meshsim.policy.access import resolve_access
from meshsim.query.plan_store import PlanStore
from meshsim.query.rewrite import SCAN_MARK
from meshsim.query.session import GovernedEngine
from meshsim.spec.loader import MeshSpec
from meshsim.spec.models import Grant, Mask, Policies, RowFilter, TagGrant
from tests.query.meshdata import MESH_KEY, MeshData
from tests.query.meshfixtures import make_engine

CONSUMERS = ("eu_marketing_analyst", "external_partner")
REGIONS = "SELECT r_name FROM customer.region ORDER BY r_name"
QUERIES = (
    "SHOW TABLES",
    "SELECT table_name, column_name, data_type FROM information_schema.columns ORDER BY ALL",
    "DESCRIBE customer.customer",
    REGIONS,
    "SELECT c_custkey, c_name, c_phone FROM customer.customer ORDER BY c_custkey LIMIT 5",
    # sales.orders: the analyst's row filter looks up customer, nation and region
    "SELECT o.o_orderkey, c.c_name FROM sales.orders o JOIN customer.customer c "
    "ON o.o_custkey = c.c_custkey ORDER BY o.o_orderkey LIMIT 5",
    "SELECT count(*) FROM sales.orders",
    "SELECT * FROM supply.part ORDER BY p_partkey LIMIT 3",
)
TABLES = ("customer.region", "customer.customer", "sales.orders", "supply.part")
COLUMNS = (
    "customer.customer.c_custkey",
    "customer.customer.c_name",
    "customer.customer.c_phone",
    "sales.orders.o_orderkey",
    "supply.part.p_name",
)
PRODUCTS = ("customer.customer_profiles", "sales.order_history", "supply.supply_catalog")
FILTERS = (
    ("customer.customer", "c_custkey < 100"),
    (
        "customer.customer",
        "c_nationkey IN (SELECT n_nationkey FROM customer.nation WHERE n_regionkey = 3)",
    ),  # fmt: skip
    (
        "sales.orders",
        "o_custkey IN (SELECT c_custkey FROM customer.customer WHERE c_nationkey < 10)",
    ),  # fmt: skip
    ("customer.region", "r_name <> consumer.region"),
    ("supply.part", "p_partkey % 2 = 0"),
)
TAGS = ("confidentiality=public", "channel=b2c AND confidentiality=public", "channel=b2b")
REGION_VALUES = ("EUROPE", "ASIA", None)


@dataclasses.dataclass
class State:
    """The policies and spec in force: every consumer's policies are the same object (the
    spec's, edited), as the catalog merges subscriptions after the spec's policies."""

    spec: MeshSpec
    policies: Policies
    serial: int = 0

    def name(self, kind: str) -> str:
        self.serial += 1
        return f"edit_{kind}_{self.serial}"


consumer = st.sampled_from(CONSUMERS)
#: each kind of edit and the strategy of its arguments
EDITS = {
    "grant tables": st.tuples(consumer, st.sampled_from(TABLES)),
    "grant product": st.tuples(consumer, st.sampled_from(PRODUCTS)),
    "grant column": st.tuples(consumer, st.sampled_from(COLUMNS)),
    "remove grant": st.tuples(st.integers(0, 40)),
    "mask": st.tuples(consumer, st.sampled_from(COLUMNS), st.booleans()),
    "remove mask": st.tuples(st.integers(0, 10)),
    "row filter": st.tuples(consumer, st.sampled_from(FILTERS)),
    "remove row filter": st.tuples(st.integers(0, 10)),
    "tag grant": st.tuples(consumer, st.sampled_from(TAGS)),
    "remove tag grant": st.tuples(st.integers(0, 4)),
    "approve": st.tuples(consumer, st.sampled_from(TABLES)),
    "revoke": st.tuples(st.integers(0, 4)),
    "attribute": st.tuples(st.sampled_from(REGION_VALUES)),
}
#: every kind once per example, in a drawn order, each with drawn arguments
EDIT_SEQUENCES = st.permutations(sorted(EDITS)).flatmap(
    lambda kinds: st.tuples(*(st.tuples(st.just(k), *[EDITS[k]]) for k in kinds))
)


def _without(items: list, position: int) -> list:
    return [item for i, item in enumerate(items) if i != position % max(len(items), 1)]


def apply(state: State, edit: tuple) -> bool:
    """Apply ``edit``; True when it changed the spec (a new engine, as the mesh makes)."""
    kind, args = edit
    p = state.policies
    update: dict[str, list] = {}
    if kind == "grant tables":
        update["grants"] = [Grant(name=state.name("g"), consumers=[args[0]], tables=[args[1]])]
        update["grants"] = [*update["grants"], *p.grants]
    elif kind == "grant product":
        grant = Grant(name=state.name("g"), consumers=[args[0]], product=args[1])
        update["grants"] = [grant, *p.grants]
    elif kind == "grant column":
        grant = Grant(name=state.name("g"), consumers=[args[0]], columns=[args[1]])
        update["grants"] = [grant, *p.grants]
    elif kind == "remove grant":
        update["grants"] = _without(p.grants, args[0])
    elif kind == "mask":
        function = "redact" if args[2] else "nullify"
        mask = Mask(name=state.name("m"), consumers=[args[0]], columns=[args[1]], function=function)
        update["masks"] = [mask, *p.masks]  # first: it wins over the spec's masks
    elif kind == "remove mask":
        update["masks"] = _without(p.masks, args[0])
    elif kind == "row filter":
        table, predicate = args[1]
        row_filter = RowFilter(
            name=state.name("f"), consumers=[args[0]], table=table, predicate=predicate
        )
        update["row_filters"] = [*p.row_filters, row_filter]
    elif kind == "remove row filter":
        update["row_filters"] = _without(p.row_filters, args[0])
    elif kind == "tag grant":
        tag_grant = TagGrant(name=state.name("t"), consumers=[args[0]], expression=args[1])
        update["tag_grants"] = [*p.tag_grants, tag_grant]
    elif kind == "remove tag grant":
        update["tag_grants"] = _without(p.tag_grants, args[0])
    elif kind == "approve":  # as the catalog merges a subscription: after the spec's grants
        name = f"subscription_{state.name('s')}"
        update["grants"] = [*p.grants, Grant(name=name, consumers=[args[0]], tables=[args[1]])]
    elif kind == "revoke":
        subscriptions = [g for g in p.grants if (g.name or "").startswith("subscription_")]
        if subscriptions:
            gone = subscriptions[args[0] % len(subscriptions)]
            update["grants"] = [g for g in p.grants if g is not gone]
    elif kind == "attribute":
        consumers = []
        for c in state.spec.mesh.consumers:
            if c.name == "eu_marketing_analyst":
                attributes = {k: v for k, v in c.attributes.items() if k != "region"}
                if args[0] is not None:
                    attributes["region"] = args[0]
                c = c.model_copy(update={"attributes": attributes})
            consumers.append(c)
        mesh = state.spec.mesh.model_copy(update={"consumers": consumers, "policies": p})
        state.spec = dataclasses.replace(state.spec, mesh=mesh)
        state.policies = state.spec.policies
        return True
    if update:
        state.policies = p.model_copy(update=update)
    return False


def outcome(engine: GovernedEngine, who: str, text: str) -> tuple:
    """What ``engine`` makes of ``text`` as ``who``: the governed SQL (the engine's nonce
    left out), the policies audited and the rows; or the refusal."""
    try:
        attempt = engine.run(engine.attempt(who, text))
    except MeshsimError as exc:
        return ("refused", type(exc).__name__, exc.message)
    plan = attempt.plan
    assert plan is not None and attempt.table is not None
    sql = plan.sql.replace(f"{SCAN_MARK}{engine.planner.nonce}_", f"{SCAN_MARK}_")
    policies = [(t.ref, t.version, t.columns, tuple(t.policies)) for t in plan.tables]
    return ("allowed", sql, policies, attempt.table.to_pylist(), attempt.cached)


def _engine(mesh: MeshData, state: State, store: PlanStore | None) -> GovernedEngine:
    engine, _ = make_engine(
        dataclasses.replace(mesh, spec=state.spec),
        policies=lambda _consumer: state.policies,
        plan_store=store,
    )
    return engine


def _readable(state: State, who: str, ref: str):
    """What planning reads of ``who``'s access to ``ref``: the columns' states and masks and
    the row filters, not the names of the grants and rules that say why (the audit reads
    them from the access in force); and the attributes."""
    access = resolve_access(state.spec, who, ref, state.policies)
    columns = tuple((c.column, c.state, c.mask) for c in access.columns)
    return (columns, access.row_filters), dict(
        state.spec.consumer(who).attributes  # type: ignore[union-attr]
    )


class World:
    """The test mesh and the plan store's folder, with a short repr (hypothesis prints it
    with a failing example)."""

    def __init__(self, mesh: MeshData, plans: Path) -> None:
        self.mesh, self.plans = mesh, plans

    def __repr__(self) -> str:
        return "World(the test mesh)"


@pytest.fixture(scope="module")
def world(mesh: MeshData, tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(mesh, tmp_path_factory.mktemp("plans"))


@settings(
    max_examples=2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(edits=EDIT_SEQUENCES)
def test_a_reused_plan_is_the_plan_made_afresh(world: World, edits):
    import shutil

    mesh = world.mesh
    shutil.rmtree(world.plans, ignore_errors=True)
    store = PlanStore(
        world.plans,
        mesh_key=MESH_KEY,
        spec_stamp="the spec stamp, unchanged",
        domain_stamp=lambda _domain: "the spec files, unchanged",
    )
    state = State(mesh.spec, mesh.spec.policies)
    engines: list[GovernedEngine] = []

    def engines_for_spec() -> tuple[GovernedEngine, ...]:
        """memory, stored, fresh: new ones for a new spec, as the mesh makes"""
        made = (_engine(mesh, state, None), _engine(mesh, state, store), _engine(mesh, state, None))
        engines.extend(made)
        return made

    def from_store(who: str, text: str) -> tuple:
        stored.caches.clear()  # as a new process: its own caches empty, the store kept
        return outcome(stored, who, text)

    memory, stored, fresh = engines_for_spec()
    try:
        saved = {}  # per consumer: its access to customer.region when REGIONS was stored
        for who in CONSUMERS:  # cache and store every plan under the policies of the spec
            for text in QUERIES:
                outcome(memory, who, text)
                if from_store(who, text)[0] == "allowed" and text == REGIONS:
                    saved[who] = _readable(state, who, "customer.region")
        for edit in edits:
            if apply(state, edit):
                memory, stored, fresh = engines_for_spec()
            for who in CONSUMERS:
                for text in QUERIES:
                    fresh.caches.clear()
                    expected = outcome(fresh, who, text)[:4]
                    assert outcome(memory, who, text)[:4] == expected, (edit, who, text)
                    reused = from_store(who, text)
                    assert reused[:4] == expected, (edit, who, text)
                    if text != REGIONS or reused[0] != "allowed":
                        continue
                    # not only the same answers: a plan of customer.region alone is reused
                    # exactly when what it read of the access and the attributes are what they
                    # were (and its audit names the grants in force: compared above)
                    now = _readable(state, who, "customer.region")
                    assert reused[4] == (saved.get(who) == now), (edit, who)
                    saved[who] = now
    finally:
        for engine in engines:
            engine.close()
