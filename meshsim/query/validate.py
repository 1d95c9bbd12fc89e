"""Rules parse and validate: exactly one read-only query, of bounded size, made only of
allowlisted syntax, whose relation names DuckDB cannot take for anything but what sqlglot sees.

The consumer's text is parsed once with sqlglot (dialect duckdb). Refused: text over
``max_chars``, parentheses nested deeper than ``max_nesting`` (sqlglot's parser recurses about
23 frames a level), several statements, anything that is not a SELECT / set operation /
VALUES query, more than ``max_nodes`` syntax nodes (DuckDB's optimizer, which does not look
at interrupts, is quadratic in the size of a predicate), ``SELECT ... INTO``, opaque
``Command`` nodes, any syntax node or function not on :mod:`meshsim.query.allowlist`, table
functions other than a bounded ``range``/``generate_series`` over literal integers, relation
names (CTEs, aliases) that could name a file, and recursive CTEs in a shape DuckDB binds
differently from sqlglot. Long AND/OR chains are rebalanced so later rules stay linear.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TypeVar, cast

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token

from meshsim.errors import QueryError
from meshsim.query import allowlist

QUERY_TYPES = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Values)
#: statements that would write (sqlglot class names): refused as writes, not as missing
WRITES = frozenset(
    {"Insert", "Update", "Delete", "Create", "Drop", "Alter", "Merge", "Copy", "TruncateTable"}
)

#: A relation name (CTE, table or subquery alias) is a word: letters, digits, underscores,
#: inner spaces and hyphens. No dot, slash, star, question mark, colon, tilde or backslash,
#: so DuckDB can never bind it as a replacement scan of a file.
Q = TypeVar("Q", bound=exp.Expr)

RELATION_NAME = re.compile(r"^\w(?:[\w $-]*\w)?$")


@dataclass(frozen=True)
class QueryBounds:
    """Size limits on a consumer's query text (see the module docstring for why)."""

    max_chars: int = 100_000
    max_nesting: int = 32
    max_nodes: int = 10_000


class _NoCommandFallbackNotice(logging.Filter):
    """sqlglot logs a warning when it falls back to an opaque ``Command`` node; meshsim
    refuses Commands with its own message, so the warning would be a second, confusing line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Falling back to parsing as a 'Command'" not in record.getMessage()


logging.getLogger("sqlglot").addFilter(_NoCommandFallbackNotice())


def parse_query(
    text: str, *, consumer: str | None = None, bounds: QueryBounds | None = None
) -> exp.Query:
    """Parse ``text`` into exactly one read-only query, or raise :class:`QueryError`
    (rules parse and validate together)."""
    return validate_query(
        parse_statement(text, consumer=consumer, bounds=bounds), consumer=consumer, bounds=bounds
    )


def parse_statement(
    text: str, *, consumer: str | None = None, bounds: QueryBounds | None = None
) -> exp.Expr:
    """Rule parse: ``text`` within the bounds, parsed by sqlglot into exactly one statement."""
    bounds = bounds or QueryBounds()
    if not isinstance(text, str):
        raise QueryError(
            f"the query must be a string of SQL, got {type(text).__name__}", consumer=consumer
        )
    if not text.strip():
        raise QueryError("the query is empty", consumer=consumer)
    if len(text) > bounds.max_chars:
        raise QueryError(
            f"the query is {len(text):,} characters long; meshsim accepts at most "
            f"{bounds.max_chars:,} (limit max_query_chars)",
            consumer=consumer,
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise QueryError(
            f"the query is not valid text: character {exc.start} is an unpaired surrogate "
            f"(\\u{ord(text[exc.start]):04x})",
            consumer=consumer,
        ) from None
    dialect = Dialect.get_or_raise("duckdb")
    try:
        tokens = dialect.tokenize(text)  # once: the nesting check, the parser and the keyword
        _check_nesting(tokens, bounds.max_nesting, consumer)
        statements = [s for s in dialect.parser().parse(tokens, text) if s is not None]
    except (ParseError, TokenError) as exc:
        _refuse_incomplete_inspection(text, consumer)
        errors = getattr(exc, "errors", None) or [{}]
        first = errors[0]
        detail = str(first.get("description") or "")
        detail = _CLASS.sub(r"\1", _TOKEN.sub(r"'\1'", detail))
        detail = detail.replace("'SENTINEL'", "the end of the query")
        if isinstance(exc, TokenError) and _DOTTED_PARAMETER.search(str(exc)):
            from meshsim.query.parameters import NOT_A_VALUE

            raise QueryError(f"{NOT_A_VALUE} ($n.$m)", consumer=consumer) from None
        if isinstance(exc, TokenError):
            detail = "cannot split it into tokens (is a string, quoted name or comment not closed?)"
        line, column = first.get("line"), first.get("col")
        width = len(str(first.get("highlight") or "")) or 1
        if isinstance(line, int) and isinstance(column, int):
            start = max(column - width, 0)
            raise QueryError(
                f"the query is not valid SQL: {detail} (line {line}, column {start + 1})"
                + point_at(text, line, start, width),
                consumer=consumer,
                position=_offset(text, line, start),
            ) from None
        raise QueryError(f"the query is not valid SQL: {detail}", consumer=consumer) from None
    except RecursionError:
        raise QueryError(
            f"the query is nested too deeply to plan (meshsim allows {bounds.max_nesting} "
            f"levels of parentheses)",
            consumer=consumer,
        ) from None
    if len(statements) != 1:
        raise QueryError(
            f"send exactly one statement, found {len(statements)}",
            consumer=consumer,
            hint="split the text and run one query at a time",
        )
    return _with_source(statements[0], text, tokens[0].text.upper() if tokens else "")


def _refuse_incomplete_inspection(text: str, consumer: str | None) -> None:
    """A lone DESCRIBE or SUMMARIZE is sqlglot's "Expected table name but got 'SENTINEL'"."""
    from sqlglot.dialects.duckdb import DuckDB

    from meshsim.query.statements import WRAPPERS, incomplete

    try:
        tokens = [t for t in DuckDB().tokenize(text) if t.text != ";"]
    except TokenError:
        return
    if len(tokens) == 1 and tokens[0].text.upper() in WRAPPERS:
        raise incomplete(tokens[0].text.upper(), "a table or a query", consumer)


