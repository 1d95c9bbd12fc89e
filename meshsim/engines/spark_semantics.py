"""Fail closed on Spark: only functions and operators checked to mean on Spark what they mean
on DuckDB pass; the few that differ in a way an exact rewrite fixes are rewritten; the rest
are refused with one error naming them.

The check covers the whole governed statement (masks, row filters and the consumer's SQL
above them): a consumer's predicate over filtered rows must mean the same on both engines.

* functions: :data:`CHECKED_FUNCTIONS` (by sqlglot class); anything else is refused;
* regular expressions (DuckDB's RE2, Spark's Java regex): a literal pattern of the subset both
  read identically (:func:`check_regex`), no flags (``regexp_replace`` needs ``'g'``, which is
  Spark's only behaviour); ``.`` is written ``[^\\n]`` (Java's ``.`` also skips ``\\r``);
* LIKE without ESCAPE: Spark escapes with a backslash by default, DuckDB does not: a literal
  pattern's backslashes are doubled, any other pattern is refused;
* ``upper``, ``lower``, ILIKE: refused (Java maps ``'ß'`` to ``'SS'``, DuckDB does not);
* ``substring``, ``left``, ``right``: only with literal positions/lengths where both engines
  agree (start >= 1, length >= 0); DuckDB's 0 and negative positions/lengths are refused;
* list and map indexing (``l[1]``, ``l[-1]``, ``m['k']``): refused (1- vs 0-based, negative
  indexes, ANSI errors on Spark).

>>> check_regex("[A-Z]+.x")
'[A-Z]+[^\\\\n]x'
"""

from __future__ import annotations

import re
import string

from sqlglot import exp

from meshsim.errors import QueryError

#: sqlglot function classes whose Spark SQL means what DuckDB's does (for the arguments
#: :func:`check_node` lets through; checked in tests/engines/test_spark.py)
CHECKED_FUNCTIONS: frozenset[type[exp.Func]] = frozenset(
    {
        exp.And,
        exp.Or,
        exp.Count,
        exp.Sum,
        exp.Avg,
        exp.Min,
        exp.Max,
        exp.Cast,
        exp.Case,
        exp.If,
        exp.Coalesce,
        exp.Extract,
        exp.Exists,
        exp.Year,
        exp.TimestampTrunc,
        exp.SHA2,
        exp.Length,
        exp.Abs,
        exp.Substring,
        exp.Left,
        exp.Right,
        exp.RegexpLike,
        exp.RegexpReplace,
        exp.Anonymous,  # checked by name in meshsim.engines.spark_sql
    }
)
HINT = "run this query with --engine duckdb"
#: ASCII characters that are literal in both dialects, outside and inside a class
_PLAIN = frozenset(string.ascii_letters + string.digits + " !\"#%',-/:;<=>@_`~")
_CLASS_SHORTHANDS = frozenset("dDwW")  # ASCII-only in both RE2 and Java by default
_QUANTIFIER = re.compile(r"[*+?]|\{\d+(,\d*)?\}")


class SparkRefused(QueryError):
    """The plan holds something Spark would not compute exactly as DuckDB; nothing was run."""


def _refuse(what: str, why: str) -> SparkRefused:
    return SparkRefused(
        f"{what} means something else on Spark ({why}); meshsim refuses it there rather "
        f"than return other rows or values",
        hint=HINT,
    )


def check_regex(pattern: str) -> str:
    """``pattern`` as Java reads it the way RE2 does (``.`` spelled out), or refused."""
    out: list[str] = []
    i, atom = 0, False  # atom: the previous token can take a quantifier
    while i < len(pattern):
        c = pattern[i]
        quantifier = _QUANTIFIER.match(pattern, i)
        if quantifier:
            end = quantifier.end()
            if end < len(pattern) and pattern[end] == "?":
                end += 1  # lazy: the same in both
            if not atom or (end < len(pattern) and pattern[end] in "*+{"):
                raise _refuse(f"the regular expression '{pattern}'", "a repeated quantifier")
            out.append(pattern[i:end])
            i, atom = end, False
            continue
        if c == "\\":
            nxt = pattern[i + 1 : i + 2]
            if not nxt or not (nxt in _CLASS_SHORTHANDS or (nxt.isascii() and not nxt.isalnum())):
                raise _refuse(f"the regular expression '{pattern}'", f"the escape '\\{nxt}'")
            out.append(c + nxt)
            i, atom = i + 2, True
        elif c == "[":
            end = _class_end(pattern, i)
            out.append(pattern[i:end])
            i, atom = end, True
        elif c == ".":
            out.append("[^\\n]")
            i, atom = i + 1, True
        elif c == "(":
            if pattern[i + 1 : i + 2] == "?":
                raise _refuse(f"the regular expression '{pattern}'", "a '(?' group or flag")
            out.append(c)
            i, atom = i + 1, False
        elif c in ")|^":
            out.append(c)
            i, atom = i + 1, c == ")"
        elif c in _PLAIN:
            out.append(c)
            i, atom = i + 1, True
        else:
            raise _refuse(f"the regular expression '{pattern}'", f"the character '{c}'")
    return "".join(out)


