"""Key sets over an engine's life: made once per lookup, within the query's time, by one
consumer without stalling the others, freed when nobody can use them, never left behind.

The outside review's findings on :mod:`meshsim.query.keysets` (F1-F7), each by counting
DuckDB calls or by events, never by wall-clock time.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from meshsim import engine as duck
from meshsim.query import keysets
from meshsim.query.rewrite import SCAN_MARK
from tests.query.meshdata import EUROPE, MeshData, arrow_schema, build
from tests.query.meshfixtures import make_engine

CONSUMER = "eu_marketing_analyst"
ORDERS = "SELECT count(*) FROM sales.orders"
CUSTOMERS = "SELECT count(*) FROM customer.customer"
LINEITEMS = "SELECT count(*), sum(l_quantity) FROM sales.lineitem"
#: the same scans gated (a cast that can fail): compiled again, their key sets looked up again
GATED_ORDERS = ORDERS + " WHERE CAST(o_comment AS INT) > 0 OR true"
GATED_LINEITEMS = LINEITEMS + " WHERE CAST(l_comment AS INT) > 0 OR true"


def _key_set_tables(engine) -> set[str]:
    names = engine.connection.execute(
        "SELECT table_name FROM duckdb_tables() WHERE NOT temporary"
    ).fetchall()
    return {n for (n,) in names if n.startswith(SCAN_MARK)}


def _plan(engine, sql: str, runs_on: str = "duckdb"):
    attempt = engine.attempt(CONSUMER, sql, engine=runs_on)
    return engine.run(attempt, execute=False).plan


def _used(plan) -> set[str]:
    return {name for scan in plan.scans.values() for name in scan.keysets}


def _inline(mesh: MeshData, sql: str):
    reference, _ = make_engine(mesh)
    reference.planner.keysets = None
    try:
        return reference.session(CONSUMER).sql(sql).fetchall()
    finally:
        reference.close()


def _creates(monkeypatch) -> list[str]:
    """Every key-set CREATE run from now on."""
    made: list[str] = []
    original = duck.run_statement

    def spy(con, sql, **kwargs):
        if sql.startswith("CREATE"):
            made.append(sql)
        return original(con, sql, **kwargs)

    monkeypatch.setattr(duck, "run_statement", spy)
    return made


# -- F1: one lock for every key set ---------------------------------------------------------


def test_a_key_set_being_made_stalls_no_other_planning(mesh: MeshData, monkeypatch):
    engine, _ = make_engine(mesh)
    session = engine.session(CONSUMER)
    session.sql(ORDERS)  # made before: found without waiting
    entered, release = threading.Event(), threading.Event()
    original = duck.run_statement

    def slow_create(con, sql, **kwargs):
        if threading.current_thread().name == "slow" and sql.startswith("CREATE"):
            entered.set()
            release.wait(timeout=60)
        return original(con, sql, **kwargs)

    monkeypatch.setattr(duck, "run_statement", slow_create)
    answers: dict[str, object] = {}

    def run(name: str, sql: str) -> None:
        answers[name] = session.sql(sql).fetchall()

    slow = threading.Thread(target=run, args=("slow", LINEITEMS), name="slow")
    others = threading.Thread(
        target=lambda: [run(name, sql) for name, sql in (("orders", ORDERS), ("c", CUSTOMERS))]
    )
    try:
        slow.start()
        assert entered.wait(timeout=60)
        others.start()
        others.join(timeout=30)  # a guard against a hang; the check is the event below
        assert not others.is_alive() and not release.is_set()
        assert set(answers) == {"orders", "c"}  # planned (a new key set made) meanwhile
        assert {n for n in _used(_plan(engine, CUSTOMERS))} <= _key_set_tables(engine)
    finally:
        release.set()
        slow.join(timeout=60)
        others.join(timeout=60)
        engine.close()
    assert answers["slow"] == _inline(mesh, LINEITEMS)


# -- F2: the query's time, not the engine's --------------------------------------------------


def test_a_key_set_is_made_within_the_time_left(mesh: MeshData, monkeypatch):
    engine, _ = make_engine(mesh, timeout_s=30)
    given: list[float | None] = []
    original = duck._guarded

    def spy(con, call, **kwargs):
        given.append(kwargs.get("timeout_s"))
        return original(con, call, **kwargs)

    monkeypatch.setattr(duck, "_guarded", spy)
    try:
        attempt = engine.attempt(CONSUMER, ORDERS)
        attempt.limit_s = 5.0  # what is left of a query that already ran 25 of its 30 s
        engine.run(attempt, execute=False)
        assert attempt.plan is not None and _used(attempt.plan)
        assert given and all(t is not None and t <= 5.0 for t in given)
    finally:
        engine.close()


# -- F3: key sets nobody can use are freed ---------------------------------------------------


def _move_a_nation(data: MeshData, step: int) -> None:
    nations = data.read("customer.nation").to_pylist()
    moved = [n for n in nations if n["n_regionkey"] != EUROPE][step]
    moved["n_regionkey"] = EUROPE
    write_deltalake(
        data.path("customer.nation"),
        pa.Table.from_pylist(nations, arrow_schema(data.spec, "customer.nation")),
        mode="overwrite",
    )


def test_a_key_set_of_an_old_lookup_version_is_freed(tmp_path: Path):
    data = build(tmp_path / "mesh")
    engine, _ = make_engine(data)
    try:
        session = engine.session(CONSUMER)
        for step in range(4):
            session.sql(ORDERS).fetchall()
            session.sql(CUSTOMERS).fetchall()
            in_use = _used(_plan(engine, ORDERS)) | _used(_plan(engine, CUSTOMERS))
            assert len(in_use) == 2
            assert _key_set_tables(engine) == in_use  # the old versions' ones are gone
            _move_a_nation(data, step)
    finally:
        engine.close()


def test_past_the_cap_the_least_recently_used_is_freed(mesh: MeshData, monkeypatch):
    monkeypatch.setattr(keysets, "MAX_TABLES", 1)
    engine, _ = make_engine(mesh)
    try:
        for sql in (ORDERS, CUSTOMERS, LINEITEMS):
            plan = _plan(engine, sql)
            assert len(_used(plan)) == 1  # a new lookup still gets its key set
            assert _key_set_tables(engine) == _used(plan)
    finally:
        engine.close()


def test_a_cached_plan_naming_a_freed_key_set_is_planned_again(mesh: MeshData, monkeypatch):
    monkeypatch.setattr(keysets, "MAX_TABLES", 1)
    engine, _ = make_engine(mesh)
    try:
        session = engine.session(CONSUMER)
        first = session.sql(ORDERS).fetchall()
        session.sql(CUSTOMERS).fetchall()  # frees the orders' key set
        attempt = engine.run(engine.attempt(CONSUMER, ORDERS))
        assert not attempt.cached  # planned again, not served naming a dropped table
        assert attempt.table is not None and attempt.table.to_pylist()
        assert session.sql(ORDERS).fetchall() == first == _inline(mesh, ORDERS)
        assert _used(_plan(engine, ORDERS)) <= _key_set_tables(engine)
    finally:
        engine.close()


def test_a_key_set_a_running_query_planned_with_is_not_freed(mesh: MeshData, monkeypatch):
    from meshsim.query import pipeline

    monkeypatch.setattr(keysets, "MAX_TABLES", 1)
    engine, _ = make_engine(mesh)
    key_sets = engine.planner.keysets
    assert key_sets is not None
    try:
        running = engine.attempt(CONSUMER, ORDERS)
        with key_sets.attempt(running):
            held = _used(engine.plan(running))
            # another query makes its key set past the cap meanwhile, and runs with it
            assert engine.session(CONSUMER).sql(CUSTOMERS).fetchall() == _inline(mesh, CUSTOMERS)
            assert _key_set_tables(engine) == held  # the idle one is freed for the cap
            pipeline.run_rules(engine, running, (pipeline.EXECUTE,))
        assert running.table is not None
        assert list(running.table.to_pydict().values()) == [[_inline(mesh, ORDERS)[0][0]]]
    finally:
        engine.close()


# -- F4: a lookup that stays inline is not computed again -------------------------------------


def test_a_lookup_over_the_limit_is_computed_once(mesh: MeshData, monkeypatch):
    monkeypatch.setattr(keysets, "MAX_KEYS", 3)
    made = _creates(monkeypatch)
    engine, _ = make_engine(mesh)
    try:
        for sql in (LINEITEMS, GATED_LINEITEMS, LINEITEMS + " WHERE l_quantity > 0"):
            assert not _used(_plan(engine, sql))
        assert len(made) == 1
        assert _key_set_tables(engine) == set()
    finally:
        engine.close()


def test_a_lookup_duckdb_failed_on_is_not_run_again(mesh: MeshData, monkeypatch):
    made = _creates(monkeypatch)
    original = duck.run_arrow

    def failing_count(con, sql, **kwargs):
        if sql.startswith(f'SELECT COUNT(*) FROM "{SCAN_MARK}'):
            raise duck.EngineFailure("ConversionException")
        return original(con, sql, **kwargs)

    monkeypatch.setattr(duck, "run_arrow", failing_count)
    engine, _ = make_engine(mesh)
    try:
        for sql in (ORDERS, GATED_ORDERS):
            assert not _used(_plan(engine, sql))
        assert len(made) == 1
        assert _key_set_tables(engine) == set()  # and the table it made is gone
    finally:
        engine.close()


# -- F5: only the key sets the scan reads ----------------------------------------------------


def test_a_nested_lookup_makes_only_the_key_set_read(mesh_copy: Path, tmp_path: Path):
    from meshsim.spec.loader import load_mesh
    from tests.conftest import edit

    edit(
        mesh_copy / "mesh.yaml",
        """SELECT n.n_nationkey FROM customer.nation AS n
          JOIN customer.region AS r ON n.n_regionkey = r.r_regionkey
          WHERE r.r_name = consumer.region)""",
        """SELECT n.n_nationkey FROM customer.nation AS n WHERE n.n_regionkey IN (
            SELECT r.r_regionkey FROM customer.region AS r
            WHERE r.r_name = consumer.region))""",
    )
    data = MeshData(load_mesh(mesh_copy), build(tmp_path / "data").root)
    engine, _ = make_engine(data)
    try:
        plan = _plan(engine, CUSTOMERS)
        (scan,) = plan.scans.values()
        assert len(scan.keysets) == 1
        assert all(name in scan.sql for name in scan.keysets)
        assert _key_set_tables(engine) == set(scan.keysets)
        assert engine.session(CONSUMER).sql(CUSTOMERS).fetchall() == _inline(data, CUSTOMERS)
    finally:
        engine.close()


# -- F6: an interrupted make leaves nothing behind --------------------------------------------


def test_a_make_interrupted_after_its_create_leaves_no_table(mesh: MeshData, monkeypatch):
    original = duck.run_arrow
    cancelled: list[str] = []

    def cancel_first_count(con, sql, **kwargs):
        if sql.startswith(f'SELECT COUNT(*) FROM "{SCAN_MARK}') and not cancelled:
            cancelled.append(sql)
            raise duck.QueryCancelled("the query was cancelled")
        return original(con, sql, **kwargs)

    monkeypatch.setattr(duck, "run_arrow", cancel_first_count)
    engine, _ = make_engine(mesh)
    try:
        session = engine.session(CONSUMER)
        with pytest.raises(duck.QueryCancelled):
            session.sql(CUSTOMERS)
        assert cancelled and _key_set_tables(engine) == set()
        plan = _plan(engine, CUSTOMERS)
        assert len(_used(plan)) == 1  # made now: the interruption did not disable it
        assert session.sql(CUSTOMERS).fetchall() == _inline(mesh, CUSTOMERS)
    finally:
        engine.close()


def test_a_leftover_table_never_blocks_a_later_make(mesh: MeshData, monkeypatch):
    engine, _ = make_engine(mesh)
    try:
        (name,) = _used(_plan(engine, CUSTOMERS))
        engine.close()  # a new connection: the key set must be made again
        engine.connection.execute(f'CREATE TABLE "{name}" AS SELECT 1 AS stray')
        engine.caches.clear()
        assert _used(_plan(engine, CUSTOMERS)) == {name}
        assert engine.session(CONSUMER).sql(CUSTOMERS).fetchall() == _inline(mesh, CUSTOMERS)
    finally:
        engine.close()


# -- F7: Spark runs the inline tree ----------------------------------------------------------


def test_a_query_run_on_spark_makes_no_key_set(mesh: MeshData, monkeypatch):
    made = _creates(monkeypatch)
    engine, _ = make_engine(mesh)
    try:
        plan = _plan(engine, ORDERS, runs_on="spark")
        assert not _used(plan)
        assert made == [] and _key_set_tables(engine) == set()
        assert _used(_plan(engine, GATED_ORDERS))  # a DuckDB query still makes its own
    finally:
        engine.close()
