"""Defence in depth: check the FINAL SQL with DuckDB's own parser before running it.

``json_serialize_sql`` gives DuckDB's parse tree. It must hold exactly one SELECT, and:

* every BASE_TABLE is a CTE name of the query (no schema or catalog): mesh tables were all
  replaced by scans, so any other table name means something slipped through;
* every TABLE_FUNCTION is ``read_parquet`` over a literal list of exactly the files the
  planner bound (options ``union_by_name``/``hive_partitioning``/``file_row_number`` only),
  an allowlisted series function, or ``unnest`` (whose argument is checked like any
  expression);
* every FUNCTION is on :data:`meshsim.query.allowlist.DUCKDB_FUNCTIONS`, without schema or
  catalog; no COLUMNS(...) star (but ``ORDER BY ALL``) and no positional reference.

meshsim's own storage scans (checked alone, ``scan=True``) may also use
:data:`SCAN_FUNCTIONS`; of ``remap_struct`` only the first argument is an expression, and its
others must be constants (:func:`_constant_mapping`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from meshsim.errors import QueryError
from meshsim.query import allowlist

_READ_PARQUET_OPTIONS = frozenset({"union_by_name", "hive_partitioning", "file_row_number"})
#: Functions only meshsim's storage scans use: a deletion vector is a string literal cast to a
#: list and unnested, or cast to a bit string and probed (see ``meshsim.storage.scan``).
#: ``remap_struct`` maps the fields of a nested column of a column-mapped table from their
#: physical names to the logical ones (see ``meshsim.storage.nested``).
SCAN_FUNCTIONS = frozenset({"unnest", "get_bit", "remap_struct"})
_REMAP = "remap_struct"
_REMAP_ONLY = frozenset({_REMAP})
#: What the constant arguments of ``remap_struct`` are built of, besides constants and casts
#: of them (a struct literal is ``struct_pack``; a field mapped with its own fields ``row``).
_MAPPING_FUNCTIONS = frozenset({"struct_pack", "row"})
_SERIES = frozenset({"range", "generate_series"})
#: ``list_aggregate(list, 'name')`` binds the aggregate its string names from DuckDB's whole
#: catalog: the name must be a plain string of one of these (each also on the allowlist)
_LIST_AGGREGATES = (
    frozenset(
        {
            "min",
            "max",
            "sum",
            "avg",
            "count",
            "first",
            "last",
            "any_value",
            "string_agg",
            "median",
            "mode",
            "product",
            "bool_and",
            "bool_or",
            "stddev",
            "stddev_samp",
            "stddev_pop",
            "var_samp",
            "var_pop",
            "variance",
            "approx_count_distinct",
            "list",
            "array_agg",
            "histogram",
            "entropy",
            "kurtosis",
            "skewness",
            "fsum",
            "favg",
        }  # fmt: skip
    )
    & allowlist.DUCKDB_FUNCTIONS
)
#: LIKE, ILIKE, GLOB and their negations: the pattern (second argument) is only a value
_PATTERN_OPERATORS = frozenset({"~~", "!~~", "~~*", "!~~*", "~~~", "!~~~"})


def _is_order_by_all(expression: Any) -> bool:
    """``ORDER BY ALL``, which DuckDB parses as a bare ``COLUMNS(*)`` ordering: the query's
    own output columns, nothing else."""
    return (
        isinstance(expression, dict)
        and expression.get("class") == "STAR"
        and expression.get("columns") is True
        and expression.get("expr") is None
        and not expression.get("relation_name")
        and not any(
            expression.get(k)
            for k in ("exclude_list", "replace_list", "qualified_exclude_list", "rename_list")
        )
    )


def _is_function(node: Any, names: frozenset[str]) -> bool:
    return (
        isinstance(node, dict)
        and node.get("class") == "FUNCTION"
        and str(node.get("function_name", "")).lower() in names
        and not node.get("schema")
        and not node.get("catalog")
    )


def _constant_mapping(node: Any) -> bool:
    """A constant, a plain cast of one (a typed NULL), or struct_pack/row of those."""
    if not isinstance(node, dict):
        return False
    if node.get("class") == "CONSTANT":
        return True
    if node.get("class") == "CAST":
        return not node.get("try_cast") and _constant_mapping(node.get("child"))
    return (
        _is_function(node, _MAPPING_FUNCTIONS)
        and not node.get("filter")
        and not node.get("distinct")
        and not (node.get("order_bys") or {}).get("orders")
        and all(_constant_mapping(a.get("expression")) for a in node.get("arguments") or [])
    )


def _remap_is_constant(node: dict[str, Any]) -> bool:
    arguments = node.get("arguments") or []
    return (
        len(arguments) == 4
        and not node.get("filter")
        and not node.get("distinct")
        and all(_constant_mapping(a.get("expression")) for a in arguments[1:])
    )


def _nodes(value: Any) -> Iterator[dict[str, Any]]:
    """Every node of a parse tree, depth first in document order (a stack, not recursion:
    a generator per level made this walk cost a tenth of planning)."""
    stack = [value]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(reversed(value))
            continue
        if not isinstance(value, dict):
            continue
        yield value
        if _is_function(value, _REMAP_ONLY):
            # its other arguments are constants, checked whole by _remap_is_constant
            stack.append((value.get("arguments") or [{}])[0])
            continue
        kind = value.get("type")
        children = []
        for key, child in value.items():
            if not isinstance(child, dict | list):
                continue
            if kind == "TABLE_FUNCTION" and key == "function" and not _unnest(child):
                continue  # checked whole by _check_table_function
            if kind == "ORDER_MODIFIER" and key == "orders":
                child = [o for o in child if not _is_order_by_all(o.get("expression"))]
            children.append(child)
        stack.extend(reversed(children))


def _unnest(function: Any) -> bool:
    """``unnest(...)`` in FROM: it reads only its argument, which is checked as any other
    expression (walked like the rest of the tree)."""
    return isinstance(function, dict) and (
        str(function.get("function_name", "")).lower() == "unnest"
        and not function.get("schema")
        and not function.get("catalog")
    )


def _refuse(reason: str, consumer: str | None) -> QueryError:
    return QueryError(
        f"the rewritten query failed meshsim's final safety check ({reason}); nothing was run",
        consumer=consumer,
        hint="simplify the query; if it should be allowed, report it with 'meshsim explain'",
    )


def crosscheck(
    serialized: str,
    *,
    ctes: frozenset[str],
    files: frozenset[str],
    consumer: str | None = None,
    scan: bool = False,
) -> None:
    """Raise :class:`QueryError` unless DuckDB's parse of the final SQL is what we built
    (``scan``: the SQL is one of meshsim's storage scans, which may use :data:`SCAN_FUNCTIONS`)."""
    functions = allowlist.DUCKDB_FUNCTIONS | SCAN_FUNCTIONS if scan else allowlist.DUCKDB_FUNCTIONS
    doc = json.loads(serialized)
    if doc.get("error"):
        raise _refuse("DuckDB cannot parse it", consumer)
    statements = doc.get("statements") or []
    if len(statements) != 1:
        raise _refuse("not exactly one statement", consumer)
    root = statements[0].get("node", {})
    if root.get("type") not in ("SELECT_NODE", "SET_OPERATION_NODE"):
        raise _refuse(f"statement type {root.get('type')}", consumer)
    lowered_ctes = {c.lower() for c in ctes}
    for node in _nodes(statements[0]):
        kind = node.get("type")
        if kind == "BASE_TABLE":
            if node.get("schema_name") or node.get("catalog_name"):
                raise _refuse("a qualified table name remained", consumer)
            if str(node.get("table_name", "")).lower() not in lowered_ctes:
                raise _refuse(f"unexpected table '{node.get('table_name')}'", consumer)
        elif kind == "TABLE_FUNCTION":
            _check_table_function(node.get("function") or {}, files, consumer)
        elif node.get("class") == "FUNCTION":
            name = str(node.get("function_name", "")).lower()
            if node.get("schema") or node.get("catalog"):
                raise _refuse(f"qualified function '{name}'", consumer)
            if name not in functions or name in ("read_parquet",):
                raise _refuse(f"function '{name}'", consumer)
            if name == _REMAP and not _remap_is_constant(node):
                raise _refuse(f"{_REMAP} with a mapping that is not constant", consumer)
            arguments = [a.get("expression") or {} for a in node.get("arguments") or []]
            if any(a.get("class") == "STAR" for a in arguments):
                # '* LIKE pattern' and kin: DuckDB would pick the columns by a string
                raise _refuse(f"a star as an argument of '{name}'", consumer)
            if name == "list_aggregate" and _string_text(arguments[1:2]) not in _LIST_AGGREGATES:
                raise _refuse("list_aggregate without an allowed aggregate's name", consumer)
        elif node.get("class") == "STAR" and node.get("columns"):
            raise _refuse("COLUMNS(...)", consumer)
        elif node.get("class") == "POSITIONAL_REFERENCE":
            raise _refuse("positional reference", consumer)


def _string_text(arguments: list[dict[str, Any]]) -> str | None:
    """The text of a lone plain string constant (lower case), else None."""
    if len(arguments) != 1 or arguments[0].get("class") != "CONSTANT":
        return None
    literal = arguments[0].get("literal") or {}
    return str(literal.get("text", "")).lower() if literal.get("kind") == "STRING" else None


def _check_table_function(
    function: dict[str, Any], files: frozenset[str], consumer: str | None
) -> None:
    name = str(function.get("function_name", "")).lower()
    if function.get("schema") or function.get("catalog"):
        raise _refuse("qualified table function", consumer)
    if _unnest(function):
        return
    arguments = function.get("arguments") or []
    if name in _SERIES:
        for arg in arguments:
            expression = arg.get("expression", {})
            if expression.get("class") != "CONSTANT":
                raise _refuse(f"non-constant argument to {name}", consumer)
        return
    if name != "read_parquet" or not arguments:
        raise _refuse(f"table function '{name}'", consumer)
    first, options = arguments[0], arguments[1:]
    paths = first.get("expression", {})
    if first.get("name") or paths.get("function_name") != "list_value":
        raise _refuse("read_parquet without a literal file list", consumer)
    for item in paths.get("arguments") or []:
        literal = item.get("expression", {})
        if literal.get("class") != "CONSTANT":
            raise _refuse("read_parquet with a computed path", consumer)
        path = literal.get("literal", {}).get("text")
        if path not in files:
            raise _refuse("read_parquet over a file the planner did not bind", consumer)
    for option in options:
        expression = option.get("expression", {})
        if option.get("name") not in _READ_PARQUET_OPTIONS or expression.get("class") != "CONSTANT":
            raise _refuse("unexpected read_parquet option", consumer)


def parse_shape(serialized: str) -> str:
    """DuckDB's parse of a statement (``json_serialize_sql``) without what cannot change what
    it binds to: every position in the query text, and the text of a constant (a string or a
    number; its kind is kept) where it can only be a value: an operand of a comparison, IN
    list or BETWEEN, a LIKE/GLOB pattern, a CASE result, or cast to a type. Every other
    constant keeps its text (a function's argument may name a field, a format, an aggregate,
    and a number an output position or a row count: it can change what is bound).

    A statement's sources are bound from its table references (names, kept) and table
    functions (only ``range``/``generate_series`` over constants and ``unnest`` pass
    :func:`crosscheck`). So two statements of one shape, each passing :func:`crosscheck`,
    scan the same. The shape is returned as its SHA-256 (a long query's parse is megabytes)."""
    import hashlib

    shape = json.dumps(json.loads(serialized, object_hook=_shape_node), separators=(",", ":"))
    return hashlib.sha256(shape.encode()).hexdigest()


#: the kinds of constant whose text a shape leaves out where only a value can stand
_VALUE_KINDS = frozenset({"STRING", "INTEGER", "NUMERIC"})


def _value_only(node: Any) -> None:
    """Drop the text of ``node`` if it is a constant (or a cast of one)."""
    if not isinstance(node, dict):
        return
    if node.get("class") == "CAST":
        node = node.get("child")
        if not isinstance(node, dict):
            return
    literal = node.get("literal") if node.get("class") == "CONSTANT" else None
    if isinstance(literal, dict) and literal.get("kind") in _VALUE_KINDS:
        node["literal"] = {"kind": literal["kind"]}


def _shape_node(node: dict[str, Any]) -> dict[str, Any]:
    # json.loads calls this innermost first: a node's children are already shaped
    node.pop("query_location", None)
    node.pop("query_location_length", None)
    kind = node.get("class")
    if kind == "CAST":
        _value_only(node.get("child"))
    elif kind == "COMPARISON":
        _value_only(node.get("left"))
        _value_only(node.get("right"))
    elif kind == "BETWEEN":
        for key in ("input", "lower", "upper"):
            _value_only(node.get(key))
    elif kind == "OPERATOR" and node.get("type") in ("COMPARE_IN", "COMPARE_NOT_IN"):
        for child in node.get("children") or []:
            _value_only(child)
    elif kind == "CASE":
        for check in node.get("case_checks") or []:
            if isinstance(check, dict):
                _value_only(check.get("then_expr"))
        _value_only(node.get("else_expr"))
    elif kind == "FUNCTION" and node.get("function_name") in _PATTERN_OPERATORS:
        arguments = node.get("arguments") or []
        if len(arguments) == 2 and isinstance(arguments[1], dict):
            _value_only(arguments[1].get("expression"))
    return node
