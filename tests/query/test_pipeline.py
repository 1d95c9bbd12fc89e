"""The governed query as an ordered tuple of rules: each rule alone, the verify-plan rule
against scans the parse tree does not show, the audit decision, and the resource bounds."""

from __future__ import annotations

import glob
import os
import time

import duckdb
import pytest
from deltalake import write_deltalake
from sqlglot import exp

from meshsim.engine import EngineLimits, QueryTimeout, ResultTooLarge
from meshsim.errors import AccessDenied, QueryError
from meshsim.query import pipeline
from meshsim.query.pipeline import PLAN_RULES, RULES, Attempt, Rule, audit_decision
from meshsim.query.validate import QueryBounds, validate_query
from meshsim.query.verify import PlanRefused, verify_bound_plan
from tests.query.meshdata import SECRET, MeshData, build
from tests.query.meshfixtures import make_engine


@pytest.fixture
def fresh(mesh: MeshData):
    engine, audit = make_engine(mesh)
    yield engine, audit
    engine.close()


def explain(sql: str) -> str:
    con = duckdb.connect()
    try:
        return con.execute(f"EXPLAIN (FORMAT JSON) {sql}").fetchall()[0][1]
    finally:
        con.close()


def test_the_rules_are_data_in_order() -> None:
    assert [r.name for r in RULES] == [
        "parse",
        "statement",
        "validate",
        "name",
        "resolve",
        "authorise",
        "bind",
        "verify-plan",
        "execute",
    ]
    assert RULES[:-1] == PLAN_RULES


def test_each_rule_adds_its_product(fresh) -> None:
    engine, _ = fresh
    attempt = engine.attempt("eu_marketing_analyst", "SELECT c_phone FROM customer.customer")
    products = {
        "parse": "statement",
        "statement": "statement",
        "validate": "tree",
        "name": "tree",
        "resolve": "resolved",
        "authorise": "resolved",
        "bind": "plan",
        "verify-plan": "plan",
        "execute": "table",
    }
    for rule in RULES:
        rule.apply(engine, attempt)
        assert getattr(attempt, products[rule.name]) is not None, rule.name
    assert attempt.table is not None and attempt.table.num_rows == 40


def test_stage_timings_are_recorded(fresh) -> None:
    engine, _ = fresh
    result = engine.session("governance_admin").sql("SELECT count(*) FROM customer.nation")
    # and the template cache's look-up (a miss: the first text of its shape)
    assert set(result.timings) == {r.name for r in RULES} | {"template"}
    again = engine.session("governance_admin").sql("SELECT count(*) FROM customer.nation")
    assert set(again.timings) == {"execute"}  # the verified plan came from the cache


def test_authorise_refuses_a_hidden_column_alone(fresh) -> None:
    engine, _ = fresh
    attempt = engine.attempt("eu_marketing_analyst", "SELECT c_acctbal FROM customer.customer")
    pipeline.parse(engine, attempt)
    pipeline.validate(engine, attempt)
    with pytest.raises(AccessDenied, match="c_acctbal"):
        pipeline.resolve(engine, attempt)


# -- verify-plan ---------------------------------------------------------------------------


def test_verify_accepts_what_meshsim_binds(mesh: MeshData) -> None:
    files = sorted(glob.glob(os.path.join(mesh.path("customer.nation"), "*.parquet")))
    plan = explain(
        f"WITH x AS (SELECT * FROM read_parquet({files!r})) "
        "SELECT * FROM x JOIN (VALUES (1)) v(a) ON true WHERE n_nationkey IN (SELECT 1)"
    )
    assert "READ_PARQUET" in verify_bound_plan(plan)
    assert "RANGE" in verify_bound_plan(explain("SELECT * FROM range(3)"), series=True)


@pytest.mark.parametrize(
    "sql_of",
    [
        lambda f: f"SELECT * FROM '{f}'",  # replacement scan: PARQUET_SCAN
        lambda f: f'SELECT * FROM "{f}"',
        lambda f: f"SELECT * FROM parquet_scan('{f}')",
        lambda f: f"SELECT * FROM '{os.path.dirname(f)}/_delta_log/00000000000000000000.json'",
        lambda f: "SELECT * FROM duckdb_settings()",
        lambda f: "SELECT * FROM range(3)",  # series the consumer did not write
    ],
)
def test_verify_refuses_scans_meshsim_did_not_bind(mesh: MeshData, sql_of) -> None:
    data_file = sorted(glob.glob(os.path.join(mesh.path("customer.nation"), "*.parquet")))[0]
    with pytest.raises(PlanRefused):
        verify_bound_plan(explain(sql_of(data_file)))


