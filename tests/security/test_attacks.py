"""One group of tests per attack class of GOVERNANCE.md (numbers match)."""

from __future__ import annotations

import threading
import time

import pytest

from meshsim.errors import AccessDenied, MeshsimError, QueryError
from meshsim.query.audit import MemoryAuditSink
from meshsim.query.crosscheck import crosscheck
from meshsim.query.session import GovernedEngine
from tests.query.meshdata import CANARY, MESH_KEY, SECRET
from tests.query.meshfixtures import refused

EU = "eu_marketing_analyst"


def no_canary(result) -> None:
    text = str(result.arrow().to_pylist()) + str(result.columns)
    assert CANARY not in text and SECRET not in text and "999999" not in text


# 1. statement smuggling -------------------------------------------------------------------
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; DROP TABLE x",
        "SELECT 1; SELECT c_comment FROM customer.customer",
        "CREATE TABLE t AS SELECT 1",
        "INSERT INTO t VALUES (1)",
        "DELETE FROM t",
        "UPDATE t SET x = 1",
        "COPY (SELECT 1) TO '/tmp/x.csv'",
        "ATTACH '/tmp/x.db' AS x",
        "DETACH x",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET threads = 64",
        "SET VARIABLE v = 1",
        "RESET threads",
        "USE memory",
        "PRAGMA database_list",
        "CALL pragma_version()",
        "CHECKPOINT",
        "EXPORT DATABASE '/tmp/x'",
        "EXPLAIN ANALYZE SELECT 1",
        "EXPLAIN (FORMAT JSON) SELECT 1",
        "EXPLAIN CREATE TABLE t AS SELECT 1",
        "DESCRIBE supply.supplier",
        "DESCRIBE t",
        "SHOW DATABASES",
        "SHOW customer.customer",
        "SUMMARIZE supply.supplier",
        "SUMMARIZE SELECT c_acctbal FROM customer.customer",
        "PIVOT customer.nation ON n_name",
        "SELECT * INTO t FROM customer.nation",
        "CREATE MACRO m(x) AS x",
        "BEGIN TRANSACTION",
        "VACUUM",
    ],
)
def test_1_statement_smuggling(run, sql: str) -> None:
    refused(run, EU, sql)


def test_1_crosscheck_refuses_unexpected_tables() -> None:
    import duckdb

    con = duckdb.connect()
    doc = con.execute("SELECT json_serialize_sql(?)", ["SELECT * FROM secret_table"]).fetchone()
    with pytest.raises(QueryError):
        crosscheck(doc[0], ctes=frozenset(), files=frozenset())
    doc = con.execute(
        "SELECT json_serialize_sql(?)", ["SELECT * FROM read_parquet(['/etc/x.parquet'])"]
    ).fetchone()
    with pytest.raises(QueryError):
        crosscheck(doc[0], ctes=frozenset(), files=frozenset({"/data/a.parquet"}))
    con.close()


# 2. raw file access -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_parquet('{root}/customer/customer/*.parquet')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_json('/etc/x.json')",
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_blob('/etc/passwd')",
        "SELECT * FROM glob('{root}/*')",
        "SELECT * FROM parquet_metadata('{root}/x.parquet')",
        "SELECT * FROM '{root}/customer/customer/x.parquet'",
        'SELECT * FROM "{root}/customer/customer/x.parquet"',
        "SELECT * FROM delta_scan('{root}/customer/customer')",
        "SELECT read_text('/etc/passwd')",
        "SELECT * FROM read_csv_auto('/etc/passwd')",
    ],
)
def test_2_raw_file_access(run, mesh, sql: str) -> None:
    refused(run, EU, sql.format(root=mesh.root))


def test_2_engine_cannot_read_outside_allowed_roots(engine) -> None:
    from meshsim import engine as duck

    with pytest.raises(duck.EngineFailure):
        duck.run_arrow(engine.connection, "SELECT * FROM read_text('/etc/hostname')", timeout_s=5)
    with pytest.raises(duck.EngineFailure):
        duck.run_arrow(engine.connection, "SET lock_configuration = false", timeout_s=5)


# 3. dynamic SQL ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM query('SELECT * FROM customer.customer')",
        "SELECT * FROM query_table('customer.customer')",
        "SELECT json_execute_serialized_sql('x')",
        "SELECT query('SELECT 1')",
        "SELECT getvariable('v')",
        "SELECT eval('1')",
    ],
)
def test_3_dynamic_sql(run, sql: str) -> None:
    refused(run, EU, sql)