#: ``meta`` key of a function node: the name as the consumer wrote it (sqlglot normalises
#: ``list`` to ARRAY_AGG, ``unnest`` to EXPLODE, ``random`` to RAND)
SOURCE = "meshsim_source"
#: ``meta`` key of a statement: its first keyword as written
KEYWORD = "meshsim_keyword"


#: sqlglot's tokenizer stops at ``$1.$2`` (a dollar after a dot): names made of parameters
_DOTTED_PARAMETER = re.compile(r"\$\w+\s*\.\s*\$'$")
_CLASS = re.compile(r"<class 'sqlglot\.[\w.]+\.(\w+)'>")
_TOKEN = re.compile(r"<Token token_type: [\w.]+, text: (.*?), line: \d+, col: \d+.*?>")


def point_at(text: str, line: int, start: int, width: int = 1) -> str:
    r"""Lines to append to a message: the query's ``line`` (1-based) and a caret under
    ``width`` characters from column ``start`` (0-based), as DuckDB shows its errors.

    >>> print(point_at("SELECT a,\n  FROM WHERE x", 2, 7, 5))
    <BLANKLINE>
    <BLANKLINE>
    LINE 2:   FROM WHERE x
                   ^^^^^
    """
    lines = text.splitlines() or [""]
    if not 1 <= line <= len(lines):
        return ""
    shown = lines[line - 1]
    prefix = f"LINE {line}: "
    width = max(1, min(width, len(shown) - start)) if start < len(shown) else 1
    return f"\n\n{prefix}{shown}\n{' ' * (len(prefix) + start)}{'^' * width}"


def _offset(text: str, line: int, start: int) -> int:
    lines = text.splitlines(keepends=True)
    return sum(len(x) for x in lines[: line - 1]) + start


def _with_source(statement: exp.Expr, text: str, keyword: str) -> exp.Expr:
    for node in statement.walk():
        start, end = node.meta.get("start"), node.meta.get("end")
        if isinstance(node, exp.Func) and isinstance(start, int) and isinstance(end, int):
            node.meta[SOURCE] = text[start : end + 1]
    statement.meta[KEYWORD] = keyword
    return statement


