"""Rule name: unnamed output columns are named as DuckDB names them.

sqlglot's ``qualify`` names an unnamed projection ``_col_0``; DuckDB names it after the
expression as its own parser prints it (``count_star()``, ``sum(x)``, ``(a + 1)``,
``list(y ORDER BY y)``), and CSV headers and dataframes should match DuckDB's. So the
consumer's text is parsed by DuckDB (parse only, nothing is bound or run), each unnamed
projection of the query's outermost SELECT (the leftmost of a set operation) is printed back
by DuckDB's ``json_deserialize_sql``, and the projection is aliased with that name before the
names are resolved. Where DuckDB's parse does not line up with sqlglot's one to one, sqlglot's
names are kept. Nested subqueries keep sqlglot's names (their columns are seen by name only
through the outer query).
"""

from __future__ import annotations

import json
from typing import Any

from sqlglot import exp

#: DuckDB's ``json_serialize_sql`` of ``SELECT 1``, a template whose one projection is
#: replaced by each expression to be printed.
_TEMPLATE_SQL = "SELECT 1"


def _leftmost(node: Any) -> Any:
    while isinstance(node, dict) and node.get("type") == "SET_OPERATION_NODE":
        children = node.get("children") or [node.get("left")]
        node = children[0]
    return node


def _leftmost_select(tree: exp.Expr) -> exp.Select | None:
    while isinstance(tree, exp.SetOperation):
        tree = tree.left
    while isinstance(tree, exp.Subquery):
        tree = tree.this
    return tree if isinstance(tree, exp.Select) else None


def name_outputs(con: Any, text: str, tree: exp.Expr) -> None:
    """Alias each unnamed, non-column projection of ``tree``'s outermost SELECT with the name
    DuckDB gives it in ``text`` (in place: ``tree`` is meshsim's own parse of ``text``)."""
    from meshsim import engine as duck

    select = _leftmost_select(tree)
    if select is None:
        return
    unnamed = [
        i
        for i, projection in enumerate(select.expressions)
        if not isinstance(projection, exp.Alias | exp.Column | exp.Star)
    ]
    if not unnamed:
        return
    try:
        doc = json.loads(duck.serialize_sql(con, text))
        template = json.loads(duck.serialize_sql(con, _TEMPLATE_SQL))
    except (TypeError, ValueError):
        return
    statements = doc.get("statements") or []
    if doc.get("error") or len(statements) != 1:
        return
    node = _leftmost(statements[0].get("node"))
    listed = node.get("select_list") if isinstance(node, dict) else None
    if not isinstance(listed, list) or len(listed) != len(select.expressions):
        return
    for i in unnamed:
        expression = listed[i]
        if not isinstance(expression, dict) or expression.get("alias"):
            continue
        template["statements"][0]["node"]["select_list"] = [expression]
        printed = duck.deserialize_sql(con, json.dumps(template))
        if printed is None or not printed.startswith("SELECT "):
            continue
        name = printed[len("SELECT ") :]
        alias = exp.to_identifier(name, quoted=True)
        alias.meta["case_sensitive"] = True  # DuckDB keeps the case of a name; so must qualify
        select.expressions[i].replace(exp.alias_(select.expressions[i].copy(), alias))
