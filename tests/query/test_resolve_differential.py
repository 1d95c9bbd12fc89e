"""Rule resolve's shortcuts against sqlglot's own functions, on many generated queries.

Resolve copies the validated tree with :func:`meshsim.query.trees.copy_tree` (not
``Expr.copy``) and qualifies it with ``names._qualify`` (sqlglot's ``qualify`` without its
second normalization). Column resolution decides what a consumer reads, so each must agree
with sqlglot exactly: the same tree and SQL, or the same refusal.
"""

from __future__ import annotations

import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp
from sqlglot.errors import OptimizeError, SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema

from meshsim.query.names import _qualify, mesh_schema
from meshsim.query.trees import copy_tree, nodes_of
from meshsim.spec.loader import load_mesh
from tests.conftest import EXAMPLE_MESH
from tests.fuzz import test_sql_fuzz as fuzz

SPEC = load_mesh(EXAMPLE_MESH)

EXTRA = [
    "SELECT c_name FROM customer.customer c JOIN customer.nation n USING (c_nationkey)",
    "SELECT * FROM customer.customer NATURAL JOIN customer.nation",
    'SELECT C_NAME, "c_name", customer.C_Phone FROM Customer.CUSTOMER',
    "WITH customer AS (SELECT 1 AS c_name) SELECT c_name FROM customer",
    "SELECT n_name FROM customer.nation n WHERE EXISTS (SELECT 1 FROM customer.customer c "
    "WHERE c.c_nationkey = n_nationkey)",
    "SELECT c_acctbal AS x, x + 1 AS y FROM customer.customer",
    "SELECT t.* FROM (SELECT c_name, c_name FROM customer.customer) t",
    "SELECT c_name FROM customer.customer, LATERAL (SELECT c_acctbal) AS t",
    "SELECT n_name, count(*) FROM customer.nation GROUP BY 1 ORDER BY n_name",
    "SELECT nope FROM customer.customer",
    "SELECT c_nationkey FROM customer.customer, customer.nation",
]

SEEDS = fuzz.SEEDS + EXTRA


def parsed(text: str) -> exp.Expr | None:
    try:
        return sqlglot.parse_one(text, read="duckdb")
    except SqlglotError:
        return None


def same_tree(a: exp.Expr, b: exp.Expr) -> None:
    assert a == b and a.sql(dialect="duckdb") == b.sql(dialect="duckdb")
    for x, y in zip(a.walk(), b.walk(), strict=True):
        assert type(x) is type(y) and x.meta == y.meta and x.comments == y.comments
        assert x.arg_key == y.arg_key and x.index == y.index
        assert (x.parent is None) == (y.parent is None)


def qualified(tree: exp.Expr, schema, expand: bool, ours: bool) -> str:
    """The qualified SQL, or the refusal, by resolve's route (``ours``) or sqlglot's."""
    try:
        if ours:
            tree = normalize_identifiers(
                copy_tree(tree), dialect="duckdb", store_original_column_identifiers=True
            )
            result, _scopes = _qualify(tree, schema, expand)
        else:
            result = qualify(
                normalize_identifiers(tree.copy(), dialect="duckdb"),
                dialect="duckdb",
                schema=schema,
                expand_stars=expand,
                validate_qualify_columns=True,
                quote_identifiers=True,
            )
    except OptimizeError as exc:
        return f"refused: {exc}"
    return result.sql(dialect="duckdb")


@pytest.mark.parametrize("text", SEEDS)
def test_copy_tree_is_sqlglots_copy(text: str) -> None:
    tree = parsed(text)
    assert tree is not None
    copied = copy_tree(tree)
    same_tree(copied, tree.copy())
    for node in copied.walk():  # nothing shared: editing the copy leaves the original alone
        assert all(node is not other for other in tree.walk())
    for node in copied.walk():
        node.meta["edited"] = True
        if isinstance(node, exp.Identifier):
            node.set("this", "changed")
    assert tree == parsed(text) and not any("edited" in node.meta for node in tree.walk())


@settings(max_examples=300, deadline=None, derandomize=True)
@given(text=fuzz.mutated_sql(), expand=st.booleans())
def test_resolve_qualifies_as_sqlglot_on_mutated_queries(text: str, expand: bool) -> None:
    tree = parsed(text)
    if tree is None:
        return
    same_tree(copy_tree(tree), tree.copy())
    schema = MappingSchema(mesh_schema(SPEC), dialect="duckdb") if expand else mesh_schema(SPEC)
    assert qualified(tree, schema, expand, ours=True) == qualified(tree, schema, expand, ours=False)


@pytest.mark.parametrize("text", SEEDS)
def test_resolve_qualifies_as_sqlglot_on_seeds(text: str) -> None:
    tree = parsed(text)
    assert tree is not None
    for expand in (False, True):
        schema = MappingSchema(mesh_schema(SPEC), dialect="duckdb")
        assert qualified(tree, schema, expand, ours=True) == qualified(
            tree, schema, expand, ours=False
        )


def test_nodes_of_finds_what_find_all_finds() -> None:
    tree = parsed(fuzz.SEEDS[-1])
    assert tree is not None
    nodes = nodes_of(tree, exp.Column, exp.Table, exp.Query)
    for kind in (exp.Column, exp.Table, exp.Query):
        assert nodes[kind] == list(tree.find_all(kind))
