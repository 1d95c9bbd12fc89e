"""Plan templates (:mod:`meshsim.query.templates`): a text that differs from one planned before
only in the values of its string literals gets exactly the plan the whole pipeline would make,
without running it; anything else is planned by the pipeline."""

from __future__ import annotations

import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshsim.errors import MeshsimError, QueryError
from meshsim.query import pipeline
from meshsim.query.pipeline import PLAN_RULES, run_rules
from meshsim.query.templates import slot_positions, words
from tests.query.meshdata import arrow_schema, build
from tests.query.meshfixtures import make_engine

FILTERED = "eu_marketing_analyst"  # row filters on customer and orders, masks
ADMIN = "governance_admin"


def slots(sql: str) -> list[str]:
    """The texts of the string literals of ``sql`` that are slots, in text order."""
    found = words(sql)
    assert found is not None
    starts = slot_positions(sqlglot.parse_one(sql, read="duckdb"))
    return [
        v[1:-1] if v.startswith("'") else v
        for v, (start, _) in zip(found.values, found.spans, strict=True)
        if start in starts
    ]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT x FROM t WHERE a = 'v' AND b <> 'w' AND 'z' < c", ["v", "w", "z"]),
        (
            "SELECT x FROM t WHERE d BETWEEN DATE '1995-01-01' AND '1996-01-01'",
            ["1995-01-01", "1996-01-01"],
        ),
        (
            "SELECT x FROM t WHERE a IN ('p', 'q') AND a LIKE 'x%' AND a ILIKE '%y'",
            ["p", "q", "x%", "%y"],
        ),
        ("SELECT CASE WHEN a = 'k' THEN 'yes' ELSE 'no' END AS v FROM t", ["k", "yes", "no"]),
        ("SELECT x FROM t WHERE CAST(d AS DATE) >= CAST('1995-03-15' AS DATE)", ["1995-03-15"]),
        # an output column without an alias is named after its text
        ("SELECT a = 'v' FROM t", []),
        ("SELECT a = 'v' AS named FROM t", ["v"]),
        # a string that is not a value: an alias, a function's argument, an interval, a
        # pattern with ESCAPE, a PIVOT value (names a column), a JSON path, a subscript
        ("SELECT a AS 'k' FROM t ORDER BY k", []),
        ("SELECT x FROM t WHERE strftime(d, '%Y') = '1995'", ["1995"]),
        ("SELECT x FROM t WHERE d > DATE '1995-01-01' - INTERVAL '3' DAY", ["1995-01-01"]),
        ("SELECT x FROM t WHERE a LIKE 'a!%' ESCAPE '!'", []),
        ("SELECT * FROM t PIVOT (sum(x) FOR a IN ('p', 'q'))", []),
        ("SELECT x FROM t WHERE j ->> '$.k' = 'v'", ["v"]),
        ("SELECT x FROM t WHERE m['key'] = 'v'", ["v"]),
        ("SELECT x FROM t WHERE 'v' IN (a, b)", []),
        ("SELECT x FROM t GROUP BY 'g'", []),
        # numbers: values where a string would be; a position, a count or an argument is not
        (
            "SELECT x FROM t WHERE a < 24 AND b BETWEEN 0.05 AND 0.07 AND c IN (1, -2)",
            ["24", "0.05", "0.07", "1", "2"],
        ),
        ("SELECT sum(CASE WHEN a = 1 THEN 2 ELSE 0 END) AS s FROM t", ["1", "2", "0"]),
        ("SELECT x, y FROM t ORDER BY 2 LIMIT 10 OFFSET 5", []),
        ("SELECT substr(x, 1, 3) AS s FROM t WHERE a < 0.06 + 0.01 AND b = 1e5", []),
        ("SELECT x FROM t GROUP BY 1 HAVING count(*) > 3", ["3"]),
        ("SELECT * FROM range(10) AS r(i) WHERE i > 5", ["5"]),
    ],
)
def test_slots_are_strings_where_only_a_value_can_stand(sql, expected):
    assert slots(sql) == expected


