"""The one parser of policy SQL fragments: row-filter predicates, custom mask expressions,
``when`` conditions and the row filters owners set when they approve a request.

Whatever goes wrong (sqlglot's ``TokenError`` for an unterminated quote is not a
``ParseError``, deep nesting is a ``RecursionError``) becomes one :class:`PolicyError` that says
what the fragment is, where it is written, and the line and column of the error inside it.

>>> parse_fragment("c_nationkey = 7", what="row filter").sql()
'c_nationkey = 7'
>>> try:
...     parse_fragment("r_name = 'EUROPE", what="row filter 'eu'")
... except PolicyError as error:
...     print(error.line, error.column, error.message)
1 10 row filter 'eu' is not valid SQL at line 1, column 10: a string or quoted name opened \
here is never closed (near 'EUROPE)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from meshsim.errors import PolicyError

if TYPE_CHECKING:
    from sqlglot import exp

_UNCLOSED = re.compile(r"^Missing (?P<delimiter>\S+) from \d+:(?P<offset>\d+)$")
_SNIPPET = 24


def parse_fragment(
    text: str,
    *,
    what: str,
    file: str | Path | None = None,
    line: int | None = None,
    hint: str | None = None,
) -> exp.Expr:
    """Parse one SQL expression (DuckDB dialect); a fresh tree the caller may change.

    ``what`` names the fragment in messages (``row filter 'regional_orders'``); ``file`` and
    ``line`` say where it is written, when it comes from a file; ``hint`` is the next step."""
    parsed = _parse(text)
    if isinstance(parsed, _Failure):
        where = f"{file}:{line}: " if file is not None and line else f"{file}: " if file else ""
        if parsed.line is None:
            message = f"{where}{what} is not valid SQL: {parsed.description}"
        else:
            message = (
                f"{where}{what} is not valid SQL at line {parsed.line}, column {parsed.column}: "
                f"{parsed.description}"
            )
        raise PolicyError(message, line=parsed.line, column=parsed.column, hint=hint) from None
    return parsed.copy()


@dataclass(frozen=True)
class _Failure:
    """Why a text is not one SQL expression, and where in it (1-based), when known."""

    description: str
    line: int | None = None
    column: int | None = None


def _position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _near(text: str, offset: int) -> str:
    snippet = text[offset : offset + _SNIPPET].split("\n", 1)[0]
    return f" (near {snippet})" if snippet.strip() else " (at the end)"


@lru_cache(maxsize=1024)
def _parse(text: str) -> exp.Expr | _Failure:
    """Cached by text; failures are cached as values so each is diagnosed once."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, SqlglotError, TokenError

    if not text.strip():
        return _Failure("it is empty; write a SQL expression")
    try:
        tree = sqlglot.parse_one(text, read="duckdb")
    except TokenError as exc:
        return _token_failure(text, exc)
    except ParseError as exc:
        return _parse_failure(text, exc)
    except SqlglotError as exc:
        return _Failure(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except RecursionError:
        return _Failure("it is nested too deeply; write it with fewer parentheses")
    if tree is None:
        return _Failure("it holds no expression (only comments?)")
    if isinstance(tree, exp.Block):
        return _Failure(
            f"it holds {len(tree.expressions)} statements separated by ';'; write one expression"
        )
    if isinstance(tree, exp.Alias):
        alias = tree.args["alias"]
        line, column = _position(text, max(text.rfind(alias.name), 0))
        return _Failure(
            f"unexpected name '{alias.name}' after the expression; is an operator missing?",
            line,
            column,
        )
    return tree


def _token_failure(text: str, exc: Exception) -> _Failure:
    # sqlglot raises it "from" the tokenizer's own error; compiled (sqlglotc), the chain is
    # kept as the context only
    cause = exc.__cause__ or exc.__context__
    match = _UNCLOSED.match(str(cause)) if cause is not None else None
    if match is not None:
        offset = int(match.group("offset"))
        line, column = _position(text, offset)
        return _Failure(
            f"a string or quoted name opened here is never closed{_near(text, offset)}",
            line,
            column,
        )
    # sqlglot quotes 50 characters either side of where it stopped
    start, end = getattr(exc, "start", None) or 0, getattr(exc, "end", None) or 0
    offset = start + 50 if start > 0 else max(0, end - 50) if end < len(text) - 1 else end
    line, column = _position(text, offset)
    return _Failure(f"cannot read the text here{_near(text, offset)}", line, column)


def _parse_failure(text: str, exc: Exception) -> _Failure:
    errors = getattr(exc, "errors", None) or []
    if not errors or errors[0].get("line") is None:
        return _Failure("it holds no expression (only comments?)")
    error = errors[0]
    highlight = error.get("highlight") or ""
    column = int(error["col"]) - (len(highlight) - 1 if "\n" not in highlight else 0)
    description = str(error.get("description") or "unexpected text")
    if description.startswith("Required keyword"):
        description = "the expression is incomplete"
    elif description.startswith("Invalid expression / Unexpected token"):
        description = "unexpected text"
    near = f" (near {highlight})" if highlight.strip() else " (at the end)"
    return _Failure(f"{description[:1].lower()}{description[1:]}{near}", int(error["line"]), column)