def validate_query(
    tree: exp.Expr, *, consumer: str | None = None, bounds: QueryBounds | None = None
) -> exp.Query:
    """Rule validate: a read-only query of allowlisted syntax and bounded size; returns it
    with AND/OR chains balanced (the tree is the caller's own parse, changed in place)."""
    bounds = bounds or QueryBounds()
    if not isinstance(tree, QUERY_TYPES):
        from meshsim.query.statements import SUPPORTED

        if isinstance(tree, exp.Pivot):
            raise QueryError(
                "the PIVOT / UNPIVOT statement is not supported by meshsim; the PIVOT and "
                "UNPIVOT clauses with explicit IN lists are",
                consumer=consumer,
                hint=PIVOT_HINT,
            )
        if type(tree).__name__ in WRITES:
            raise QueryError(
                f"meshsim answers read-only queries; {_kind(tree)} changes data or the "
                f"catalog and is not allowed",
                consumer=consumer,
            )
        raise QueryError(
            f"{_kind(tree)} is not supported by meshsim (supported: {SUPPORTED})",
            consumer=consumer,
        )
    nodes = sum(1 for _ in tree.walk())
    if nodes > bounds.max_nodes:
        raise QueryError(
            f"the query has {nodes:,} syntax nodes; meshsim accepts at most "
            f"{bounds.max_nodes:,} (limit max_query_nodes)",
            consumer=consumer,
            hint="use IN (...) or a join instead of long chains of predicates",
        )
    check_syntax(tree, consumer=consumer, what="the query")
    check_pivots(tree, consumer=consumer)
    check_relation_names(tree, consumer=consumer)
    check_recursive_ctes(tree, consumer=consumer)
    return balance_connectives(cast(exp.Query, tree))


def _check_nesting(tokens: list[Token], limit: int, consumer: str | None) -> None:
    """Refuse parentheses (or brackets) nested deeper than ``limit``, from the tokens, before
    the recursive parser sees them."""
    from sqlglot.tokens import TokenType

    opening = {TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE}
    closing = {TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE}
    depth = deepest = 0
    for token in tokens:
        if token.token_type in opening:
            depth += 1
            deepest = max(deepest, depth)
        elif token.token_type in closing:
            depth -= 1
    if deepest > limit:
        raise QueryError(
            f"the query nests parentheses {deepest} levels deep; meshsim allows at most "
            f"{limit} (limit max_query_nesting)",
            consumer=consumer,
            hint="flatten the expression, or move parts into WITH clauses",
        )


PIVOT_HINT = (
    "write FROM t PIVOT (sum(x) FOR col IN (1, 2)) or FROM t UNPIVOT (value FOR name IN "
    "(col1, col2))"
)


def check_pivots(tree: exp.Expr, *, consumer: str | None = None) -> None:
    """``PIVOT (agg FOR col IN (literal, ...))`` and ``UNPIVOT (v FOR k IN (column, ...))``
    only: without an explicit list of literals DuckDB runs a query of its own, before the plan
    meshsim verifies, to find the values."""
    for pivot in tree.find_all(exp.Pivot):
        fields = pivot.args.get("fields") or []
        unpivot = bool(pivot.args.get("unpivot"))
        wanted = (exp.Column,) if unpivot else (exp.Literal, exp.Neg, exp.Null, exp.Boolean)
        if not fields or not all(
            isinstance(f, exp.In)
            and f.expressions
            and not f.args.get("query")
            and all(isinstance(v, wanted) for v in f.expressions)
            for f in fields
        ):
            kind = "UNPIVOT" if unpivot else "PIVOT"
            listed = "columns" if unpivot else "literal values"
            raise QueryError(
                f"{kind} needs an explicit IN list of {listed} in meshsim",
                consumer=consumer,
                hint=PIVOT_HINT,
            )


