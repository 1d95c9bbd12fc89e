"""Findings of the outside review of bound parameters, each a regression test: parameters bind
in the order of the text under every wrapper, are validated and keyed on their values for
every statement kind, and are only ever values."""

from __future__ import annotations

import re

import pytest

from meshsim.errors import QueryError
from tests.query.meshfixtures import make_engine

EU = "eu_marketing_analyst"

WRAPPERS = ["", "DESCRIBE ", "SUMMARIZE ", "EXPLAIN ", "EXPLAIN DESCRIBE ", "EXPLAIN SUMMARIZE "]


def _governed_sql(result) -> str:
    return dict(result.fetchall())["governed_sql"]


# -- 1. every wrapper binds its query's parameters in the order of the text --------------------


def test_explain_binds_question_marks_in_the_order_of_the_text(run) -> None:
    sql = (
        "EXPLAIN SELECT o_orderkey FROM sales.orders "
        "WHERE (o_orderkey = ? OR o_orderkey = ?) AND o_totalprice > ?"
    )
    governed = _governed_sql(run(EU, sql, [111, 222, 333]))
    assert re.search(r"= 111\b.*= 222\b.*> 333\b", governed), governed


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_every_wrapper_binds_its_query_in_the_order_of_the_text(run, wrapper) -> None:
    """Breadth first, the second mark (shallower) came before the first."""
    sql = f"{wrapper}SELECT (? + 1) * 2 AS a, ? AS b"
    result = run(EU, sql, [1, "x"])
    if wrapper == "":
        assert result.fetchall() == [(4, "x")]
    elif wrapper.startswith("EXPLAIN"):
        assert re.search(r"\(1 \+ 1\) \* 2 AS .*'x' AS ", _governed_sql(result))
    elif wrapper == "DESCRIBE ":
        assert [r[:2] for r in result.fetchall()] == [("a", "INTEGER"), ("b", "VARCHAR")]
    else:
        assert [r[:2] for r in result.fetchall()] == [("a", "INTEGER"), ("b", "VARCHAR")]


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_every_wrapper_refuses_mixed_parameter_styles(run, wrapper) -> None:
    with pytest.raises(QueryError, match="mixes parameter styles"):
        run(EU, f"{wrapper}SELECT ? AS a, $1 AS b", [1])


# -- 2. EXPLAIN's parameters: validated, keyed on their values, refusals audited ---------------


def test_explain_parameters_are_validated_keyed_and_audited(mesh) -> None:
    engine, audit = make_engine(mesh)
    try:
        session = engine.session(EU)
        sql = "EXPLAIN SELECT c_custkey FROM customer.customer WHERE c_custkey = ?"
        assert "= 111" in _governed_sql(session.sql(sql, [111]))
        assert audit.records[-1].decision == "allowed"
        second = _governed_sql(session.sql(sql, [222]))
        assert "= 222" in second and "111" not in second
        for params in ([b"x"], [1, 2, 3], {"a": 1}, [object()]):
            with pytest.raises(QueryError):
                session.sql(sql, params)
            assert audit.records[-1].decision == "refused", params
        plain = sql.removeprefix("EXPLAIN ")
        for params in ([b"x"], [1, 2, 3], {"a": 1}, [object()]):
            with pytest.raises(QueryError):
                session.sql(plain, params)
            assert audit.records[-1].decision == "refused", params
    finally:
        engine.close()


def test_explain_of_a_bound_query_never_shares_a_plan_with_the_query(mesh) -> None:
    engine, _ = make_engine(mesh)
    try:
        session = engine.session(EU)
        explained = session.sql("EXPLAIN SELECT count(*) FROM customer.customer WHERE 1 = ?", [1])
        assert "governed_sql" in dict(explained.fetchall())
        ran = session.sql("SELECT count(*) FROM customer.customer WHERE 1 = 1").fetchall()
        assert ran == session.sql("SELECT count(*) FROM customer.customer").fetchall()
    finally:
        engine.close()


def test_explain_parses_its_query_within_the_engines_bounds(mesh) -> None:
    """EXPLAIN's query is one string token to sqlglot: the outer nesting check never saw it."""
    from meshsim.query.validate import QueryBounds

    engine, audit = make_engine(mesh, bounds=QueryBounds(max_nesting=3))
    try:
        with pytest.raises(QueryError, match="nests parentheses 5 levels deep"):
            engine.session(EU).sql("EXPLAIN SELECT (((((1)))))")
        assert audit.records[-1].decision == "refused"
    finally:
        engine.close()


# -- 3. a parameter is a value, never a name or a position ------------------------------------

