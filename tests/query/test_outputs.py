"""Rule name: unnamed projections are named as DuckDB names them, with work linear in the
number of projections."""

from __future__ import annotations

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from meshsim.query.outputs import name_outputs


def test_unnamed_projections_get_duckdbs_names() -> None:
    text = "SELECT count(*), x + 1, sum(x) AS s FROM t"
    tree = sqlglot.parse_one(text, read="duckdb")
    con = duckdb.connect()
    try:
        name_outputs(con, text, tree)
    finally:
        con.close()
    assert [p.alias_or_name for p in tree.expressions] == ["count_star()", "(x + 1)", "s"]


def test_naming_n_projections_edits_each_select_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replacing projections one at a time costs a pass over the select list each (3,000
    unnamed projections took seconds): the names are set in one edit per SELECT."""
    edits: list[str] = []
    replace, set_ = exp.Expression.replace, exp.Expression.set

    def counted_replace(self, expression):
        edits.append("replace")
        return replace(self, expression)

    def counted_set(self, arg_key, value, *args, **kwargs):
        if isinstance(self, exp.Select) and arg_key == "expressions":
            edits.append("set")
        return set_(self, arg_key, value, *args, **kwargs)

    text = "SELECT " + ", ".join(f"x + {i}" for i in range(300)) + " FROM t"
    tree = sqlglot.parse_one(text, read="duckdb")
    con = duckdb.connect()
    monkeypatch.setattr(exp.Expression, "replace", counted_replace)
    monkeypatch.setattr(exp.Expression, "set", counted_set)
    try:
        name_outputs(con, text, tree)
    finally:
        con.close()
    monkeypatch.undo()
    assert edits == ["set"]
    assert [p.alias for p in tree.expressions] == [f"(x + {i})" for i in range(300)]
