"""The skeleton's bound plan is checked once per shape (issue 16, planning under 2 ms).

DuckDB's parse of every text is still checked; its bound plan is not bound again for a text
whose parse differs from one bound and accepted on the same verifier only in the text of
string literals (:func:`meshsim.query.crosscheck.parse_shape`). These tests plant, after a
shape was accepted, what must still be refused: a name that DuckDB binds as a file, a file,
a table function, a setting, a catalog reference, in texts as close to the accepted one as
the thing allows; and show that a literal never reads what it names.
"""

from __future__ import annotations

import glob
import os

import pytest

from meshsim import engine as duck
from meshsim.errors import QueryError
from tests.query.meshdata import CANARY, SECRET, MeshData
from tests.query.meshfixtures import make_engine


@pytest.fixture
def shapes(mesh: MeshData, monkeypatch):
    """A fresh engine and the shapes it accepts, in order."""
    accepted: list[str] = []
    real = duck.accept_shape

    def counted(db, shape: str) -> None:
        accepted.append(shape)
        real(db, shape)

    monkeypatch.setattr(duck, "accept_shape", counted)
    engine, audit = make_engine(mesh)
    yield engine, audit, accepted
    engine.close()


def _data_file(mesh: MeshData) -> str:
    return sorted(glob.glob(os.path.join(mesh.path("customer.customer"), "*.parquet")))[0]


def _refused(engine, audit, consumer: str, sql: str) -> QueryError:
    with pytest.raises(QueryError) as info:
        result = engine.session(consumer).sql(sql)
        pytest.fail(f"query ran and returned {result.arrow().to_pylist()[:2]}")
    assert CANARY not in info.value.message and SECRET not in info.value.message
    assert audit.records[-1].decision == "refused", info.value.message
    return info.value


def test_a_text_differing_only_in_a_string_is_not_bound_again_and_answers_for_itself(
    shapes, mesh: MeshData
) -> None:
    engine, _, accepted = shapes
    session = engine.session("governance_admin")
    sql = "SELECT count(*) AS n FROM customer.nation WHERE n_name = '{}'"
    names = [r[0] for r in session.sql("SELECT n_name FROM customer.nation").fetchall()]
    accepted.clear()
    counts = [session.sql(sql.format(name)).fetchall() for name in names[:3]]
    assert counts == [[(1,)]] * 3
    assert len(accepted) == 1  # bound for the first text only
    # a string literal is a value, whatever it names
    for value in (_data_file(mesh), "read_csv('/etc/passwd')"):
        assert session.sql(sql.format(value.replace("'", "''"))).fetchall() == [(0,)]
    assert len(accepted) == 1


def test_a_number_a_name_or_a_function_makes_another_shape(shapes) -> None:
    engine, _, accepted = shapes
    session = engine.session("governance_admin")
    session.sql("SELECT n_name FROM customer.nation ORDER BY n_name LIMIT 1").fetchall()
    session.sql("SELECT n_name FROM customer.nation ORDER BY n_name LIMIT 2").fetchall()
    session.sql("SELECT n_name AS m FROM customer.nation ORDER BY m LIMIT 2").fetchall()
    session.sql("SELECT lower(n_name) FROM customer.nation ORDER BY 1 LIMIT 2").fetchall()
    assert len(accepted) == 4 and len(set(accepted)) == 4


RECURSIVE = (
    'WITH RECURSIVE "{n}" AS (SELECT 1 AS a UNION ALL SELECT 1 FROM "{n}" WHERE false) '
    'SELECT n_name FROM customer.nation WHERE n_nationkey IN (SELECT a FROM "{n}")'
)
ANCHOR = (
    'WITH RECURSIVE "{n}" AS (SELECT * FROM "{n}" UNION ALL SELECT * FROM "{n}" WHERE false) '
    'SELECT * FROM "{n}" LIMIT 5'
)


