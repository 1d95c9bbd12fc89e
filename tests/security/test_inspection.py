"""DESCRIBE, SUMMARIZE, SHOW TABLES, information_schema and EXPLAIN answer from each
consumer's own view: never a hidden table, a hidden column, a filtered-out row or a raw value
of a masked column; and they agree with what the consumer can query (one answer per
question)."""

from __future__ import annotations

import pytest

from meshsim.errors import AccessDenied
from meshsim.policy.access import resolve_access
from tests.query.meshdata import CANARY, MESH_KEY, SECRET, MeshData
from tests.query.meshfixtures import refused

CONSUMERS = [
    "governance_admin",
    "eu_marketing_analyst",
    "finance_controller",
    "supply_planner",
    "external_partner",
]
HIDDEN_NUMBER = "999999"


def visible(mesh: MeshData, consumer: str) -> dict[str, list[str]]:
    """The oracle: per granted table, its visible columns, from the policy resolver."""
    out = {}
    for table in mesh.spec.tables():
        access = resolve_access(mesh.spec, consumer, table.ref)
        if access.granted:
            out[table.ref] = access.visible_columns
    return out


def no_leak(result, consumer: str, mesh: MeshData) -> None:
    text = str(result.arrow().to_pylist()) + str(result.columns)
    for ref in mesh.spec.tables():
        if ref.ref not in visible(mesh, consumer):
            assert f"'{ref.name}'" not in text and ref.ref not in text
    if consumer != "governance_admin":
        assert SECRET not in text, text[:500]
    assert str(mesh.root) not in text and ".parquet" not in text
    assert MESH_KEY.hex() not in text


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_show_tables_lists_what_the_consumer_can_query(run, mesh, consumer) -> None:
    want = visible(mesh, consumer)
    shown = [name for (name,) in run(consumer, "SHOW TABLES").fetchall()]
    assert shown == sorted(want)
    for table in mesh.spec.tables():  # one answer per question: listed iff queryable
        if table.ref in want:
            run(consumer, f"SELECT count(*) FROM {table.ref}")
        else:
            with pytest.raises(AccessDenied):
                run(consumer, f"SELECT count(*) FROM {table.ref}")
    everything = run(consumer, "SHOW ALL TABLES")
    assert everything.columns == [
        "database",
        "schema",
        "name",
        "column_names",
        "column_types",
        "temporary",
    ]
    rows = everything.fetchall()
    assert {f"{r[1]}.{r[2]}": r[3] for r in rows} == want
    no_leak(everything, consumer, mesh)


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_describe_shows_visible_columns_with_the_types_read(run, mesh, consumer) -> None:
    want = visible(mesh, consumer)
    all_tables = run(consumer, "SHOW ALL TABLES").fetchall()
    types = {f"{r[1]}.{r[2]}": dict(zip(r[3], r[4], strict=True)) for r in all_tables}
    for table in mesh.spec.tables():
        sql = f"DESCRIBE {table.ref}"
        if table.ref not in want:
            refused(run, consumer, sql)
            continue
        described = run(consumer, sql)
        rows = described.fetchall()
        assert [r[0] for r in rows] == want[table.ref]
        # a masked column has the type of its mask, and every listing says the same
        selected = run(consumer, f"SELECT * FROM {table.ref} LIMIT 0")
        assert selected.columns == want[table.ref]
        assert {r[0]: r[1] for r in rows} == types[table.ref]
        no_leak(described, consumer, mesh)


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_information_schema_is_the_consumers_own(run, mesh, consumer) -> None:
    want = visible(mesh, consumer)
    tables = run(
        consumer,
        "SELECT table_schema || '.' || table_name FROM information_schema.tables ORDER BY 1",
    ).fetchall()
    assert [t for (t,) in tables] == sorted(want)
    columns = run(
        consumer,
        "SELECT c.table_schema || '.' || c.table_name AS t, c.column_name, c.data_type, "
        "c.ordinal_position FROM information_schema.columns AS c ORDER BY t, c.ordinal_position",
    )
    rows = columns.fetchall()
    got: dict[str, list[str]] = {}
    for ref, column, _, position in rows:
        got.setdefault(ref, []).append(column)
        assert position == len(got[ref])  # positions among visible columns: no gaps
    assert got == want
    for ref in want:
        described = {r[0]: r[1] for r in run(consumer, f"DESCRIBE {ref}").fetchall()}
        assert described == {c: t for r, c, t, _ in rows if r == ref}
    no_leak(columns, consumer, mesh)


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_summarize_counts_the_consumers_rows_and_masked_values(run, mesh, consumer) -> None:
    for ref, columns in visible(mesh, consumer).items():
        summary = run(consumer, f"SUMMARIZE {ref}")
        rows = summary.fetchall()
        assert [r[0] for r in rows] == columns
        (count,) = run(consumer, f"SELECT count(*) FROM {ref}").fetchall()[0]
        assert {r[summary.columns.index("count")] for r in rows} == {count}
        no_leak(summary, consumer, mesh)
        if consumer == "eu_marketing_analyst":
            text = str(rows)
            assert CANARY not in text and HIDDEN_NUMBER not in text


