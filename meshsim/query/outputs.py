"""Rule name: unnamed output columns are named as DuckDB names them.

sqlglot's ``qualify`` names an unnamed projection ``_col_0``; DuckDB names it after the
expression as its own parser prints it (``count_star()``, ``sum(x)``, ``(a + 1)``,
``list(y ORDER BY y)``), and CSV headers and dataframes should match DuckDB's. So the
consumer's text is parsed by DuckDB (parse only, nothing is bound or run), each unnamed
projection of the query's outermost SELECT (the leftmost of a set operation) is printed back
by DuckDB's ``json_deserialize_sql``, and the projection is aliased with that name before the
names are resolved. Where DuckDB's parse does not line up with sqlglot's one to one, sqlglot's
names are kept. CTEs and FROM subqueries are named the same way; a subquery among joins or
in an expression keeps sqlglot's names (its columns are seen only through the outer query).
"""

from __future__ import annotations

import json
from typing import Any

from sqlglot import exp

#: DuckDB's ``json_serialize_sql`` of ``SELECT 1``, a template whose one projection is
#: replaced by each expression to be printed.
_TEMPLATE_SQL = "SELECT 1"


_TEMPLATES: dict[str, str] = {}


def _template(con: Any) -> str:
    """The serialised template (the same for every connection of one DuckDB version)."""
    from meshsim import engine as duck

    if _TEMPLATE_SQL not in _TEMPLATES:
        _TEMPLATES[_TEMPLATE_SQL] = duck.serialize_sql(con, _TEMPLATE_SQL)
    return _TEMPLATES[_TEMPLATE_SQL]


def _pairs(node: Any, query: exp.Expr) -> list[tuple[dict[str, Any], exp.Select]]:
    """DuckDB's SELECT nodes paired with sqlglot's SELECTs for the same query: the outermost
    (the leftmost of a set operation), each CTE (by name) and each FROM subquery of a SELECT
    without joins. Anything that does not line up is left out."""
    while isinstance(query, exp.Subquery):
        query = query.this
    if not isinstance(node, dict):
        return []
    pairs: list[tuple[dict[str, Any], exp.Select]] = []
    with_ = query.args.get("with_") if isinstance(query, exp.Query) else None
    ctes = {cte.alias_or_name.lower(): cte.this for cte in (with_.expressions if with_ else [])}
    for entry in (node.get("cte_map") or {}).get("map") or []:
        body = ctes.get(str(entry.get("key", "")).lower())
        inner = (entry.get("value") or {}).get("query_node")
        if body is not None:
            pairs += _pairs(inner, body)
    if node.get("type") == "SET_OPERATION_NODE":
        children = node.get("children") or [node.get("left")]
        if isinstance(query, exp.SetOperation) and children:
            pairs += _pairs(children[0], query.left)
        return pairs
    if node.get("type") != "SELECT_NODE" or not isinstance(query, exp.Select):
        return pairs
    pairs.append((node, query))
    source = node.get("from_table") or {}
    from_ = query.args.get("from_")
    if source.get("type") == "SUBQUERY" and from_ is not None and not query.args.get("joins"):
        inner = (source.get("subquery") or {}).get("node")
        if isinstance(from_.this, exp.Subquery):
            pairs += _pairs(inner, from_.this)
    return pairs


def name_outputs(con: Any, text: str, tree: exp.Expr) -> None:
    """Alias each unnamed, non-column projection of ``tree``'s outermost SELECT, its CTEs
    and FROM subqueries with the name DuckDB gives it in ``text`` (in place: ``tree`` is
    meshsim's own parse of ``text``)."""
    from meshsim import engine as duck

    if not any(_unnamed(select) for select in tree.find_all(exp.Select)):
        return
    try:
        doc = json.loads(duck.serialize_sql(con, text))
        template = json.loads(_template(con))
    except (TypeError, ValueError):
        return
    statements = doc.get("statements") or []
    if doc.get("error") or len(statements) != 1:
        return
    wanted: list[tuple[exp.Select, int]] = []
    docs: list[str] = []
    for node, select in _pairs(statements[0].get("node"), tree):
        listed = node.get("select_list")
        if not isinstance(listed, list) or len(listed) != len(select.expressions):
            continue
        for i in _unnamed(select):
            expression = listed[i]
            if not isinstance(expression, dict) or expression.get("alias"):
                continue
            template["statements"][0]["node"]["select_list"] = [expression]
            docs.append(json.dumps(template))
            wanted.append((select, i))
    printed = duck.deserialize_sql(con, docs) or []
    names: dict[int, tuple[exp.Select, dict[int, exp.Identifier]]] = {}
    for (select, i), text in zip(wanted, printed, strict=False):
        if not text.startswith("SELECT "):
            continue
        alias = exp.to_identifier(text[len("SELECT ") :], quoted=True)
        alias.meta["case_sensitive"] = True  # DuckDB keeps a name's case; so must qualify
        names.setdefault(id(select), (select, {}))[1][i] = alias
    # one new select list per SELECT: replacing projections one by one walks the list each
    # time, quadratic in the number of projections
    for select, aliases in names.values():
        projections = list(select.expressions)
        for i, alias in aliases.items():
            projections[i] = exp.alias_(projections[i], alias, copy=False)
        select.set("expressions", projections)


def _unnamed(select: exp.Select) -> list[int]:
    return [
        i
        for i, projection in enumerate(select.expressions)
        if not isinstance(projection, exp.Alias | exp.Column | exp.Star)
    ]