@pytest.mark.parametrize(
    "value",
    [
        "it''s",  # a doubled quote
        "back\\slash",
        'dq"uote',
        "tab\there",
        "x" * 201,  # longer than a slot may be
        "__meshsim_scan_abc",  # reserved: the pipeline refuses it
        "__MESHSIM_SCAN_abc",
        "caf\u00e9",  # not ASCII
    ],
)
def test_a_string_that_could_change_the_parse_or_the_rules_is_part_of_the_key(value):
    plain = words("SELECT x FROM t WHERE a = 'plain'")
    odd = words(f"SELECT x FROM t WHERE a = '{value}'")
    assert plain is not None and odd is not None
    assert odd.values == () and odd.key != plain.key


def test_the_class_of_a_value_is_in_the_key():
    date = words("SELECT x FROM t WHERE d = '1995-01-01'")
    other_date = words("SELECT x FROM t WHERE d = '2001-12-31'")
    not_a_date = words("SELECT x FROM t WHERE d = '1995-02-30'")
    timestamp = words("SELECT x FROM t WHERE d = '1995-01-01 10:00:00'")
    assert date and other_date and not_a_date and timestamp
    assert date.key == other_date.key
    assert len({date.key, not_a_date.key, timestamp.key}) == 3


def test_comments_and_every_other_token_are_in_the_key():
    base = words("SELECT x FROM t WHERE a = 'v'")
    assert base is not None
    for other in (
        "SELECT x FROM t WHERE a = 'v' -- note",
        "SELECT x FROM t WHERE b = 'v'",
        'SELECT x FROM t WHERE a = "v"',
        "SELECT x FROM t WHERE a = E'v'",
        "SELECT x FROM t WHERE a = 5",
    ):
        found = words(other)
        assert found is None or found.key != base.key, other


# -- the engine ---------------------------------------------------------------------------------

ORDERS = (
    "SELECT o_orderkey, o_totalprice FROM sales.orders "
    "WHERE o_orderdate >= DATE '{d1}' AND o_orderpriority <> '{w}' ORDER BY o_orderkey"
)
JOIN = (
    "SELECT c_name, count(*) AS n FROM customer.customer JOIN sales.orders "
    "ON c_custkey = o_custkey WHERE o_orderdate < CAST('{d1}' AS DATE) "
    "AND c_mktsegment IN ('{w}', 'HOUSEHOLD') GROUP BY c_name ORDER BY c_name"
)
#: a comparison of a DATE column with a string: a valid date cannot fail, anything else can
#: (the row-filtered scan is gated for it): the class of the value decides the plan
CAST_DECIDES = "SELECT o_orderkey FROM sales.orders WHERE o_orderdate = '{d1}' ORDER BY 1"
CASE = (
    "SELECT o_orderkey, CASE WHEN o_orderstatus = '{w}' THEN '{w}' ELSE 'other' END AS s "
    "FROM sales.orders WHERE o_comment LIKE '%{w}%' ORDER BY o_orderkey"
)
NUMBERS = (
    "SELECT o_orderkey, CASE WHEN o_totalprice > {n} THEN {i} ELSE 0 END AS big "
    "FROM sales.orders WHERE o_shippriority IN ({i}, 1) AND o_orderdate > '{d1}' ORDER BY 1"
)
SHAPES = (ORDERS, JOIN, CAST_DECIDES, CASE, NUMBERS)


def _pipeline_plan(engine, consumer: str, text: str):
    """The plan the whole pipeline makes of ``text`` (no cache, no template)."""
    return run_rules(engine, engine.attempt(consumer, text), PLAN_RULES).plan


def _counting(monkeypatch) -> list[str]:
    runs: list[str] = []
    real = pipeline.run_rules

    def counted(engine, attempt, rules):
        if rules is PLAN_RULES:
            runs.append(attempt.text)
        return real(engine, attempt, rules)

    monkeypatch.setattr(pipeline, "run_rules", counted)
    return runs


def test_a_third_text_of_a_shape_is_filled_in_without_the_pipeline(mesh, monkeypatch):
    engine, _ = make_engine(mesh)
    runs = _counting(monkeypatch)
    try:
        session = engine.session(FILTERED)
        texts = [ORDERS.format(d1=f"1995-0{m}-01", w=f"{m}-URGENT") for m in range(1, 6)]
        results = [session.sql(t).fetchall() for t in texts]
        assert runs == texts[:1]  # the second made the template; the rest were filled in
        for text, rows in zip(texts, results, strict=True):
            assert (
                engine.plan(engine.attempt(FILTERED, text)).sql
                == _pipeline_plan(engine, FILTERED, text).sql
            )
            fresh, _ = make_engine(mesh)
            try:
                assert fresh.session(FILTERED).sql(text).fetchall() == rows
            finally:
                fresh.close()
    finally:
        engine.close()