# 4. name resolution -----------------------------------------------------------------------
def test_4_cte_named_like_policy_tables_does_not_capture_filter(run) -> None:
    # regional_customers looks up customer.nation / customer.region; a consumer CTE named
    # like them (or like the region value) must not change the policy's lookup.
    sql = """
        WITH region AS (SELECT 'EUROPE' AS r_name, 0 AS r_regionkey),
             nation AS (SELECT 0 AS n_nationkey, 0 AS n_regionkey)
        SELECT c_comment FROM customer.customer"""
    r = run(EU, sql)
    no_canary(r)
    assert r.num_rows == 40


def test_4_cte_named_like_the_table(run) -> None:
    r = run(EU, "WITH customer AS (SELECT * FROM customer.customer) SELECT c_comment FROM customer")
    no_canary(r)
    refused(run, EU, "WITH t AS (SELECT * FROM t) SELECT * FROM t")


@pytest.mark.parametrize(
    "sql",
    [
        'SELECT c_comment FROM "CUSTOMER"."Customer"',
        "SELECT c_comment FROM CUSTOMER.CUSTOMER",
        "SELECT x.c_comment FROM (SELECT * FROM customer.customer) x",
        "SELECT c_comment FROM customer.customer WHERE c_custkey IN "
        "(SELECT c_custkey FROM customer.customer)",
    ],
)
def test_4_case_quoting_nesting(run, sql: str) -> None:
    no_canary(run(EU, sql))


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM memory.customer.customer",
        "SELECT * FROM system.main.duckdb_settings",
        "SELECT * FROM customer",
        "SELECT * FROM main.customer",
    ],
)
def test_4_catalog_and_unknown_names(run, sql: str) -> None:
    refused(run, EU, sql)


# 5. column expansion ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT t FROM customer.customer t",
        "SELECT to_json(t) FROM customer.customer t",
        "SELECT t['c_acctbal'] FROM customer.customer t",
        "SELECT t.c_acctbal FROM customer.customer t",
        "SELECT COLUMNS('c_.*') FROM customer.customer",
        "SELECT COLUMNS(*) FROM customer.customer",
        "SELECT #6 FROM customer.customer",
        "SELECT rowid FROM customer.customer",
        "SELECT filename FROM customer.customer",
        "SELECT a FROM customer.customer t(a, b, c)",
        "SELECT struct_pack(*) FROM customer.customer",
        "SELECT row(c_custkey) FROM customer.customer",
    ],
)
def test_5_column_expansion(run, sql: str) -> None:
    refused(run, EU, sql)


def test_5_star_only_visible(run) -> None:
    r = run(EU, "SELECT * FROM customer.customer")
    assert "c_acctbal" not in r.columns
    no_canary(r)
    no_canary(
        run(
            EU,
            "SELECT c.* FROM customer.customer c JOIN sales.orders o ON o.o_custkey = c.c_custkey",
        )
    )


# 6. denied or masked columns outside the projection ----------------------------------------
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT c_custkey FROM customer.customer WHERE c_acctbal > 0",
        "SELECT c_custkey FROM customer.customer ORDER BY c_acctbal DESC LIMIT 1",
        "SELECT max(c_acctbal) FROM customer.customer",
        "SELECT count(*) FROM customer.customer GROUP BY c_acctbal",
        "SELECT 1 FROM customer.customer a JOIN customer.customer b ON a.c_acctbal = b.c_acctbal",
        "SELECT c_custkey FROM customer.customer WHERE EXISTS "
        "(SELECT 1 FROM customer.customer x WHERE x.c_acctbal > 0)",
        "WITH x AS (SELECT c_acctbal AS a FROM customer.customer) SELECT * FROM x",
        "SELECT sum(c_acctbal) OVER () FROM customer.customer",
    ],
)
def test_6_denied_column_anywhere(run, sql: str) -> None:
    err = refused(run, EU, sql)
    assert isinstance(err, AccessDenied) and err.column == "c_acctbal"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT c_custkey FROM customer.customer WHERE c_address LIKE '%SECRETPII%'",
        "SELECT min(c_phone), max(c_phone) FROM customer.customer",
        "SELECT c_custkey FROM customer.customer ORDER BY c_name LIMIT 1",
        "SELECT c_name FROM customer.customer INTERSECT SELECT 'Customer#00003-SECRETPII'",
        "SELECT c_address, count(*) FROM customer.customer GROUP BY c_address",
    ],
)
def test_6_masked_columns_are_masked_everywhere(run, sql: str) -> None:
    r = run(EU, sql)
    no_canary(r)
    if "LIKE" in sql or "INTERSECT" in sql:
        assert r.num_rows == 0


