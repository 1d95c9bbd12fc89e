"""Rule 0: accept exactly one read-only query made only of allowlisted syntax.

The consumer's text is parsed once with sqlglot (dialect duckdb). Refused: several statements,
anything that is not a SELECT / set operation / VALUES query, ``SELECT ... INTO`` (sqlglot
would regenerate it as CREATE TABLE), opaque ``Command`` nodes, any syntax node or function not
on :mod:`meshsim.query.allowlist`, and table functions other than a bounded
``range``/``generate_series`` over literal integers.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from meshsim.errors import QueryError
from meshsim.query import allowlist

QUERY_TYPES = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Values)


def parse_query(text: str, *, consumer: str | None = None) -> exp.Query:
    """Parse ``text`` into exactly one read-only query, or raise :class:`QueryError`."""
    import sqlglot

    if not isinstance(text, str) or not text.strip():
        raise QueryError("the query is empty", consumer=consumer)
    try:
        statements = [s for s in sqlglot.parse(text, read="duckdb") if s is not None]
    except (ParseError, TokenError) as exc:
        errors = getattr(exc, "errors", None) or [{}]
        detail = errors[0].get("description") or "cannot parse the query"
        raise QueryError(f"the query is not valid SQL: {detail}", consumer=consumer) from None
    if len(statements) != 1:
        raise QueryError(
            f"send exactly one statement, found {len(statements)}",
            consumer=consumer,
            hint="split the text and run one query at a time",
        )
    tree = statements[0]
    if not isinstance(tree, QUERY_TYPES):
        raise QueryError(
            f"only read-only queries (SELECT, UNION, INTERSECT, EXCEPT, VALUES) are allowed, "
            f"found {_kind(tree)}",
            consumer=consumer,
        )
    check_syntax(tree, consumer=consumer, what="the query")
    return tree


def _kind(node: exp.Expression) -> str:
    if isinstance(node, exp.Command):
        return f"the command {str(node.this).upper()}"
    return f"a {node.key.upper()} statement"


def check_syntax(tree: exp.Expression, *, consumer: str | None = None, what: str) -> None:
    """Refuse any node, function or table function that is not allowlisted."""
    for node in tree.walk():
        name = type(node).__name__
        if isinstance(node, exp.Select) and node.args.get("into") is not None:
            raise QueryError(f"{what}: SELECT ... INTO is not allowed", consumer=consumer)
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Func):
            _check_table_function(node.this, consumer=consumer, what=what)
            continue
        if name in allowlist.NODES:
            if isinstance(node, exp.Star) and any(node.args.get(k) for k in ("rename",)):
                raise QueryError(f"{what}: '* RENAME' is not allowed", consumer=consumer)
            continue
        if isinstance(node, exp.Anonymous):
            fname = str(node.name).lower()
            if fname in allowlist.ANONYMOUS:
                continue
            raise QueryError(
                f"{what}: function '{node.name}' is not allowed",
                consumer=consumer,
                hint="meshsim allows common scalar, aggregate and window functions only",
            )
        if isinstance(node, exp.Func):
            if name in allowlist.FUNCTIONS or (
                name in allowlist.TABLE_FUNCTIONS and _in_from(node)
            ):
                continue
            fname = node.sql_name() if hasattr(node, "sql_name") else name
            raise QueryError(
                f"{what}: function '{fname}' is not allowed",
                consumer=consumer,
                hint="meshsim allows common scalar, aggregate and window functions only",
            )
        if isinstance(node, exp.Command):
            raise QueryError(
                f"{what}: the command {str(node.this).upper()} is not allowed", consumer=consumer
            )
        raise QueryError(f"{what}: '{_describe(node)}' is not allowed", consumer=consumer)


def _in_from(node: exp.Expression) -> bool:
    return isinstance(node.parent, exp.Table)


def _describe(node: exp.Expression) -> str:
    try:
        text = node.sql(dialect="duckdb")
    except Exception:  # noqa: BLE001 - describing a node must not fail
        text = node.key
    return text if len(text) <= 60 else text[:57] + "..."


def _check_table_function(func: exp.Func, *, consumer: str | None, what: str) -> None:
    """``range``/``generate_series`` with literal integer bounds and bounded size only."""
    name = type(func).__name__
    if name not in allowlist.TABLE_FUNCTIONS:
        fname = func.name if isinstance(func, exp.Anonymous) else func.sql_name()
        raise QueryError(
            f"{what}: table function '{fname}' is not allowed; read mesh tables as domain.table",
            consumer=consumer,
        )
    bounds = []
    for key in ("start", "end", "step"):
        arg = func.args.get(key)
        if arg is None:
            continue
        value = arg.this if isinstance(arg, exp.Neg) else arg
        if not (isinstance(value, exp.Literal) and not value.is_string and value.is_int):
            raise QueryError(
                f"{what}: range/generate_series takes literal integers only", consumer=consumer
            )
        number = int(value.this)
        bounds.append(-number if isinstance(arg, exp.Neg) else number)
    start, end = (bounds + [0, 0])[:2]
    step = bounds[2] if len(bounds) > 2 else 1
    if step == 0 or abs(end - start) // abs(step) > allowlist.MAX_SERIES_ROWS:
        raise QueryError(
            f"{what}: range/generate_series may produce at most {allowlist.MAX_SERIES_ROWS:,} rows",
            consumer=consumer,
        )