@pytest.mark.parametrize("consumer", [FILTERED, ADMIN])
def test_every_shape_gets_a_template(mesh, monkeypatch, consumer):
    """Strings, dates, LIKE patterns, CASE results, integers and decimals: a text of each
    shape with a third set of values is filled in."""
    engine, _ = make_engine(mesh)
    runs = _counting(monkeypatch)
    try:
        for shape in SHAPES:
            runs.clear()
            for d1, w, n, i in (
                ("1995-01-01", "A", "10.5", "3"),
                ("1996-06-30", "F", "2.25", "7"),
                ("1997-02-03", "Q", "7.77", "12"),
            ):
                engine.plan(engine.attempt(consumer, shape.format(d1=d1, w=w, n=n, i=i)))
            assert len(runs) == 1, shape
    finally:
        engine.close()


VALUES = st.one_of(
    st.dates().map(str),  # valid dates, years 1 to 9999
    st.sampled_from(["1995-02-30", "1995-13-01", "0000-01-01", "95-01-01", "", "%", "_"]),
    st.sampled_from(["1995-01-01 10:00:00", "1995-01-01 25:00:00", "2000-02-29"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12).filter(
        lambda s: not any(c in s for c in "'\"\\")
    ),
)


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    shape=st.sampled_from(SHAPES),
    consumer=st.sampled_from([FILTERED, ADMIN]),
    d1=VALUES,
    w=VALUES,
    n=st.one_of(
        st.integers(0, 10**20).map(str),
        st.decimals(0, 10**6, places=3, allow_nan=False).map(str),
        st.sampled_from(["1e5", "0.0", "00012", "1.50"]),
    ),
    i=st.integers(0, 10**19).map(str),
)
def test_a_filled_in_plan_is_the_pipelines(mesh, shape, consumer, d1, w, n, i):
    """Whatever the values: the plan served for a text (filled in from a template when its
    key has one) is the plan the pipeline makes of it, or both refuse it."""
    engine = _shared_engine(mesh)
    text = shape.format(d1=d1, w=w, n=n, i=i)
    try:
        expected = _pipeline_plan(engine, consumer, text).sql
    except MeshsimError:  # refused, or DuckDB's bind fails (an invalid date): so must the query
        with pytest.raises(MeshsimError):
            engine.session(consumer).sql(text).fetchall()
        return
    assert engine.plan(engine.attempt(consumer, text)).sql == expected


_ENGINES: dict[int, object] = {}


def _shared_engine(mesh):
    """One engine for the property test's examples, with templates made by a first text of
    every shape and consumer."""
    if id(mesh) not in _ENGINES:
        engine, _ = make_engine(mesh)
        for shape in SHAPES:
            for consumer in (FILTERED, ADMIN):
                for d1, w, n, i in (
                    ("1995-01-01", "1-URGENT", "10.5", "3"),
                    ("1996-06-30", "F", "2.25", "7"),
                ):
                    engine.plan(engine.attempt(consumer, shape.format(d1=d1, w=w, n=n, i=i)))
        _ENGINES[id(mesh)] = engine
    return _ENGINES[id(mesh)]


def test_the_class_of_a_value_picks_the_template(mesh):
    """A DATE column compared with a valid date cannot fail, with any other string it can:
    the row-filtered consumer's scan is gated for the second, and each gets its own."""
    engine, _ = make_engine(mesh)
    try:
        texts = [CAST_DECIDES.format(d1=v) for v in ("1995-01-01", "1996-01-01", "1997-01-01")]
        bad = [CAST_DECIDES.format(d1=v) for v in ("1995-02-30", "x", "y")]
        for text in texts + bad:
            engine.plan(engine.attempt(FILTERED, text))
        good_plan = engine.plan(engine.attempt(FILTERED, texts[-1])).sql
        bad_plan = engine.plan(engine.attempt(FILTERED, bad[-1])).sql
        assert good_plan == _pipeline_plan(engine, FILTERED, texts[-1]).sql
        assert bad_plan == _pipeline_plan(engine, FILTERED, bad[-1]).sql
        assert good_plan.replace("1997-01-01", "y") != bad_plan  # gated: not the same plan
    finally:
        engine.close()