def _class_end(pattern: str, start: int) -> int:
    """The index after the character class at ``start``; refuse what Java reads differently
    (nested classes and POSIX ``[:alnum:]``, ``&&``, a leading ``]``, other escapes)."""
    i = start + 1
    if pattern[i : i + 1] == "^":
        i += 1
    if pattern[i : i + 1] == "]":
        raise _refuse(f"the regular expression '{pattern}'", "a class starting with ']'")
    while i < len(pattern):
        c = pattern[i]
        if c == "]":
            return i + 1
        if c == "\\":
            nxt = pattern[i + 1 : i + 2]
            if not nxt or not (nxt in _CLASS_SHORTHANDS or (nxt.isascii() and not nxt.isalnum())):
                raise _refuse(f"the regular expression '{pattern}'", f"the escape '\\{nxt}'")
            i += 2
        elif c in "[&":
            raise _refuse(
                f"the regular expression '{pattern}'",
                f"'{c}' in a character class (POSIX classes, nested classes, intersections)",
            )
        elif c in _PLAIN or c in "^$.*+?(){}|":
            i += 1
        else:
            raise _refuse(f"the regular expression '{pattern}'", f"the character '{c}'")
    raise _refuse(f"the regular expression '{pattern}'", "an unclosed class")


def _literal_text(node: exp.Expr | None, what: str) -> str:
    if not (isinstance(node, exp.Literal) and node.is_string):
        raise _refuse(what, "only a literal string is checked")
    return node.this


def _literal_int(node: exp.Expr | None) -> int | None:
    if isinstance(node, exp.Literal) and node.is_int:
        return int(node.this)
    return None


def _check_regex_call(node: exp.RegexpLike | exp.RegexpReplace) -> None:
    name = "regexp_replace" if isinstance(node, exp.RegexpReplace) else "regexp_matches"
    pattern = node.expression
    node.set("expression", exp.Literal.string(check_regex(_literal_text(pattern, name))))
    if isinstance(node, exp.RegexpLike):
        if node.args.get("flag") is not None:
            raise _refuse(f"{name} with flags", "Spark drops them; Java's flags differ")
        return
    flags = node.args.get("modifiers")
    if flags is None or _literal_text(flags, f"{name}'s flags") != "g":
        raise _refuse(
            f"{name} without exactly the flags 'g'",
            "DuckDB replaces the first match only, or reads flags Spark drops",
        )
    node.set("modifiers", None)
    replacement = _literal_text(node.args.get("replacement"), f"{name}'s replacement")
    if "\\" in replacement or "$" in replacement:
        raise _refuse(f"{name}'s replacement '{replacement}'", "group references differ")
    for extra in ("position", "occurrence", "parameters"):
        if node.args.get(extra) is not None:
            raise _refuse(f"{name} with a {extra}", "not checked")


def _check_like(node: exp.Like) -> None:
    if isinstance(node.parent, exp.Escape):
        return  # an explicit ESCAPE means the same on both
    pattern = node.expression
    text = _literal_text(pattern, "LIKE with a pattern that is not a literal")
    node.set("expression", exp.Literal.string(text.replace("\\", "\\\\")))


def _check_positions(node: exp.Substring | exp.Left | exp.Right) -> None:
    if isinstance(node, exp.Substring):
        start, length = _literal_int(node.args.get("start")), node.args.get("length")
        ok = start is not None and start >= 1
        if length is not None:
            n = _literal_int(length)
            ok = ok and n is not None and n >= 0
        what = "substring"
    else:
        n = _literal_int(node.expression)
        ok = n is not None and n >= 0
        what = type(node).__name__.lower()
    if not ok:
        raise _refuse(
            f"{what} with a position or length that is not a literal (start >= 1, length >= 0)",
            "DuckDB and Spark read 0, negative and computed positions differently",
        )


def check_node(node: exp.Expr) -> None:
    """Rewrite ``node`` in place to its exact Spark meaning, or refuse it."""
    if isinstance(node, exp.Bracket):
        raise _refuse("indexing a list or map with [...]", "1- vs 0-based, negative indexes")
    if isinstance(node, (exp.SimilarTo, exp.Glob)):
        raise _refuse(type(node).__name__, "not checked")
    if isinstance(node, exp.ILike):
        raise _refuse("ILIKE", "Java's case mapping beyond ASCII is not DuckDB's")
    if isinstance(node, exp.Like):
        _check_like(node)
    elif isinstance(node, exp.Func):
        if type(node) not in CHECKED_FUNCTIONS:
            raise SparkRefused(
                f"function '{node.sql_name().lower()}' has no checked Spark equivalent in "
                f"meshsim; refusing rather than running Spark's function of that name",
                hint=HINT,
            )
        if isinstance(node, (exp.RegexpLike, exp.RegexpReplace)):
            _check_regex_call(node)
        elif isinstance(node, (exp.Substring, exp.Left, exp.Right)):
            _check_positions(node)