NOT_A_VALUE = "a parameter stands for a value; it cannot name a table/column/alias or a position"


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("SELECT c_name FROM customer.? LIMIT 1", ["customer"]),
        ("WITH x AS (SELECT 42 a) SELECT * FROM ?", ["x"]),
        ("SELECT * FROM customer.customer AS ?", ["t"]),
        ("SELECT * FROM customer.customer AS t(?)", ["a"]),
        ("WITH ? AS (SELECT 1 AS a) SELECT 1", ["x"]),
        ("SELECT 1 AS ?", ["a"]),
        ("SELECT c.? FROM customer.customer c", ["c_name"]),
        ("SELECT ?.c_name FROM customer.customer c", ["c"]),
        ("SELECT * EXCLUDE (?) FROM customer.nation", ["n_comment"]),
        ("SELECT c_mktsegment, count(*) FROM customer.customer GROUP BY ?", [1]),
        ("SELECT c_name FROM customer.customer ORDER BY ? LIMIT 1", [2]),
        ("SELECT c_name FROM customer.customer ORDER BY ? DESC LIMIT 1", [1]),
        ("SELECT c_mktsegment FROM customer.customer GROUP BY ROLLUP (?)", [1]),
        ("SELECT DISTINCT ON (?) c_name FROM customer.customer", [1]),
        ("SELECT count(*) FROM $1.$2", ["customer", "customer"]),
        ("EXPLAIN SELECT c_name FROM customer.? LIMIT 1", ["customer"]),
        ("DESCRIBE SELECT 1 AS ?", ["a"]),
    ],
)
def test_a_parameter_cannot_become_a_name_or_a_position(run, sql, params) -> None:
    records = run.engine.audit.records
    with pytest.raises(QueryError) as info:
        run(EU, sql, params)
    assert NOT_A_VALUE in info.value.message
    assert records[-1].decision == "refused"


@pytest.mark.parametrize(
    ("sql", "params", "want"),
    [
        ("SELECT c_name FROM customer.customer ORDER BY c_custkey + ? LIMIT 1", [0], None),
        (
            "SELECT count(*) FROM customer.customer GROUP BY c_mktsegment HAVING count(*) > ?",
            [0],
            None,
        ),
        ("SELECT ? IN (SELECT 1) AS a", [1], [(True,)]),
        ("SELECT count(*) FROM range(?)", [2], [(2,)]),
        ("SELECT [?, ?][2] AS a", [1, 2], [(2,)]),
        ("SELECT c_name FROM customer.customer LIMIT ?", [1], None),
    ],
)
def test_a_parameter_still_stands_wherever_a_value_may(run, sql, params, want) -> None:
    rows = run(EU, sql, params).fetchall()
    if want is not None:
        assert rows == want


# -- 4. smaller findings ----------------------------------------------------------------------


def test_a_question_mark_before_a_cast_is_a_placeholder(run) -> None:
    """sqlglot tokenises ``?::`` as one token, which was "not valid SQL"."""
    assert run(EU, "SELECT ?::INT AS a, ?::VARCHAR AS b", [1, 2]).fetchall() == [(1, "2")]


@pytest.mark.parametrize(
    ("sql", "params", "says"),
    [
        ("SELECT $name", {"name": "x", "NAME": "y"}, "$name and $NAME differ only by case"),
        ("SELECT $1, $3", [1, 2, 3], "parameter $2 is not used by the query"),
        ("SELECT ?", ["\ud800"], "unpaired surrogate"),
        ("SELECT ?", [["ok", "\udfff"]], "unpaired surrogate"),
        ("SELECT ? AS v", [10**40], "out of the range DuckDB binds"),
        ("SELECT ? AS v", [-(2**127) - 1], "out of the range DuckDB binds"),
    ],
)
def test_smaller_parameter_mistakes_are_refused_clearly(run, sql, params, says) -> None:
    records = run.engine.audit.records
    with pytest.raises(QueryError) as info:
        run(EU, sql, params)
    assert says in info.value.message
    assert records[-1].decision == "refused"


@pytest.mark.parametrize("value", [2**127 - 1, -(2**127), 2**127, 2**128 - 1])
def test_parameters_at_the_edge_of_the_128_bit_range_still_bind(run, value) -> None:
    import duckdb

    assert run(EU, "SELECT ? AS v", [value]).fetchall() == [(value,)]
    assert duckdb.execute("SELECT ? AS v", [value]).fetchall() == [(value,)]


@pytest.mark.parametrize("number", [10**45, -(10**45), 12345678901234567890123456789012345678901])
def test_a_huge_integer_literal_is_a_python_int(run, number) -> None:
    """DuckDB types a literal past 128 bits BIGNUM, which came back as its internal bytes."""
    import duckdb

    ((value,),) = run(EU, f"SELECT {number} AS v").fetchall()
    assert value == number and type(value) is int
    assert int(duckdb.sql(f"SELECT {number} AS v").fetchall()[0][0]) == number
    assert run(EU, "SELECT 1::BIGNUM AS v").fetchall() == [(1,)]