@pytest.mark.parametrize(
    "accepted_sql, planted",
    [
        # the file-path hole: the same text but for a name that DuckDB binds as a file
        (RECURSIVE.format(n="r"), RECURSIVE.format(n="{file}")),
        (RECURSIVE.format(n="r"), ANCHOR.format(n="{file}")),
        # a file, a table function, a setting, a catalog reference where a string stood
        (
            "SELECT n_name FROM customer.nation WHERE n_name = 'x'",
            "SELECT n_name FROM customer.nation WHERE n_name = (SELECT max(a) FROM '{file}')",
        ),
        (
            "SELECT n_name FROM customer.nation WHERE n_name IN (SELECT 'x')",
            "SELECT n_name FROM customer.nation WHERE n_name IN "
            "(SELECT * FROM read_parquet('{file}'))",
        ),
        (
            "SELECT n_name FROM customer.nation WHERE n_name = 'threads'",
            "SELECT n_name FROM customer.nation WHERE n_name = current_setting('threads')",
        ),
        (
            "SELECT n_name FROM customer.nation WHERE n_name IN (SELECT 'x')",
            "SELECT n_name FROM customer.nation WHERE n_name IN "
            "(SELECT table_name FROM duckdb_tables())",
        ),
        (
            "SELECT n_name FROM customer.nation WHERE n_name IN (SELECT 'x')",
            "SELECT n_name FROM customer.nation WHERE n_name IN "
            "(SELECT name FROM pragma_table_info('customer.nation'))",
        ),
        (
            "SELECT n_name FROM customer.nation WHERE n_name IN (SELECT 'x')",
            "SELECT n_name FROM customer.nation WHERE n_name IN "
            "(SELECT extension_name FROM duckdb_extensions())",
        ),
        (
            "SELECT n_name FROM customer.nation WHERE n_name IN (SELECT 'x')",
            "SELECT n_name FROM customer.nation WHERE n_name IN (SELECT 'x' FROM memory.main.t)",
        ),
        (
            "SELECT n_name FROM customer.nation WHERE n_name = 'x'",
            "SELECT n_name FROM customer.nation WHERE n_name = getvariable('x')",
        ),
    ],
)
def test_what_an_accepted_shape_must_still_refuse(
    shapes, mesh: MeshData, monkeypatch, accepted_sql: str, planted: str
) -> None:
    engine, audit, accepted = shapes
    monkeypatch.chdir(mesh.root)
    data_file = _data_file(mesh)
    for consumer in ("governance_admin", "eu_marketing_analyst"):
        engine.session(consumer).sql(accepted_sql).fetchall()
        assert accepted, "the text close to the planted one was bound and accepted"
        _refused(engine, audit, consumer, planted.replace("{file}", data_file))


def test_a_refused_shape_is_never_accepted(shapes, mesh: MeshData) -> None:
    engine, audit, accepted = shapes
    for _ in range(2):
        _refused(engine, audit, "governance_admin", ANCHOR.format(n=_data_file(mesh)))
    assert accepted == [] and not engine.duck.accepted_shapes


