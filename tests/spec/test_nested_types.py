"""Spec types in the Delta/Spark notation, nested: parse, canonical spelling, Arrow both
ways, and what converts without loss. Round-trips are properties over random types."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshsim.spec.types import can_hold, from_arrow, is_nested, normalize_type, to_arrow

PRIMITIVES = [
    "boolean",
    "tinyint",
    "smallint",
    "integer",
    "bigint",
    "float",
    "double",
    "varchar",
    "date",
    "blob",
    "timestamp",
    "timestamptz",
    "decimal(15,2)",
]
FIELD = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True),
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=6),
)


def spec_types(depth: int = 3) -> st.SearchStrategy[str]:
    leaf = st.sampled_from(PRIMITIVES)
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            inner.map(lambda t: f"array<{t}>"),
            st.tuples(leaf, inner).map(lambda kv: f"map<{kv[0]}, {kv[1]}>"),
            st.lists(
                st.tuples(FIELD, inner), min_size=1, max_size=3, unique_by=lambda f: f[0].lower()
            ).map(
                lambda fs: "struct<"
                + ", ".join(f"`{n.replace('`', '``')}`: {t}" for n, t in fs)
                + ">"
            ),
        ),
        max_leaves=6,
    )


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("struct<a: int, b: string>", "struct<a: int, b: string>"),
        ("struct<a:int,b:string>", "struct<a: int, b: string>"),
        ("STRUCT<A: INT, b STRING>", "struct<A: int, b: string>"),
        ("array<int>", "array<int>"),
        ("ARRAY< array<LONG> >", "array<array<long>>"),
        ("map<string,int>", "map<string, int>"),
        (
            "map<string, struct<x: decimal(10, 2), `Super Name`: array<date>>>",
            "map<string, struct<x: decimal(10,2), `Super Name`: array<date>>>",
        ),
        ("struct<`a``b`: int>", "struct<`a``b`: int>"),
    ],
)
def test_delta_notation_is_accepted_in_any_case_and_spacing(text, canonical):
    assert normalize_type(text) == canonical
    assert is_nested(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("struct<>", "expected a struct field name"),
        ("array<int", "expected '>'"),
        ("map<int>", "expected ','"),
        ("struct<a: int, A: int>", "struct field 'A' appears twice"),
        ("array<foo>", "unknown column type 'foo' in 'array<foo>'"),
        ("array<int> x", "unexpected text after the type"),
        ("array<decimal(40,2)>", "decimal precision must be 1..38"),
    ],
)
def test_bad_nested_types_are_refused_by_name(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        normalize_type(text)


@given(spec_types())
def test_normalize_is_idempotent_and_arrow_round_trips(text):
    canonical = normalize_type(text)
    assert normalize_type(canonical) == canonical
    arrow = to_arrow(canonical)
    assert to_arrow(from_arrow(arrow)) == arrow
    assert can_hold(canonical, from_arrow(arrow))


def test_arrow_types_delta_readers_produce_are_inferred():
    assert from_arrow(pa.large_list(pa.large_string())) == "array<varchar>"
    assert from_arrow(pa.map_(pa.string(), pa.list_(pa.int64()))) == "map<varchar, array<bigint>>"
    assert from_arrow(pa.struct([("Super Name", pa.int8())])) == "struct<`Super Name`: tinyint>"


@pytest.mark.parametrize(
    "dtype",
    [pa.uint32(), pa.time64("us"), pa.duration("s"), pa.null(), pa.float16(), pa.list_(pa.uint8())],
)
def test_arrow_types_without_a_spec_type_are_refused_by_name(dtype):
    with pytest.raises(ValueError, match=r"Arrow type .* has no spec type \(supported: .*struct"):
        from_arrow(dtype)


def test_nested_can_hold_goes_field_by_field():
    assert can_hold("array<bigint>", "array<int>")
    assert can_hold("map<string, decimal(18,2)>", "map<varchar, decimal(15,2)>")
    assert not can_hold("array<int>", "array<bigint>")
    assert not can_hold("struct<a: int, b: int>", "struct<b: int, a: int>")
    assert not can_hold("array<int>", "int") and not can_hold("int", "array<int>")