def test_verify_sees_scans_the_optimizer_folds_away(mesh: MeshData, fresh) -> None:
    """DuckDB's optimizer answers count(*) over a Parquet file from its metadata, leaving a
    constant (COLUMN_DATA_SCAN) where the replacement scan was: the check reads the plan as
    bound, with the optimizer off."""
    from meshsim import engine as duck

    engine, _ = fresh
    path = os.path.join(mesh.path("customer.customer"), "*.parquet")
    sql = f'SELECT count(*) AS c FROM "{path}"'
    optimized = explain(sql)
    assert "PARQUET_SCAN" not in optimized  # the file's row count, folded into a constant
    bound = duck.explain_bound(engine.duck, sql, timeout_s=5)
    with pytest.raises(PlanRefused, match="PARQUET_SCAN"):
        verify_bound_plan(bound)


def test_verify_refuses_unknown_operators_and_garbage() -> None:
    with pytest.raises(PlanRefused, match="SEQ_SCAN"):
        verify_bound_plan('[{"name": "SEQ_SCAN", "children": [], "extra_info": {}}]')
    with pytest.raises(PlanRefused):
        verify_bound_plan("not json")


def test_verify_accepts_a_table_scan_only_of_the_plans_own_stand_ins() -> None:
    con = duckdb.connect()
    try:
        con.execute('CREATE TEMP TABLE "stand_in" (a INTEGER)')
        con.execute('CREATE TABLE main."kept" (a INTEGER)')
        stand_in = con.execute('EXPLAIN (FORMAT JSON) SELECT a FROM "stand_in"').fetchall()[0][1]
        kept = con.execute('EXPLAIN (FORMAT JSON) SELECT a FROM main."kept"').fetchall()[0][1]
    finally:
        con.close()
    assert "SEQ_SCAN" in verify_bound_plan(stand_in, stand_ins=frozenset({"stand_in"}))
    for plan, names in [(stand_in, set()), (stand_in, {"other"}), (kept, {"kept"})]:
        with pytest.raises(PlanRefused, match="SEQ_SCAN"):
            verify_bound_plan(plan, stand_ins=frozenset(names))