def _parse(sql: str) -> str:
    import duckdb

    con = duckdb.connect()
    try:
        return str(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    finally:
        con.close()


def test_a_shape_keeps_every_name_type_and_function_and_leaves_out_values() -> None:
    """A constant's text is left out only where it can be nothing but a value (compared, in an
    IN list or BETWEEN, a LIKE pattern, a CASE result, cast to a type); anywhere else, such as
    a function's argument, a LIMIT or an ORDER BY position, it may name or choose what DuckDB
    binds, and it stays in the shape."""
    from meshsim.query.crosscheck import parse_shape

    base = "SELECT a, 'x' FROM t WHERE b = 'one' LIMIT 3"
    assert parse_shape(_parse(base)) == parse_shape(_parse(base.replace("'one'", "'o''ther'")))
    assert parse_shape(_parse(base)) == parse_shape(
        _parse("SELECT  a , 'x' FROM t WHERE b='1' LIMIT 3")
    )
    values = (
        "SELECT a FROM t WHERE b IN ('{v}', 'z') AND c BETWEEN '{v}' AND 'z'",
        "SELECT a FROM t WHERE b LIKE '%{v}%' AND c NOT ILIKE '{v}' AND d GLOB '{v}*'",
        "SELECT CASE WHEN a > 1 THEN '{v}' ELSE '{v}{v}' END FROM t WHERE d > DATE '{v}'",
    )
    for text in values:
        assert parse_shape(_parse(text.format(v="one"))) == parse_shape(
            _parse(text.format(v="two"))
        ), text
    numbers = (
        "SELECT a FROM t WHERE b < {v} AND c IN ({v}, 2) AND d BETWEEN {v} AND 9",
        "SELECT sum(CASE WHEN a = {v} THEN {v} ELSE 0 END) AS s FROM t",
    )
    for text in numbers:
        for one, two in (("1", "24"), ("0.06", "12.5")):
            assert parse_shape(_parse(text.format(v=one))) == parse_shape(
                _parse(text.format(v=two))
            ), text
        # an integer and a decimal are constants of two kinds
        assert parse_shape(_parse(text.format(v="1"))) != parse_shape(_parse(text.format(v="1.0")))
    positions = (
        "SELECT a, b FROM t ORDER BY {v}",
        "SELECT a FROM t LIMIT {v}",
        "SELECT substr(a, {v}) FROM t",
        "SELECT a FROM t WHERE b < {v} + 1",
        "SELECT * FROM range({v})",
    )
    for text in positions:
        assert parse_shape(_parse(text.format(v="1"))) != parse_shape(_parse(text.format(v="2"))), (
            text
        )
    names = (
        "SELECT list_aggregate(l, '{v}') FROM t",
        "SELECT struct_extract(s, '{v}') FROM t",
        "SELECT s['{v}'] FROM t",
        "SELECT strftime(d, '{v}') FROM t",
        "SELECT 'x' || '{v}' FROM t",
    )
    for text in names:
        assert parse_shape(_parse(text.format(v="min"))) != parse_shape(
            _parse(text.format(v="max"))
        ), text
    for other in (
        base.replace("FROM t", 'FROM "t.parquet"'),  # a table name
        base.replace("FROM t", "FROM s.t"),  # a schema
        base.replace("SELECT a", "SELECT c"),  # a column
        base.replace("SELECT a", "SELECT a AS c"),  # an alias
        base.replace("LIMIT 3", "LIMIT 4"),  # a number
        base.replace("'one'", "1"),  # a literal of another kind
        base.replace("'one'", "DATE 'one'"),  # a cast
        base.replace("'one'", "lower('one')"),  # a function
        base.replace("'x'", "current_setting('x')"),
        base.replace("FROM t", "FROM read_csv('t')"),  # a table function
        base.replace("FROM t", "FROM (SELECT 1) AS t"),  # a subquery
    ):
        assert parse_shape(_parse(base)) != parse_shape(_parse(other)), other


def test_a_planted_scan_after_an_accepted_twin_of_its_shape_is_refused(
    mesh: MeshData, shapes
) -> None:
    """With the name rules of validate switched off, the file-path hole reaches DuckDB. Its
    twin, whose recursive CTE's anchor names an outer CTE instead of a file, binds honestly
    and is accepted first: the planted text differs from it in one name only, and the
    verify-plan rule must bind it anew and refuse it."""
    from sqlglot import exp

    from meshsim.query.pipeline import PLAN_RULES, Attempt, Rule
    from meshsim.query.verify import PlanRefused

    engine, audit, accepted = shapes

    def validate_without_name_rules(engine, attempt: Attempt) -> None:
        from meshsim.query.validate import balance_connectives, check_syntax

        assert isinstance(attempt.statement, exp.Query)
        check_syntax(attempt.statement, what="the query")
        attempt.tree = balance_connectives(attempt.statement)

    engine.plan_rules = tuple(
        Rule("validate", validate_without_name_rules) if r.name == "validate" else r
        for r in PLAN_RULES
    )
    shape = (
        'WITH "o" AS (SELECT 1 AS c) SELECT c FROM (WITH RECURSIVE "{n}" AS (SELECT count(*) AS c '
        'FROM "{n}" UNION ALL SELECT c FROM "{n}" WHERE false) SELECT c FROM "{n}") AS q'
    )
    session = engine.session("external_partner")
    assert session.sql(shape.format(n="o")).fetchall() == [(1,)]
    assert len(accepted) == 1
    path = os.path.join(mesh.path("customer.customer"), "*.parquet")
    with pytest.raises(PlanRefused, match="PARQUET_SCAN"):
        session.sql(shape.format(n=path))
    assert audit.records[-1].decision == "refused" and len(accepted) == 1