def check_relation_names(tree: exp.Expr, *, consumer: str | None = None) -> None:
    """Refuse CTE and alias names that are not plain words (:data:`RELATION_NAME`), and
    one-part table names that are not: those can only be CTE references."""
    for node in tree.find_all(exp.TableAlias, exp.Table):
        if isinstance(node, exp.Table):
            if node.db or isinstance(node.this, exp.Func):
                continue
            name, what = node.name, "table name"
        else:
            name, what = node.name, "relation name (CTE or alias)"
        if name and not RELATION_NAME.match(name):
            raise QueryError(
                f"{what} '{name}' is not allowed: relation names are words (letters, digits, "
                f"'_', inner spaces and '-'); they may not look like file paths",
                consumer=consumer,
                hint="rename it, e.g. WITH recent AS (...)",
            )


def check_recursive_ctes(tree: exp.Expr, *, consumer: str | None = None) -> None:
    """``WITH RECURSIVE`` only in the shape DuckDB binds as recursive: a CTE that names
    itself must be ``anchor UNION [ALL] recursive part`` whose anchor does not name it
    (elsewhere DuckDB does not bind the name to the CTE at all)."""
    for with_ in tree.find_all(exp.With):
        if not with_.args.get("recursive"):
            continue
        for cte in with_.expressions:
            name = cte.alias_or_name.lower()
            body = cte.this
            if not _names(body, name):
                continue
            if not isinstance(body, exp.Union):
                raise QueryError(
                    f"recursive CTE '{cte.alias_or_name}' must be written anchor UNION [ALL] "
                    f"recursive part (found {body.key.upper()})",
                    consumer=consumer,
                )
            if _names(body.left, name):
                raise QueryError(
                    f"the anchor (first part) of recursive CTE '{cte.alias_or_name}' may not "
                    f"reference '{cte.alias_or_name}' itself; only the part after UNION may",
                    consumer=consumer,
                )


def _names(node: exp.Expr, name: str) -> bool:
    return any(
        not t.db and t.name.lower() == name
        for t in node.find_all(exp.Table)
        if not isinstance(t.this, exp.Func)
    )


def balance_connectives(tree: Q) -> Q:
    """Rebuild each chain of ANDs (or ORs) as a balanced tree, in place: sqlglot parses
    ``a AND b AND c`` left-deep, and walking up a chain of n terms from each of its n columns
    made planning quadratic. AND and OR are associative in SQL's three-valued logic, so the
    result is the same predicate.

    >>> import sqlglot
    >>> tree = sqlglot.parse_one("SELECT 1 WHERE a AND b AND c AND d", read="duckdb")
    >>> balance_connectives(tree).sql(dialect="duckdb")
    'SELECT 1 WHERE (a AND b) AND (c AND d)'
    """
    for kind in (exp.And, exp.Or):
        roots = [
            node
            for node in tree.find_all(kind)
            if not isinstance(node.parent, kind) and isinstance(node.this, kind)
        ]
        for root in roots:
            terms: list[exp.Expr] = []
            stack: list[exp.Expr] = [root]
            while stack:
                node = stack.pop()
                if isinstance(node, kind):
                    stack.append(node.expression)
                    stack.append(node.this)
                else:
                    terms.append(node)
            if len(terms) > 3:
                root.replace(_balanced(kind, terms))
    return tree


def _balanced(kind: type[exp.Connector], terms: list[exp.Expr]) -> exp.Expr:
    if len(terms) == 1:
        return terms[0]
    middle = len(terms) // 2
    left, right = _balanced(kind, terms[:middle]), _balanced(kind, terms[middle:])
    return kind(
        this=exp.Paren(this=left) if isinstance(left, kind) else left,
        expression=exp.Paren(this=right) if isinstance(right, kind) else right,
    )


def command_text(command: exp.Command) -> str:
    """The text after an opaque command's keyword (sqlglot keeps it a literal or a string)."""
    rest = command.expression
    return rest.name if isinstance(rest, exp.Expr) else str(rest or "")


