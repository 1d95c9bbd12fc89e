"""SQL text as the statements a user wrote: split at the semicolons that end statements
(never one inside a string, a quoted name or a comment), for ``meshsim sql -f FILE`` and the
shell, which runs a statement once its last line ends it.

>>> split_statements("-- totals\\nSELECT ';' AS x; /* ; */ SELECT 2;")
["-- totals\\nSELECT ';' AS x", '/* ; */ SELECT 2']
>>> is_complete("SELECT 'a;"), is_complete("SELECT 1; -- done")
(False, True)
"""

from __future__ import annotations

from pathlib import Path

from meshsim.errors import QueryError


def _tokens(text: str) -> list:
    import sqlglot
    from sqlglot.errors import TokenError

    try:
        return sqlglot.tokenize(text, read="duckdb")
    except TokenError as exc:
        raise QueryError(
            f"could not read the SQL: {str(exc).splitlines()[0]}",
            hint="check quotes, brackets and comments",
        ) from None


def split_statements(text: str) -> list[str]:
    """The statements of ``text``, without their ending semicolons; pieces holding only
    comments or blanks are dropped."""
    from sqlglot.tokens import TokenType

    statements: list[str] = []
    start, has_tokens = 0, False
    for token in _tokens(text):
        if token.token_type == TokenType.SEMICOLON:
            if has_tokens:
                statements.append(text[start : token.start].strip())
            start, has_tokens = token.end + 1, False
        else:
            has_tokens = True
    if has_tokens:
        statements.append(text[start:].strip())
    return statements


def is_complete(text: str) -> bool:
    """Whether ``text`` ends with a statement's semicolon (comments after it allowed); an
    open string or comment is not complete."""
    from sqlglot.tokens import TokenType

    try:
        tokens = _tokens(text)
    except QueryError:
        return False
    return bool(tokens) and tokens[-1].token_type == TokenType.SEMICOLON


def file_statements(path: str | Path) -> list[str]:
    """The statements of a SQL file (UTF-8, checked like every input file); QueryError when
    it holds none."""
    from meshsim.files import check_input_file

    source = check_input_file(path)
    try:
        text = source.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise QueryError(
            f"'{source}' is not UTF-8 text (byte {exc.start + 1})", hint="save it as UTF-8"
        ) from None
    statements = split_statements(text)
    if not statements:
        raise QueryError(
            f"'{source}' holds no SQL statement (only blanks or comments)",
            hint="write a query in it, e.g. SELECT count(*) FROM sales.orders;",
        )
    return statements