def test_a_reserved_name_in_a_value_is_refused_as_the_pipeline_refuses_it(mesh):
    engine, _ = make_engine(mesh)
    try:
        session = engine.session(FILTERED)
        for w in ("A", "B"):
            session.sql(ORDERS.format(d1="1995-01-01", w=w)).fetchall()
        with pytest.raises(QueryError, match="reserved"):
            session.sql(ORDERS.format(d1="1995-01-01", w="__meshsim_scan_x"))
    finally:
        engine.close()


def test_a_template_is_not_used_once_a_table_it_read_has_changed(tmp_path, monkeypatch):
    import pyarrow as pa
    from deltalake import write_deltalake

    data = build(tmp_path / "mesh")
    engine, _ = make_engine(data)
    runs = _counting(monkeypatch)
    try:
        for w in ("A", "B", "C"):
            engine.plan(engine.attempt(FILTERED, ORDERS.format(d1="1995-01-01", w=w)))
        assert len(runs) == 1
        orders = data.path("sales.orders")
        write_deltalake(
            orders, pa.Table.from_pylist([], arrow_schema(data.spec, "sales.orders")), mode="append"
        )
        engine.plan(engine.attempt(FILTERED, ORDERS.format(d1="1995-01-01", w="D")))
        assert len(runs) == 2  # planned again: its template's table moved on
        for w in ("E", "F"):  # a template made again, from the fresh plan
            engine.plan(engine.attempt(FILTERED, ORDERS.format(d1="1995-01-01", w=w)))
        assert len(runs) == 2
    finally:
        engine.close()


def test_a_filled_in_plan_has_its_own_values_in_the_tree_an_engine_reads(mesh):
    """Spark assembles the governed tree, not the SQL: a filled-in plan's tree is parsed from
    its own skeleton, never the template's sentinels."""
    engine, _ = make_engine(mesh)
    try:
        for w in ("A", "B", "ZEBRA"):
            plan = engine.plan(engine.attempt(FILTERED, ORDERS.format(d1="1995-01-01", w=w)))
        tree = plan.query_tree().sql(dialect="duckdb")
        assert "'ZEBRA'" in tree and "msq" not in tree
        assert tree == sqlglot.parse_one(plan.skeleton, read="duckdb").sql(dialect="duckdb")
    finally:
        engine.close()


def test_values_are_put_in_once_never_read_again_for_a_sentinel(mesh):
    """A value that spells another slot's sentinel is put in as it is."""
    from meshsim.query.templates import _sentinel

    engine, _ = make_engine(mesh)
    try:
        for d1, w in (("1995-01-01", "A"), ("1995-02-01", "B")):
            engine.plan(engine.attempt(FILTERED, ORDERS.format(d1=d1, w=w)))
        nonce = engine.caches.templates._nonce
        for index in range(2):
            spelt = _sentinel("'w'", nonce, index, 0).strip("'")
            text = ORDERS.format(d1="1995-03-01", w=spelt)
            assert (
                engine.plan(engine.attempt(FILTERED, text)).sql
                == _pipeline_plan(engine, FILTERED, text).sql
            )
    finally:
        engine.close()


# -- the outside review's findings --------------------------------------------------------------


def test_the_text_between_tokens_is_in_the_key():
    """sqlglot's tokens drop whitespace and digit separators, DuckDB's parse (which names
    unnamed outputs) does not: ``'a' 'b'`` is not ``'a'\\n'b'``, ``1_000`` not ``10_00``."""
    pairs = (
        ("SELECT 'a'\n'b' AS s FROM t WHERE a = 'x'", "SELECT 'a' 'b' AS s FROM t WHERE a = 'y'"),
        ("SELECT c + 1_000 FROM t WHERE a = 'x'", "SELECT c + 10_00 FROM t WHERE a = 'y'"),
        ("SELECT c FROM t WHERE a = 'x'", "SELECT  c FROM t WHERE a = 'y'"),
        ("SELECT c FROM t WHERE a = 'x'", "SELECT c FROM t WHERE a = 'y'\x1c"),
    )
    for one, other in pairs:
        a, b = words(one), words(other)
        assert a is not None and b is not None
        assert a.key != b.key, (one, other)