@pytest.mark.parametrize(
    ("sql", "rows", "columns"),
    [
        ("SELECT * FROM range(3)", [(0,), (1,), (2,)], ["range"]),
        ("SELECT * FROM generate_series(1, 2)", [(1,), (2,)], ["generate_series"]),
        ("SELECT r.* FROM range(2) AS r", [(0,), (1,)], ["r"]),
        ("SELECT * FROM range(1, 3) AS r ORDER BY 1", [(1,), (2,)], ["r"]),
        ("SELECT a.range FROM range(2) AS a", [(0,), (1,)], ["range"]),
        ("SELECT * FROM (SELECT 7 AS a) AS t, range(1)", [(7, 0)], ["a", "range"]),
    ],
)
def test_star_over_a_table_function_expands_to_its_column(run, sql, rows, columns) -> None:
    """DuckDB names the column after the alias for a star, yet also binds ``a.range``."""
    import duckdb

    result = run(EU, sql)
    assert result.fetchall() == rows
    assert result.columns == columns == duckdb.sql(sql).columns


@pytest.mark.parametrize(
    "sql", ["SELECT * FROM unnest([1, 2])", "SELECT x FROM unnest([1, 2]) AS t(x)"]
)
def test_unnest_as_a_table_is_refused_clearly(run, sql) -> None:
    with pytest.raises(
        QueryError, match=r"unnest\(\.\.\.\) of a constant as a table .*SELECT unnest"
    ):
        run(EU, sql)
    assert run.engine.audit.records[-1].decision == "refused"


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("DESCRIBE", "DESCRIBE needs a table or a query"),
        ("SUMMARIZE", "SUMMARIZE needs a table or a query"),
        ("describe  ", "DESCRIBE needs a table or a query"),
        ("EXPLAIN", "EXPLAIN needs a query"),
        ("SELECT 1 FROM", "but got the end of the query"),
        ("DESCRIBE read_csv('/etc/passwd')", "DESCRIBE of a table function"),
        ("SUMMARIZE read_csv('/etc/passwd')", "table function 'read_csv' is not allowed"),
    ],
)
def test_incomplete_or_odd_inspection_statements_say_what_is_wrong(run, sql, says) -> None:
    with pytest.raises(QueryError) as info:
        run(EU, sql)
    assert says in info.value.message
    assert "SENTINEL" not in info.value.message and "SCHEMA" not in info.value.message


@pytest.mark.parametrize(
    "message",
    [
        'Binder Error: column "__meshsim_raw.x" must appear in the GROUP BY clause or must be '
        "part of an aggregate function.",
        'Binder Error: column "a.__meshsim_visible.x" must appear in the GROUP BY clause or must '
        "be part of an aggregate function.",
        'Binder Error: column "__meshsim_visible" must appear in the GROUP BY clause or must be '
        "part of an aggregate function.",
    ],
)
def test_binder_messages_naming_internal_relations_stay_withheld(message) -> None:
    from meshsim.engine import binder_detail

    assert binder_detail(message) == ""
    shown = message.replace("__meshsim_raw.", "customer.").replace("__meshsim_visible", "c")
    if "__meshsim" not in shown:
        assert binder_detail(shown) != ""


def test_a_query_without_placeholders_takes_an_empty_list(run) -> None:
    assert run(EU, "SELECT 1 AS a", []).fetchall() == [(1,)]
    with pytest.raises(QueryError, match="takes 0 parameter"):
        run(EU, "SELECT 1 AS a", [1])


def test_parameters_count_against_the_query_size_limit(mesh) -> None:
    """A 20 MB string parameter ran and wrote 21 MB into the audit (second outside review)."""
    from meshsim.query.validate import QueryBounds

    engine, audit = make_engine(mesh, bounds=QueryBounds(max_chars=1000))
    try:
        session = engine.session(EU)
        assert session.sql("SELECT length(?) AS n", ["x" * 900]).fetchall() == [(900,)]
        with pytest.raises(QueryError, match=r"parameters hold 2,000 characters, more than 1,000"):
            session.sql("SELECT length(?) AS n", ["x" * 2000])
        assert audit.records[-1].decision == "refused"
        with pytest.raises(QueryError, match="parameters hold"):
            session.sql("SELECT length(?) AS n", ["x" * 50_000])
        recorded = audit.records[-1].sql
        assert len(recorded) < 11_000 and recorded.endswith("(cut; 50,004 characters in all)")
    finally:
        engine.close()