def _kind(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        words = command_text(node).split()
        return f"the statement {' '.join([str(node.this).upper(), *words[:1]]).upper()}"
    keyword = node.meta.get(KEYWORD) or node.key.upper()
    return f"the statement {keyword}"


#: How a refusal names a syntax node that is not a function (sqlglot class name -> clause).
CLAUSES = {
    "Struct": "struct literals ({...})",
    "Dot": "field access (a.b on a value)",
    "PositionalColumn": "positional columns (#1)",
    "Lambda": "lambda functions (x -> ...)",
    "Placeholder": "parameter placeholders without parameters",
    "Into": "SELECT ... INTO",
    "Map": "map literals (MAP {...})",
    "Columns": "COLUMNS(...)",
}


def _function_name(node: exp.Expr) -> str:
    """The function's name as the consumer wrote it, else sqlglot's name for it."""
    source = node.meta.get(SOURCE)
    if source:
        return str(source)
    if isinstance(node, exp.Anonymous):
        return str(node.name)
    return node.sql_name() if isinstance(node, exp.Func) else type(node).__name__


def check_syntax(tree: exp.Expr, *, consumer: str | None = None, what: str) -> None:
    """Refuse any node, function or table function that is not allowlisted."""
    for node in tree.walk():
        name = type(node).__name__
        if isinstance(node, exp.Select) and node.args.get("into") is not None:
            raise QueryError(f"{what}: SELECT ... INTO is not allowed", consumer=consumer)
        if (
            isinstance(node, exp.Unnest)
            and isinstance(node.parent, exp.From | exp.Join)
            and node.find(exp.Column) is None
        ):
            # DuckDB binds unnest of a constant as a table function scan; a correlated one
            # (FROM t, unnest(t.l)) is an operator over t and is governed like any other
            raise QueryError(
                f"{what}: unnest(...) of a constant as a table (FROM unnest([...])) is not "
                f"supported by meshsim; call it in the select list: SELECT unnest([...]) AS x",
                consumer=consumer,
            )
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Func):
            _check_table_function(node.this, consumer=consumer, what=what)
            continue
        if name in allowlist.NODES:
            if isinstance(node, exp.Dot) and not isinstance(node.expression, exp.Identifier):
                raise QueryError(
                    f"{what}: '{_describe(node)}' is not allowed (a dot is struct field access "
                    f"only; call functions as f(x))",
                    consumer=consumer,
                )
            if isinstance(node, exp.Star) and any(node.args.get(k) for k in ("rename",)):
                raise QueryError(f"{what}: '* RENAME' is not allowed", consumer=consumer)
            continue
        if isinstance(node, exp.Anonymous):
            fname = str(node.name).lower()
            if fname in allowlist.ANONYMOUS:
                continue
            raise _function_unsupported(node, what, consumer)
        if isinstance(node, exp.Func):
            if name in allowlist.FUNCTIONS or (
                name in allowlist.TABLE_FUNCTIONS and _in_from(node)
            ):
                continue
            raise _function_unsupported(node, what, consumer)
        if isinstance(node, exp.Command):
            raise QueryError(
                f"{what}: the statement {str(node.this).upper()} is not supported by meshsim",
                consumer=consumer,
            )
        clause = CLAUSES.get(name)
        shown = clause if clause else f"'{_describe(node)}'"
        raise QueryError(f"{what}: {shown} is not supported by meshsim", consumer=consumer)


def _function_unsupported(node: exp.Expr, what: str, consumer: str | None) -> QueryError:
    clause = CLAUSES.get(type(node).__name__)
    if clause and not node.meta.get(SOURCE):
        return QueryError(f"{what}: {clause} is not supported by meshsim", consumer=consumer)
    return QueryError(
        f"{what}: function '{_function_name(node)}' is not supported by meshsim",
        consumer=consumer,
        hint="meshsim allows common scalar, aggregate, window and list functions; "
        "docs/THREAT_MODEL.md lists what stays refused and why",
    )


def _in_from(node: exp.Expr) -> bool:
    return isinstance(node.parent, exp.Table)


def _describe(node: exp.Expr) -> str:
    try:
        text = node.sql(dialect="duckdb")
    except Exception:  # noqa: BLE001 - describing a node must not fail
        text = node.key
    return text if len(text) <= 60 else text[:57] + "..."


def _check_table_function(func: exp.Func, *, consumer: str | None, what: str) -> None:
    """``range``/``generate_series`` with literal integer bounds and bounded size only."""
    name = type(func).__name__
    if name not in allowlist.TABLE_FUNCTIONS:
        fname = _function_name(func)
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
