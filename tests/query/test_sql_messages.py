"""What a consumer is told (issue 12): refusals name what the user wrote and say what is
missing; syntax errors and unknown columns point at the text; bound parameters."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from meshsim.errors import QueryError
from tests.query.meshfixtures import make_engine, refused

EU = "eu_marketing_analyst"


# -- refusals name the function or clause as written ------------------------------------------


@pytest.mark.parametrize(
    ("sql", "written", "normalised"),
    [
        ("SELECT list_filter([1], x -> x > 0)", "list_filter", "FILTER"),
        ("SELECT List_Transform([1], x -> x)", "List_Transform", "TRANSFORM"),
        ("SELECT levenshtein(c_phone, 'x') FROM customer.customer", "levenshtein", "LEVENSHTEIN"),
        ("SELECT list_has_any([1], [2])", "list_has_any", "ARRAY_OVERLAPS"),
        ("SELECT json_extract('{}', '$.a')", "json_extract", "JSON_EXTRACT"),
        ("SELECT * FROM Read_Parquet('x.parquet')", "Read_Parquet", "READ_PARQUET"),
    ],
)
def test_refusal_names_the_function_as_written(run, sql, written, normalised) -> None:
    error = refused(run, EU, sql)
    assert f"'{written}'" in error.message
    if normalised != written:
        assert f"'{normalised}'" not in error.message


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("SHOW DATABASES", "the statement SHOW DATABASES is not supported by meshsim"),
        ("PRAGMA database_list", "the statement PRAGMA is not supported by meshsim"),
        ("CHECKPOINT", "the statement CHECKPOINT is not supported by meshsim"),
        ("SELECT {'a': 1}", "struct literals ({...}) is not supported by meshsim"),
        ("PIVOT customer.nation ON n_name", "the PIVOT / UNPIVOT statement is not supported"),
        (
            "SELECT * FROM customer.nation PIVOT (count(*) FOR n_name IN (SELECT 'A'))",
            "PIVOT needs an explicit IN list of literal values",
        ),
        (
            "SELECT * FROM customer.nation UNPIVOT (v FOR k IN (1, 2))",
            "UNPIVOT needs an explicit IN list of columns",
        ),
        ("INSERT INTO t VALUES (1)", "meshsim answers read-only queries"),
        ("CREATE TABLE t AS SELECT 1", "meshsim answers read-only queries"),
    ],
)
def test_refusals_say_what_is_missing(run, sql, says) -> None:
    error = refused(run, EU, sql)
    assert says in error.message
    assert "only read-only queries" not in error.message


# -- positions --------------------------------------------------------------------------------


def test_syntax_error_shows_line_column_and_caret(run) -> None:
    error = refused(run, EU, "SELECT c_custkey,\n  FROM WHERE c_custkey = 1")
    assert "(line 2, column 8)" in error.message
    assert error.message.endswith("LINE 2:   FROM WHERE c_custkey = 1\n               ^^^^^")
    assert error.position == len("SELECT c_custkey,\n  FROM ")
    assert "<Token" not in error.message and "<class" not in error.message


def test_unknown_column_is_pointed_at_with_a_suggestion(run) -> None:
    error = refused(run, EU, "SELECT c_custkey\nFROM customer.customer\nWHERE c_nation = 3")
    assert "column 'c_nation' does not exist" in error.message
    assert "did you mean 'c_nationkey'?" in error.message
    assert error.message.endswith("LINE 3: WHERE c_nation = 3\n              ^^^^^^^^")


def test_unknown_column_inside_explain_and_describe_is_pointed_at(run) -> None:
    for prefix in ("EXPLAIN ", "DESCRIBE "):
        error = refused(run, EU, prefix + "SELECT c_custky FROM customer.customer")
        assert "did you mean 'c_custkey'?" in error.message
        assert "^^^^^^^^" in error.message.splitlines()[-1]


def test_ambiguous_column_says_so(run) -> None:
    error = refused(run, EU, "SELECT c_custkey FROM customer.customer a, customer.customer b")
    assert "column 'c_custkey' is ambiguous" in error.message


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        (
            "SELECT c_custkey, count(*) FROM customer.customer",
            'column "c_custkey" must appear in the GROUP BY clause',
        ),
        (
            "SELECT sum(c_phone) FROM customer.customer",
            "No function matches the given name and argument types 'sum(VARCHAR)'",
        ),
        ("SELECT sum(sum(c_custkey)) FROM customer.customer", "cannot be nested"),
        ("SELECT 1 FROM customer.customer WHERE sum(c_custkey) > 1", "WHERE clause cannot"),
    ],
)
def test_binder_errors_of_known_shapes_are_shown(run, sql: str, says: str) -> None:
    """DuckDB's binder messages of these shapes name only types or the query's own columns;
    the rest of the message (the governed SQL around the error) is never shown."""
    with pytest.raises(QueryError) as info:
        run(EU, sql)
    assert says in info.value.message
    assert "LINE" not in info.value.message and "__meshsim" not in info.value.message


def test_other_engine_messages_stay_withheld(run) -> None:
    with pytest.raises(QueryError) as info:
        run(EU, "SELECT CAST(c_phone AS INTEGER) FROM customer.customer")
    assert "details are withheld" in info.value.message


def test_unknown_alias_says_so(run) -> None:
    error = refused(run, EU, "SELECT x.c_custkey FROM customer.customer AS c")
    assert "'x' is not a table, alias or CTE the query reads" in error.message


# -- bound parameters -------------------------------------------------------------------------


def test_positional_numbered_and_named_parameters(run) -> None:
    sql = "SELECT count(*) FROM customer.customer WHERE c_custkey > {} AND c_mktsegment = {}"
    want = run(EU, sql.format("10", "'BUILDING'")).fetchall()
    assert run(EU, sql.format("?", "?"), [10, "BUILDING"]).fetchall() == want
    assert run(EU, sql.format("$1", "$2"), (10, "BUILDING")).fetchall() == want
    assert (
        run(EU, sql.format("$lo", "$Segment"), {"LO": 10, "segment": "BUILDING"}).fetchall() == want
    )
    assert run(EU, "SELECT $1 + $1, $2", [2, "x"]).fetchall() == [(4, "x")]


@pytest.mark.parametrize(
    ("sql", "first"),
    [
        ("SELECT ? + 1 AS a, ? AS b, '?' AS c", (11, 20, "?")),
        ("FROM customer.customer SELECT ? + c_custkey AS a, ? AS b ORDER BY a LIMIT 1", (13, 20)),
        ("SELECT ? AS a, (SELECT ? + 0) AS b -- ?", (10, 20)),
        ("SELECT * FROM (VALUES (?, ?)) AS v(a, b)", (10, 20)),
    ],
)
def test_question_marks_bind_in_the_order_of_the_text(run, sql, first) -> None:
    """sqlglot walks a tree breadth first: ``SELECT ? + 1, ?`` bound 20 to the first mark."""
    assert run(EU, sql, [10, 20]).fetchall()[0] == first


@pytest.mark.parametrize(
    "value",
    [None, True, 3, -7, 2**70, 1.5, float("inf"), Decimal("12.50"), "it's", date(2024, 1, 2)]
    + [datetime(2024, 1, 2, 3, 4, 5), [1, 2, 3]],
)
def test_parameter_values_round_trip_as_duckdb_binds_them(run, value) -> None:
    import duckdb

    want = duckdb.execute("SELECT ? AS v", [value]).fetchall()
    assert run(EU, "SELECT ? AS v", [value]).fetchall() == want


def test_parameters_inside_inspection_statements(run) -> None:
    sql = "SELECT count(*) FROM customer.customer WHERE c_custkey < ?"
    described = run(EU, f"DESCRIBE {sql}", [10]).fetchall()
    assert [r[:2] for r in described] == [("count_star()", "BIGINT")]
    explained = dict(run(EU, f"EXPLAIN {sql}", [10]).fetchall())
    assert "< 10" in explained["governed_sql"]
    summary = run(EU, f"SUMMARIZE {sql}", [10])
    assert summary.fetchall()[0][0] == "count_star()"


def test_a_parameter_is_a_value_never_syntax(run) -> None:
    injected = "x' OR '1'='1"
    rows = run(EU, "SELECT count(*) FROM customer.customer WHERE c_comment = ?", [injected])
    assert rows.fetchall() == [(0,)]
    hidden = run(EU, "SELECT count(*) FROM customer.customer WHERE c_comment LIKE ?", ["CANARY%"])
    assert hidden.fetchall() == [(0,)]  # filtered rows stay filtered whatever is bound
    named = run(EU, "SELECT ? AS v FROM customer.customer LIMIT 1", ["c_acctbal"])
    assert named.fetchall() == [("c_acctbal",)]  # a string, not a column


@pytest.mark.parametrize(
    ("sql", "params", "says"),
    [
        ("SELECT ?, ?", [1], "takes 2 parameter(s), 1 given"),
        ("SELECT ?", [1, 2], "takes 1 parameter(s), 2 given"),
        ("SELECT $x", {"y": 1}, "no value for parameter $x (given: $y)"),
        ("SELECT $x", {"x": 1, "z": 2}, "parameter $z is not used"),
        ("SELECT ?, $x", [1], "mixes parameter styles"),
        ("SELECT $x", [1], "pass a dict"),
        ("SELECT ?", {"x": 1}, "pass a list"),
        ("SELECT ?", None, "no parameters were given"),
        ("SELECT ?", 5, "must be a list or tuple"),
        ("SELECT ?", [object()], "of type object cannot be bound"),
    ],
)
def test_parameter_mistakes_are_clear_errors(run, sql, params, says) -> None:
    with pytest.raises(QueryError) as info:
        run(EU, sql, params)
    assert says in info.value.message


def test_parameters_are_audited_and_plans_keyed_on_the_bound_text(mesh) -> None:
    engine, audit = make_engine(mesh)
    try:
        session = engine.session(EU)
        sql = "SELECT count(*) FROM customer.customer WHERE c_custkey < ?"
        first = session.sql(sql, [50]).fetchall()
        second = session.sql(sql, [150]).fetchall()
        assert first != second
        assert session.sql(sql, [50]).fetchall() == first
        assert audit.records[-1].sql == f"{sql}\n-- parameters: [50]"
        assert audit.records[-1].decision == "allowed"
        with pytest.raises(QueryError):
            session.sql(sql, [1, 2])
        assert audit.records[-1].decision == "refused"
        assert audit.records[-1].sql.endswith("-- parameters: [1, 2]")
    finally:
        engine.close()