# 7. weak masks ----------------------------------------------------------------------------
def test_7_keyed_hash_not_reversible_with_range(run) -> None:
    # An attacker hashes every candidate value without the key: nothing matches.
    sql = """
        SELECT count(*) FROM customer.customer c
        JOIN range(0, 1000) r(i) ON c.c_name = sha256('Customer#' || lpad(CAST(i AS VARCHAR), 5, '0')
                                                     || '-SECRETPII')"""
    assert run("finance_controller", sql).fetchall() == [(0,)]


def test_7_hashes_do_not_link_across_columns() -> None:
    import duckdb
    from sqlglot import exp

    from meshsim.query.masks import keyed_hash

    value = exp.Literal.string("same value")
    varchar = exp.DataType.build("varchar")
    a = keyed_hash(value, varchar, key=MESH_KEY, column_ref="customer.customer.c_address")
    b = keyed_hash(value, varchar, key=MESH_KEY, column_ref="supply.supplier.s_address")
    c = keyed_hash(
        value, varchar, key=b"another-key-0123456789", column_ref="supply.supplier.s_address"
    )
    row = duckdb.sql(f"SELECT {a.sql('duckdb')}, {b.sql('duckdb')}, {c.sql('duckdb')}").fetchall()[
        0
    ]
    assert len(set(row)) == 3


def test_7_masks_keep_type_and_hide_shape(run) -> None:
    r = run(
        EU, "SELECT DISTINCT length(c_phone) AS n, length(c_address) AS m FROM customer.customer"
    ).fetchall()
    assert r == [(8, 4)]  # nulls and short values look like every other value


# 8. statistics and metadata ---------------------------------------------------------------
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT stats(c_custkey) FROM customer.customer",
        "SELECT * FROM duckdb_tables()",
        "SELECT * FROM duckdb_views()",
        "SELECT * FROM duckdb_settings()",
        "SELECT current_setting('allowed_directories')",
        "SELECT current_query()",
        "SELECT * FROM information_schema.views",
        "SELECT * FROM system.information_schema.tables",
        "SELECT * FROM memory.information_schema.columns",
        "SELECT * FROM pg_catalog.pg_tables",
        "SELECT * FROM pragma_storage_info('x')",
        "SELECT * FROM duckdb_functions()",
        "SELECT version()",
        "SELECT * FROM duckdb_secrets()",
    ],
)
def test_8_metadata(run, sql: str) -> None:
    refused(run, EU, sql)


# 9. row filter order ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT c_custkey FROM customer.customer WHERE error(c_comment) IS NULL",
        "SELECT c_custkey FROM customer.customer WHERE CAST(c_comment AS INTEGER) = 1",
        "SELECT 1 / (c_nationkey - 1) FROM customer.customer",
        "SELECT c_custkey FROM customer.customer WHERE "
        "CASE WHEN c_comment LIKE 'CANARY%' THEN CAST(c_comment AS INTEGER) ELSE 0 END = 0",
    ],
)
def test_9_error_on_hidden_rows_does_not_reveal_them(run, sql: str) -> None:
    try:
        r = run(EU, sql)
    except QueryError as err:
        assert CANARY not in str(err) and SECRET not in str(err)
    else:
        no_canary(r)
        assert r.num_rows == 40


def test_9_engine_error_text_is_withheld(run) -> None:
    records = run.engine.audit.records
    with pytest.raises(QueryError) as info:
        run("governance_admin", "SELECT CAST(c_comment AS INTEGER) FROM customer.customer")
    err = info.value
    assert records[-1].decision == "error"  # an engine failure, not a refusal
    assert "visible" not in str(err) and CANARY not in str(err)
    assert CANARY not in records[-1].reason


# 10. layer pitfalls -----------------------------------------------------------------------
def test_10_caches_are_keyed_by_consumer(run) -> None:
    sql = "SELECT count(*) FROM customer.customer"
    assert run("governance_admin", sql).fetchall() == [(200,)]
    assert run(EU, sql).fetchall() == [(40,)]
    assert run("governance_admin", sql).fetchall() == [(200,)]