def test_summarize_of_a_query_is_governed(run) -> None:
    rows = run(
        "eu_marketing_analyst",
        "SUMMARIZE SELECT c_comment, c_phone FROM customer.customer WHERE c_custkey > 0",
    ).fetchall()
    assert [r[0] for r in rows] == ["c_comment", "c_phone"]
    assert CANARY not in str(rows) and SECRET not in str(rows)
    assert all(str(r[2]).startswith("****") or "*" in str(r[2]) for r in rows[1:])


@pytest.mark.parametrize(
    ("consumer", "sql"),
    [
        ("eu_marketing_analyst", "DESCRIBE SELECT c_acctbal FROM customer.customer"),
        ("eu_marketing_analyst", "SUMMARIZE SELECT c_acctbal FROM customer.customer"),
        ("eu_marketing_analyst", "SUMMARIZE supply.supplier"),
        ("supply_planner", "DESCRIBE SELECT s_acctbal FROM supply.supplier"),
        ("supply_planner", "DESCRIBE customer.customer"),
        ("external_partner", "SUMMARIZE sales.orders"),
        ("external_partner", "EXPLAIN SELECT * FROM sales.orders"),
        ("eu_marketing_analyst", "EXPLAIN SELECT c_acctbal FROM customer.customer"),
        ("eu_marketing_analyst", "SELECT * FROM information_schema.views"),
        ("eu_marketing_analyst", "SELECT * FROM information_schema.tables AT (VERSION => 1)"),
        ("eu_marketing_analyst", "EXPLAIN ANALYZE SELECT 1"),
    ],
)
def test_inspection_of_what_is_hidden_is_refused(run, consumer: str, sql: str) -> None:
    refused(run, consumer, sql)


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_explain_shows_no_paths_partition_values_or_key(run, mesh, consumer) -> None:
    for ref in visible(mesh, consumer):
        explained = run(consumer, f"EXPLAIN SELECT * FROM {ref}")
        assert explained.columns == ["explain_key", "explain_value"]
        no_leak(explained, consumer, mesh)
        keys = [k for (k, _) in explained.fetchall()]
        assert keys[0] == "consumer" and keys[-1] == "governed_sql"
        text = str(explained.fetchall())
        hidden = set(c.name for c in mesh.spec.table(ref).columns) - set(
            visible(mesh, consumer)[ref]
        )
        for column in hidden:
            assert f"{ref}.{column}:" not in text  # no line for a denied column


def test_inspection_is_audited_as_the_consumers_query(run) -> None:
    records = run.engine.audit.records
    run("eu_marketing_analyst", "DESCRIBE customer.customer")
    assert records[-1].sql == "DESCRIBE customer.customer"
    assert records[-1].decision == "allowed"
    assert records[-1].tables and records[-1].tables[0][0] == "customer.customer"
    assert any(p.startswith("row_filter:") for p in records[-1].policies)


def test_misspelt_column_suggests_only_visible_columns(run) -> None:
    error = refused(run, "eu_marketing_analyst", "SELECT c_acctbl FROM customer.customer")
    assert "c_acctbal" not in error.message
    error = refused(run, "supply_planner", "SELECT s_acctbl FROM supply.supplier")
    assert "s_acctbal" not in error.message
    error = refused(run, "finance_controller", "SELECT c_acctbl FROM customer.customer")
    assert "did you mean 'c_acctbal'?" in error.message  # visible to finance: suggested
    error = refused(run, "eu_marketing_analyst", "SELECT c_custky FROM customer.customer")
    assert "did you mean 'c_custkey'?" in error.message


def test_describe_cannot_be_turned_into_a_raw_read(run) -> None:
    """The wrapper is meshsim's constant text around the verified SQL: a DESCRIBE whose
    query names a file, a catalog table or a function outside the allowlist is refused."""
    for sql in [
        "DESCRIBE 'customer/customer/part-0.parquet'",
        "DESCRIBE SELECT * FROM read_parquet('x.parquet')",
        "DESCRIBE duckdb_tables",
        "SUMMARIZE SELECT * FROM duckdb_settings()",
        "DESCRIBE information_schema.tables; SELECT 1",
    ]:
        refused(run, "eu_marketing_analyst", sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM customer.customer UNPIVOT (v FOR k IN (c_acctbal, c_phone))",
        "SELECT * FROM customer.customer PIVOT (sum(c_acctbal) FOR c_nationkey IN (3, 8))",
        "SELECT * FROM customer.customer PIVOT (count(*) FOR c_acctbal IN (1))",
        "SELECT * FROM supply.supplier PIVOT (count(*) FOR s_nationkey IN (1))",
        "SELECT * FROM customer.customer PIVOT (count(*) FOR c_nationkey IN "
        "(SELECT c_nationkey FROM customer.customer))",
    ],
)
def test_pivot_of_what_is_hidden_is_refused(run, sql: str) -> None:
    refused(run, "eu_marketing_analyst", sql)


def test_unpivot_moves_masked_values_only(run, mesh) -> None:
    result = run(
        "eu_marketing_analyst",
        "SELECT k, v FROM customer.customer UNPIVOT (v FOR k IN (c_name, c_address, c_phone, "
        "c_comment))",
    )
    no_leak(result, "eu_marketing_analyst", mesh)
    assert CANARY not in str(result.fetchall())
