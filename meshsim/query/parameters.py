"""Bound parameters: ``session.sql(query, params)`` as ``duckdb.execute(query, params)``.

``?`` (in order) and ``$1`` (by number) take a list or tuple; ``$name`` takes a dict (names
match case-insensitively, as in DuckDB). Each placeholder is replaced in meshsim's own parse
by a typed literal *before* any rule reads the query, so a parameter is a value, governed like
any literal the consumer could have written, and can never become syntax. The plan cache keys
on the bound text (:func:`bound_text`), so two values never share a plan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlglot import exp

from meshsim.errors import QueryError

Params = Sequence[Any] | Mapping[str, Any]

#: The integers DuckDB binds (HUGEINT down, UHUGEINT up); it refuses any other Python int.
INT_RANGE = (-(2**127), 2**128 - 1)
SUPPORTED_TYPES = "None, bool, int, float, Decimal, str, date, datetime, time, or a list of them"


def check_params(params: object, consumer: str | None) -> Params | None:
    if params is None or isinstance(params, Mapping):
        return params
    if isinstance(params, list | tuple):
        return params
    raise QueryError(
        f"query parameters must be a list or tuple (for ? and $1) or a dict (for $name), got "
        f"{type(params).__name__}",
        consumer=consumer,
    )


def check_params_size(params: Params | None, max_chars: int, consumer: str | None) -> None:
    """Parameters count against the query's size limit: they are bound into the text that
    runs and is audited, so a 20 MB string must not pass where a 20 MB query would not."""
    if not params:
        return
    values = params.values() if isinstance(params, Mapping) else params
    size = sum(len(str(v)) for v in values)
    if size > max_chars:
        raise QueryError(
            f"the query's parameters hold {size:,} characters, more than {max_chars:,} "
            f"(limit max_query_chars)",
            consumer=consumer,
            hint="pass large values as data: write them to a table first",
        )


def number_placeholders(text: str, consumer: str | None) -> str:
    """``text`` with each ``?`` written ``$1``, ``$2``... in the order of the text (sqlglot's
    tree does not keep the order of its placeholders; a string or comment holding ``?`` is
    left alone). Mixing ``?`` with ``$1`` / ``$name`` is refused, as DuckDB refuses it.

    >>> number_placeholders("SELECT ? + 1, '?', ? -- ?", None)
    "SELECT $1 + 1, '?', $2 -- ?"
    """
    from sqlglot.dialects.duckdb import DuckDB
    from sqlglot.errors import TokenError
    from sqlglot.tokens import TokenType

    try:
        tokens = DuckDB().tokenize(text)
    except TokenError:
        return text  # rule parse reports it
    # sqlglot reads ``?::`` (a placeholder, then a cast) as one token
    marks = [
        t
        for t in tokens
        if (t.token_type == TokenType.PLACEHOLDER and t.text == "?")
        or (t.token_type == TokenType.QDCOLON and t.text == "?::")
    ]
    if not marks:
        return text
    if any(t.token_type == TokenType.PARAMETER for t in tokens):
        raise QueryError(
            "the query mixes parameter styles (?, $1, $name); use one", consumer=consumer
        )
    for number, token in reversed(list(enumerate(marks, start=1))):
        text = f"{text[: token.start]}${number}{text[token.start + 1 :]}"
    return text


NOT_A_VALUE = "a parameter stands for a value; it cannot name a table/column/alias or a position"

#: Nodes whose every part is a name, and what a placeholder there would name.
_NAMING: tuple[tuple[type[exp.Expr], str], ...] = (
    (exp.Table, "a table name"),
    (exp.TableAlias, "a relation alias"),
    (exp.CTE, "a CTE name"),
    (exp.Column, "a column name"),
    (exp.Dot, "a qualified name"),
    (exp.Star, "a column of * EXCLUDE/REPLACE/RENAME"),
    (exp.Columns, "a COLUMNS(...) pattern"),
    (exp.Identifier, "a name"),
)
#: Lists whose bare integer items DuckDB reads as positions of the select list.
_POSITIONAL: tuple[tuple[type[exp.Expr], str], ...] = (
    (exp.Group, "a GROUP BY item"),
    (exp.Rollup, "a GROUP BY ROLLUP item"),
    (exp.Cube, "a GROUP BY CUBE item"),
    (exp.GroupingSets, "a GROUP BY GROUPING SETS item"),
)


def check_value_positions(tree: exp.Expr, consumer: str | None) -> None:
    """Refuse a placeholder anywhere but where a value expression may stand: bound as a
    literal, it would otherwise name a table, CTE, alias or column (``FROM customer.?``,
    ``SELECT 1 AS ?``) or, as a bare GROUP BY / ORDER BY / DISTINCT ON item, a position."""
    for placeholder in tree.find_all(exp.Placeholder):
        where = _not_a_value(placeholder)
        if where:
            raise QueryError(
                f"{NOT_A_VALUE} ({_shown(placeholder)} is {where})",
                consumer=consumer,
                hint="write names and positions in the query text; bind only values",
            )


def _not_a_value(placeholder: exp.Placeholder) -> str:
    """What ``placeholder`` would stand for if not a value ('' when it is a value)."""
    parent = placeholder.parent
    if isinstance(parent, exp.Alias) and placeholder.arg_key == "alias":
        return "an alias"
    for kind, what in _NAMING:
        if isinstance(parent, kind):
            return what
    node: exp.Expr = placeholder
    while isinstance(node.parent, exp.Paren | exp.Tuple):
        node = node.parent  # GROUP BY (?) and DISTINCT ON (?) are still positions
    parent, key = node.parent, node.arg_key
    for kind, what in _POSITIONAL:
        if isinstance(parent, kind):
            return what
    if isinstance(parent, exp.Ordered) and key == "this":
        return "an ORDER BY item"
    if isinstance(parent, exp.Distinct) and key == "on":
        return "a DISTINCT ON item"
    return ""


def bind_parameters(tree: exp.Expr, params: Params | None, consumer: str | None) -> exp.Expr:
    """``tree`` with every placeholder replaced by its parameter as a literal (in place:
    ``tree`` is meshsim's own parse). Too few or too many values, an unknown name, or a mix
    of styles is a :class:`QueryError` naming what is wrong."""
    placeholders = list(tree.find_all(exp.Placeholder))
    if params is None:
        if placeholders:
            raise QueryError(
                f"the query has {len(placeholders)} parameter placeholder(s) "
                f"({_shown(placeholders[0])}) but no parameters were given",
                consumer=consumer,
                hint="pass them: session.sql(query, [value, ...]) or {name: value}",
            )
        return tree
    check_value_positions(tree, consumer)
    styles = {_style(p) for p in placeholders}
    if len(styles) > 1:
        raise QueryError(
            "the query mixes parameter styles (?, $1, $name); use one", consumer=consumer
        )
    style = styles.pop() if styles else ("named" if isinstance(params, Mapping) else "positional")
    if style == "named":
        if not isinstance(params, Mapping):
            raise QueryError(
                "the query names its parameters ($name): pass a dict, not a list",
                consumer=consumer,
            )
        values: dict[str, Any] = {}
        spelled: dict[str, str] = {}
        for key, value in params.items():
            name = str(key).lower()
            if name in values:
                raise QueryError(
                    f"parameters ${spelled[name]} and ${key} differ only by case; names match "
                    f"case-insensitively, as in DuckDB: give one",
                    consumer=consumer,
                )
            values[name], spelled[name] = value, str(key)
        used = {str(p.this).lower() for p in placeholders}
        missing = sorted(used - set(values))
        if missing:
            raise QueryError(
                f"no value for parameter ${missing[0]} (given: "
                f"{', '.join('$' + k for k in sorted(values)) or 'none'})",
                consumer=consumer,
            )
        unused = sorted(set(values) - used)
        if unused:
            raise QueryError(
                f"parameter ${unused[0]} is not used by the query (placeholders: "
                f"{', '.join('$' + k for k in sorted(used)) or 'none'})",
                consumer=consumer,
            )
        for placeholder in placeholders:
            placeholder.replace(literal(values[str(placeholder.this).lower()], consumer))
        return tree
    if isinstance(params, Mapping):
        raise QueryError(
            "the query has positional parameters (? or $1): pass a list, not a dict",
            consumer=consumer,
        )
    if style == "positional" and placeholders:
        # sqlglot's tree does not keep the order of the text: a ? that number_placeholders
        # did not number cannot be bound to the right value
        raise QueryError(
            "meshsim could not number the ? placeholders in the order of the text; write "
            "them $1, $2, ... instead",
            consumer=consumer,
        )
    numbers = [int(str(p.this)) for p in placeholders]
    expected = max(numbers, default=0)
    if len(params) != expected:
        raise QueryError(
            f"the query takes {expected} parameter(s), {len(params)} given", consumer=consumer
        )
    if min(numbers, default=1) < 1:
        raise QueryError("parameters are numbered from $1", consumer=consumer)
    skipped = sorted(set(range(1, expected + 1)) - set(numbers))
    if skipped:
        raise QueryError(
            f"parameter ${skipped[0]} is not used by the query (placeholders: "
            f"{', '.join(f'${n}' for n in sorted(set(numbers)))})",
            consumer=consumer,
        )
    for placeholder, number in zip(placeholders, numbers, strict=True):
        placeholder.replace(literal(params[number - 1], consumer))
    return tree


def _style(placeholder: exp.Placeholder) -> str:
    name = placeholder.this
    if name is None or name == "":
        return "positional"
    return "numbered" if str(name).isdigit() else "named"


def _shown(placeholder: exp.Placeholder) -> str:
    return "?" if placeholder.this in (None, "") else f"${placeholder.this}"


def literal(value: Any, consumer: str | None) -> exp.Expr:
    """A Python value as the SQL literal DuckDB would bind it as."""
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int):
        if not INT_RANGE[0] <= value <= INT_RANGE[1]:
            raise QueryError(
                f"integer parameter {value} is out of the range DuckDB binds (128 bits: "
                f"{INT_RANGE[0]} to {INT_RANGE[1]}); pass it as a Decimal or a str",
                consumer=consumer,
            )
        return exp.Literal.number(value) if value >= 0 else exp.Neg(this=exp.Literal.number(-value))
    if isinstance(value, float):
        text = repr(value) if math.isfinite(value) else str(value)
        return exp.cast(exp.Literal.string(text), "DOUBLE")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise QueryError(f"parameter {value!r} is not a finite decimal", consumer=consumer)
        return exp.cast(exp.Literal.string(str(value)), _decimal_type(value))
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise QueryError(
                f"a string parameter is not valid text: character {exc.start} is an unpaired "
                f"surrogate (\\u{ord(value[exc.start]):04x})",
                consumer=consumer,
            ) from None
        return exp.Literal.string(value)
    if isinstance(value, datetime):
        kind = "TIMESTAMPTZ" if value.tzinfo is not None else "TIMESTAMP"
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), kind)
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    if isinstance(value, time):
        return exp.cast(exp.Literal.string(value.isoformat()), "TIME")
    if isinstance(value, list | tuple):
        return exp.Array(expressions=[literal(v, consumer) for v in value])
    raise QueryError(
        f"a query parameter of type {type(value).__name__} cannot be bound (supported: "
        f"{SUPPORTED_TYPES})",
        consumer=consumer,
    )


def _decimal_type(value: Decimal) -> exp.DataType:
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    scale = max(0, -exponent)
    precision = max(len(digits) + max(exponent, 0), scale, 1)
    if precision > 38:
        return exp.DataType.build("DOUBLE")
    return exp.DataType.build(f"DECIMAL({precision}, {scale})", dialect="duckdb")


def bound_text(tree: exp.Expr, wrapper: str = "") -> str:
    """The statement with its parameters bound, as the plan cache's key: the wrapper parse
    unwrapped (EXPLAIN) and the query's text with every value in it, so neither two values
    nor a query and its EXPLAIN ever share a plan."""
    text = tree.sql(dialect="duckdb")
    return f"{wrapper} {text}" if wrapper else text


def audit_text(text: str, params: Params | None) -> str:
    """What the audit records: the consumer's text and, when given, its parameters (their
    repr cut at :data:`AUDITED_PARAMS_CHARS`, saying so and how long it was: parameters past
    the size limit are refused, yet their attempt is audited)."""
    if params is None:
        return text
    shown = repr(params)
    if len(shown) > AUDITED_PARAMS_CHARS:
        shown = f"{shown[:AUDITED_PARAMS_CHARS]}... (cut; {len(shown):,} characters in all)"
    return f"{text}\n-- parameters: {shown}"


#: how much of the parameters' repr an audit record keeps
AUDITED_PARAMS_CHARS = 10_000