def test_10_policy_change_takes_effect(mesh) -> None:
    from meshsim.spec.models import Policies

    state = {"policies": mesh.spec.policies}
    sink = MemoryAuditSink()
    eng = GovernedEngine(
        mesh.spec,
        locate=mesh.path,
        mesh_key=MESH_KEY,
        allowed_paths=[str(mesh.root)],
        audit=sink,
        policies=lambda consumer: state["policies"],
    )
    s = eng.session("external_partner")
    assert s.sql("SELECT count(*) FROM supply.part").fetchall() == [(50,)]
    state["policies"] = Policies()
    with pytest.raises(AccessDenied):
        s.sql("SELECT count(*) FROM supply.part")
    assert [r.decision for r in sink.records] == ["allowed", "refused"]
    eng.close()


def test_10_attributes_are_bound_as_literals(mesh) -> None:
    # A hostile attribute value cannot change the filter's SQL.
    from meshsim.query.filters import compile_filter

    rf = next(f for f in mesh.spec.policies.row_filters if f.name == "regional_customers")
    out = compile_filter(
        rf,
        mesh.spec,
        {"region": "x' OR 1=1 --"},
        lambda ref: __import__("sqlglot").exp.select("*").from_("t"),
    )
    assert "'x'' OR 1=1 --'" in out.sql(dialect="duckdb")


def test_10_every_attempt_is_audited(engine, audit) -> None:
    s = engine.session(EU)
    before = len(audit)
    for sql in [
        "SELECT 1",
        "SELECT c_acctbal FROM customer.customer",
        "ATTACH 'x'",
        "SELECT CAST(c_comment AS INT) FROM customer.customer",
    ]:
        try:
            s.sql(sql)
        except MeshsimError:
            pass
    assert len(audit) - before == 4
    assert audit.records[-1].decision == "error"


def test_10_mesh_key_never_surfaces(engine, audit) -> None:
    e = engine.session(EU).explain("SELECT c_name FROM customer.customer")
    assert MESH_KEY.hex() not in str(e)
    assert all(MESH_KEY.hex() not in (r.sql + r.reason) for r in audit.records)


# 11. resources ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM range(1000000000000)",
        "SELECT * FROM generate_series(1, 1e12)",
    ],
)
def test_11_huge_series_refused(run, sql: str) -> None:
    refused(run, EU, sql)


def test_11_timeout_interrupts(mesh) -> None:
    eng = GovernedEngine(
        mesh.spec,
        locate=mesh.path,
        mesh_key=MESH_KEY,
        allowed_paths=[str(mesh.root)],
        timeout_s=0.5,
        threads=1,
    )
    sql = (
        "SELECT count(*) FROM sales.lineitem a, sales.lineitem b, sales.lineitem c, "
        "sales.lineitem d WHERE a.l_comment || b.l_comment || c.l_comment <> d.l_comment"
    )
    start = time.perf_counter()
    with pytest.raises(QueryError):
        eng.session("governance_admin").sql(sql)
    assert time.perf_counter() - start < 5
    eng.close()


@pytest.mark.parametrize("depth", [45, 60, 500, 5000])
def test_11_deep_nesting_is_refused_with_the_limit(run, depth: int) -> None:
    err = refused(run, EU, "SELECT " + "(" * depth + "1" + ")" * depth + " AS x")
    assert f"nests parentheses {depth} levels deep" in err.message
    assert "at most 32" in err.message


def test_11_nesting_within_the_limit_runs(run) -> None:
    assert run(EU, "SELECT " + "(" * 30 + "1" + ")" * 30 + " AS x").fetchall() == [(1,)]


def test_sessions_are_thread_safe(engine) -> None:
    errors = []

    def work(consumer: str, expected: int) -> None:
        try:
            for _ in range(5):
                got = engine.session(consumer).sql("SELECT count(*) FROM customer.customer")
                assert got.fetchall() == [(expected,)]
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(c, n))
        for c, n in [(EU, 40), ("governance_admin", 200), ("finance_controller", 200)] * 2
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_reserved_scan_marker_is_refused(run) -> None:
    refused(run, EU, "SELECT '\"__meshsim_scan_0\"' AS x")
    refused(run, EU, 'SELECT 1 FROM customer.customer AS "__meshsim_scan_x"')