def test_names_do_not_follow_the_first_text(mesh):
    engine, _ = make_engine(mesh)
    first = "SELECT c_custkey + 1, 'a'\n'b' AS s FROM customer.customer WHERE c_mktsegment = '{w}'"
    other = "SELECT c_custkey + 1, 'a' 'b' AS s FROM customer.customer WHERE c_mktsegment = '{w}'"
    try:
        for w in ("AUTOMOBILE", "MACHINERY"):
            engine.plan(engine.attempt(FILTERED, first.format(w=w)))
        text = other.format(w="BUILDING")
        assert (
            engine.plan(engine.attempt(FILTERED, text)).sql
            == _pipeline_plan(engine, FILTERED, text).sql
        )
    finally:
        engine.close()


def _counting_makes(monkeypatch) -> dict[str, int]:
    """How many templates the engine tries to make from here on."""
    from meshsim.query import templates

    calls = {"make": 0}
    real = templates.PlanTemplates._make

    def counted(self, *args, **kwargs):
        calls["make"] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(templates.PlanTemplates, "_make", counted)
    return calls


def test_many_slots_cost_no_more_than_the_pipeline(mesh, monkeypatch):
    """Thousands of number slots: no template (a cap), never a fill slower than planning."""
    from meshsim.query import templates

    engine, _ = make_engine(mesh)
    calls = _counting_makes(monkeypatch)
    try:
        for v in range(1, 4):
            values = ",".join([str(v)] * (templates.MAX_SLOTS + 1))
            text = f"SELECT count(*) AS n FROM customer.customer WHERE c_custkey IN ({values})"
            engine.plan(engine.attempt(FILTERED, text))
        assert calls["make"] == 0
    finally:
        engine.close()


def test_a_fill_is_linear_in_the_plan_and_the_slots(mesh):
    """Values are put in by position, not by searching the SQL for every sentinel."""
    from meshsim.query import templates

    engine, _ = make_engine(mesh)
    try:
        for v in (1, 2):
            values = ",".join([str(v)] * templates.MAX_SLOTS)
            text = f"SELECT count(*) AS n FROM customer.customer WHERE c_custkey IN ({values})"
            engine.plan(engine.attempt(FILTERED, text))
        made = [t for ts in engine.caches.templates._templates._data.values() for t in ts]
        assert made and not hasattr(made[0], "pattern")
        assert len(made[0].sql_parts) == templates.MAX_SLOTS + 1
    finally:
        engine.close()


def test_a_text_whose_fixed_constants_differ_makes_no_template(mesh, monkeypatch):
    """``left(x, 5)`` and ``left(x, 6)`` are two queries: a text of the second is planned by
    the pipeline without a template made (and thrown away) from a text of the first."""

    engine, _ = make_engine(mesh)
    calls = _counting_makes(monkeypatch)
    text = "SELECT left(o_comment, {n}) AS c FROM sales.orders WHERE o_orderstatus = '{w}'"
    try:
        for n in range(5, 15):
            engine.plan(engine.attempt(FILTERED, text.format(n=n, w=f"S{n}")))
        assert calls["make"] == 0
    finally:
        engine.close()


def test_templates_and_first_texts_hold_no_tree(mesh):
    engine, _ = make_engine(mesh)
    try:
        for w in ("A", "B"):
            engine.plan(engine.attempt(FILTERED, ORDERS.format(d1="1995-01-01", w=w)))
        cache = engine.caches.templates
        assert all(f.plan.tree is None for f in cache._firsts._data.values())
        assert all(t.plan.tree is None for ts in cache._templates._data.values() for t in ts)
    finally:
        engine.close()


def test_a_filled_in_plan_is_reused_as_any_cached_plan(mesh):
    """It carries what its first plan depends on: the same text again comes from the plan
    cache (no template look-up), as a planned text would."""
    engine, _ = make_engine(mesh)
    try:
        session = engine.session(FILTERED)
        for w in ("A", "B", "C"):
            session.sql(ORDERS.format(d1="1995-01-01", w=w)).fetchall()
        again = session.sql(ORDERS.format(d1="1995-01-01", w="C"))
        assert "template" not in again.timings and "parse" not in again.timings
    finally:
        engine.close()