def test_each_scan_is_bound_once_and_new_texts_bind_only_the_skeleton(fresh, monkeypatch) -> None:
    """The bound-plan check of a new text binds its skeleton over the scans' stand-ins; each
    governed scan is bound alone once, and so is each row filter's key set query, when the
    scan is compiled (the final SQL, which runs, is unchanged)."""
    from meshsim import engine as duck
    from meshsim.query.keysets import KEYS_ALIAS
    from meshsim.query.rewrite import SCAN_MARK

    engine, _ = fresh
    calls: list[str] = []
    for name in ("explain_bound", "explain_with_stand_ins"):
        real = getattr(duck, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            calls.append("key set" if KEYS_ALIAS in str(args[1]) else _name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(duck, name, counted)
    join = "FROM customer.customer c JOIN sales.orders o ON o.o_custkey = c.c_custkey"
    session = engine.session("eu_marketing_analyst")
    first = session.sql(f"SELECT count(*) AS n {join}").fetchall()
    assert calls == [
        "key set",  # customers: the nations of the consumer's region
        "key set",  # orders: the customers of the consumer's region
        "explain_bound",
        "explain_bound",
        "explain_with_stand_ins",
    ]
    names = list(engine.duck.stand_ins.values())
    assert len(names) == 2 and all(n.startswith(SCAN_MARK) for n in names)
    calls.clear()
    again = session.sql(f"SELECT count(o.o_orderkey) AS n {join} WHERE true").fetchall()
    assert calls == ["explain_with_stand_ins"] and again == first


def test_a_warmed_engine_binds_no_scan_on_the_first_query(fresh, monkeypatch) -> None:
    """warm() compiles and checks the scans a consumer's queries would bind, and makes their
    stand-ins: the first query then pays only for its own skeleton."""
    from meshsim import engine as duck

    engine, audit = fresh
    engine.warm("eu_marketing_analyst")
    policies, fingerprint = engine.planner.current_policies()
    access = engine.planner.access_for("eu_marketing_analyst", fingerprint, policies)
    readable = [t for t in engine.spec.tables() if t.domain != "meshsim" and access(t.ref).granted]
    assert len(engine.duck.stand_ins) == len(readable) > 0
    records = len(audit.records)
    calls: list[str] = []
    real = duck.explain_bound
    monkeypatch.setattr(
        duck, "explain_bound", lambda *a, **k: calls.append("bound") or real(*a, **k)
    )
    rows = engine.session("eu_marketing_analyst").sql("SELECT count(*) AS n FROM sales.orders")
    assert rows.fetchall()[0][0] > 0 and calls == []
    assert len(audit.records) == records + 1  # the warm-up itself is not a query


def test_a_planted_scan_the_parse_tree_does_not_show_is_refused(mesh: MeshData) -> None:
    """With the name rules of validate switched off, the file-path hole reaches DuckDB: the
    verify-plan rule alone must refuse it, and the attempt is audited as refused."""
    engine, audit = make_engine(mesh)

    def validate_without_name_rules(engine, attempt: Attempt) -> None:
        from meshsim.query.validate import balance_connectives, check_syntax

        assert isinstance(attempt.statement, exp.Query)
        check_syntax(attempt.statement, what="the query")
        attempt.tree = balance_connectives(attempt.statement)

    engine.plan_rules = tuple(
        Rule("validate", validate_without_name_rules) if r.name == "validate" else r
        for r in PLAN_RULES
    )
    path = os.path.join(mesh.path("customer.customer"), "*.parquet")
    sql = (
        f'WITH RECURSIVE "{path}" AS (SELECT count(*) AS c FROM "{path}" UNION ALL SELECT c '
        f'FROM "{path}" WHERE false) SELECT c FROM "{path}"'
    )
    try:
        with pytest.raises(PlanRefused, match="PARQUET_SCAN"):
            engine.session("external_partner").sql(sql)
        assert audit.records[-1].decision == "refused"
        # and the same engine still answers honest queries
        ok = engine.session("external_partner").sql("SELECT count(*) FROM supply.part")
        assert ok.fetchall()[0][0] > 0
    finally:
        engine.close()


def test_a_planted_function_is_refused_on_duckdbs_parse_of_the_skeleton(
    mesh: MeshData, monkeypatch
) -> None:
    """With validate's syntax allowlist switched off, a function meshsim does not allow
    reaches verify-plan: DuckDB's parse of the skeleton over the stand-ins, checked in the
    verifier's one call, refuses it, and the attempt is audited as refused."""
    from meshsim import engine as duck

    engine, audit = make_engine(mesh)

    def validate_without_allowlist(engine, attempt: Attempt) -> None:
        from meshsim.query.validate import balance_connectives

        assert isinstance(attempt.statement, exp.Query)
        attempt.tree = balance_connectives(attempt.statement)

    engine.plan_rules = tuple(
        Rule("validate", validate_without_allowlist) if r.name == "validate" else r
        for r in PLAN_RULES
    )
    checked: list[str] = []
    real = duck.explain_with_stand_ins

    def watched(db, sql, stand_ins, *, check, **kwargs):
        def spy(serialized: str) -> None:
            checked.append(sql)
            check(serialized)

        return real(db, sql, stand_ins, check=spy, **kwargs)

    monkeypatch.setattr(duck, "explain_with_stand_ins", watched)
    session = engine.session("external_partner")
    try:
        with pytest.raises(QueryError, match="final safety check.*function 'current_setting'"):
            session.sql("SELECT current_setting('threads') AS t, p_partkey FROM supply.part")
        assert len(checked) == 1 and "CURRENT_SETTING" in checked[0]
        assert audit.records[-1].decision == "refused"
    finally:
        engine.close()


# -- the audit decision ----------------------------------------------------------------------


def test_audit_decision_is_one_function() -> None:
    from meshsim.engine import EngineFailure
    from meshsim.errors import PolicyError, StorageError

    assert audit_decision(None) == "allowed"
    assert audit_decision(QueryError("bad")) == "refused"
    assert audit_decision(AccessDenied("no")) == "refused"
    assert audit_decision(PlanRefused("planted")) == "refused"
    assert audit_decision(EngineFailure("ConversionException")) == "error"
    assert audit_decision(QueryTimeout("slow")) == "error"
    assert audit_decision(ResultTooLarge("big")) == "error"
    assert audit_decision(PolicyError("broken policy")) == "error"
    assert audit_decision(StorageError("gone")) == "error"
    assert audit_decision(KeyError("x")) == "error"


def test_an_internal_error_is_audited_as_error(fresh, monkeypatch) -> None:
    engine, audit = fresh

    def broken(engine, attempt):
        raise KeyError("boom")

    engine.plan_rules = (*PLAN_RULES[:2], Rule("resolve", broken))
    with pytest.raises(QueryError, match=r"could not plan or run the query \(KeyError\)"):
        engine.session("governance_admin").sql("SELECT 1 AS x")
    assert audit.records[-1].decision == "error"
    assert audit.records[-1].reason == "internal error (KeyError)"


@pytest.mark.parametrize("stage", ["plan", "execute"])
def test_an_interrupted_query_is_audited_as_cancelled(fresh, stage, monkeypatch) -> None:
    """Ctrl-C in a notebook or the Python API raised KeyboardInterrupt through the audit's
    ``finally`` with no error recorded: the attempt was audited as allowed."""
    engine, audit = fresh

    def interrupted(engine, attempt):
        raise KeyboardInterrupt

    if stage == "plan":
        engine.plan_rules = (*PLAN_RULES[:2], Rule("resolve", interrupted))
    else:
        monkeypatch.setattr(pipeline, "EXECUTE", Rule("execute", interrupted))
    with pytest.raises(KeyboardInterrupt):
        engine.session("governance_admin").sql("SELECT 1 AS x")
    assert (audit.records[-1].decision, audit.records[-1].reason) == (
        "error",
        "the query was cancelled",
    )


# -- resource bounds ---------------------------------------------------------------------


def test_result_rows_are_bounded(mesh: MeshData) -> None:
    engine, audit = make_engine(mesh, limits=EngineLimits(max_result_rows=100))
    try:
        assert (
            engine.session("governance_admin")
            .sql("SELECT * FROM customer.customer LIMIT 100")
            .arrow()
            .num_rows
            == 100
        )
        with pytest.raises(ResultTooLarge, match=r"more than 100 rows \(limit max_result_rows\)"):
            engine.session("governance_admin").sql("SELECT * FROM customer.customer")
        assert audit.records[-1].decision == "error"
    finally:
        engine.close()


def test_result_bytes_are_bounded(mesh: MeshData) -> None:
    engine, _ = make_engine(mesh, limits=EngineLimits(max_result_bytes=1000))
    try:
        with pytest.raises(ResultTooLarge, match=r"1,000 bytes \(limit max_result_bytes\)"):
            engine.session("governance_admin").sql("SELECT * FROM customer.customer")
    finally:
        engine.close()


def test_the_timeout_covers_planning(mesh: MeshData) -> None:
    engine, audit = make_engine(mesh, timeout_s=0.3)

    def slow_bind(engine, attempt):
        time.sleep(0.5)
        pipeline.bind(engine, attempt)

    engine.plan_rules = tuple(
        Rule("bind", slow_bind) if r.name == "bind" else r for r in PLAN_RULES
    )
    try:
        with pytest.raises(QueryTimeout, match=r"longer than 0.3 s \(planning and execution\)"):
            engine.session("governance_admin").sql("SELECT count(*) FROM customer.nation")
        assert audit.records[-1].decision == "error"
    finally:
        engine.close()


def test_query_text_size_is_bounded(mesh: MeshData) -> None:
    engine, audit = make_engine(mesh, bounds=QueryBounds(max_chars=1000))
    try:
        with pytest.raises(QueryError, match=r"1,0\d\d characters long; .* at most 1,000"):
            engine.session("governance_admin").sql("SELECT 1 AS x " + " " * 1000)
        assert audit.records[-1].decision == "refused"
    finally:
        engine.close()


def test_a_6000_term_predicate_is_refused_fast(fresh) -> None:
    engine, audit = fresh
    sql = "SELECT count(*) FROM sales.orders WHERE " + " AND ".join(
        f"o_orderkey <> {i}" for i in range(6000)
    )
    started = time.perf_counter()
    with pytest.raises(QueryError, match=r"meshsim accepts at most .* \(limit max_query_"):
        engine.session("governance_admin").sql(sql)
    assert audit.records[-1].decision == "refused"
    assert time.perf_counter() - started < 10  # was 26 s of planning and 72 s past a timeout


def test_a_predicate_over_the_node_limit_is_refused(fresh) -> None:
    engine, _ = fresh
    sql = "SELECT count(*) FROM sales.orders WHERE " + " AND ".join(
        f"o_orderkey <> {i}" for i in range(2100)
    )
    assert len(sql) < 100_000
    with pytest.raises(QueryError, match=r"syntax nodes; meshsim accepts at most 10,000"):
        engine.session("governance_admin").sql(sql)


def test_long_predicate_chains_are_balanced_so_planning_stays_linear() -> None:
    import sqlglot

    from meshsim.query.validate import balance_connectives

    terms = [f"x <> {i}" for i in range(1024)]
    tree = sqlglot.parse_one("SELECT 1 FROM t WHERE " + " AND ".join(terms), read="duckdb")
    balanced = validate_query(balance_connectives(tree), bounds=QueryBounds(max_nodes=100_000))

    def depth(node) -> int:
        best, stack = 0, [(node, 0)]
        while stack:
            current, d = stack.pop()
            best = max(best, d)
            stack.extend((child, d + 1) for child in current.iter_expressions())
        return best

    assert depth(balanced) < 40  # log2(1024) connectives (and their parentheses), not 1024
    again = sqlglot.parse_one(balanced.sql(dialect="duckdb"), read="duckdb")
    assert sorted(c.sql() for c in again.find_all(sqlglot.exp.NEQ)) == sorted(
        c.sql() for c in tree.find_all(sqlglot.exp.NEQ)
    )


def test_a_lone_surrogate_is_refused_and_audited(fresh) -> None:
    engine, audit = fresh
    with pytest.raises(QueryError, match="unpaired surrogate"):
        engine.session("governance_admin").sql("SELECT '\udcff' AS x")
    assert audit.records[-1].decision == "refused"
    assert audit.records[-1].sql == "SELECT '\\udcff' AS x"


@pytest.mark.parametrize("text", [None, 42, b"SELECT 1"])
def test_a_query_that_is_not_text_is_refused_and_audited(fresh, text) -> None:
    engine, audit = fresh
    with pytest.raises(QueryError, match="must be a string of SQL"):
        engine.session("governance_admin").sql(text)
    assert audit.records[-1].decision == "refused" and audit.records[-1].sql == repr(text)


# -- explain shows no storage -------------------------------------------------------------


@pytest.fixture(scope="module")
def partitioned_mesh(tmp_path_factory: pytest.TempPathFactory) -> MeshData:
    data = build(tmp_path_factory.mktemp("partitioned"))
    table = data.read("customer.customer")
    write_deltalake(
        data.path("customer.customer"),
        table,
        mode="overwrite",
        partition_by=["c_mktsegment", "c_address"],
        schema_mode="overwrite",
    )
    return data


def test_explain_shows_no_partition_values_or_paths(partitioned_mesh: MeshData) -> None:
    engine, _ = make_engine(partitioned_mesh)
    try:
        session = engine.session("eu_marketing_analyst")
        e = session.explain("SELECT c_mktsegment, c_address FROM customer.customer")
        sql = e.governed_sql
        for segment in ("BUILDING", "AUTOMOBILE", "MACHINERY", "HOUSEHOLD", "FURNITURE"):
            assert segment not in sql
        assert SECRET not in sql and "Main St" not in sql
        assert str(partitioned_mesh.root) not in sql and ".parquet" not in sql
        assert "<customer.customer v1:" in sql
        # the query itself still runs, with the partition values masked and filtered
        rows = session.sql("SELECT c_address FROM customer.customer").fetchall()
        assert rows and all(SECRET not in str(r) for r in rows)
    finally:
        engine.close()


def test_a_damaged_file_is_named_without_its_partition_folders(
    partitioned_mesh: MeshData, tmp_path
) -> None:
    import shutil

    from meshsim.errors import StorageError

    root = tmp_path / "copy"
    shutil.copytree(partitioned_mesh.root, root)
    data = MeshData(partitioned_mesh.spec, root)
    victim = sorted(glob.glob(os.path.join(data.path("customer.customer"), "*", "*", "*.parquet")))
    victim_path = victim[0]
    with open(victim_path, "r+b") as handle:
        handle.truncate(10)
    engine, audit = make_engine(data)
    try:
        with pytest.raises(StorageError) as info:
            engine.session("eu_marketing_analyst").sql("SELECT count(*) FROM customer.customer")
        message = info.value.message
        assert os.path.basename(victim_path) in message
        assert "c_mktsegment=" not in message and "Main St" not in message
        assert audit.records[-1].decision == "error"
        assert "c_mktsegment=" not in audit.records[-1].reason
    finally:
        engine.close()
