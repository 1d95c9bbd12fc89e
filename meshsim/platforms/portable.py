"""What every export checks so that a target reads the mesh as meshsim does: the storage
URIs and names it is given, names as the target will see them, and SQL whose meaning on the
target's engines differs from its meaning on DuckDB, meshsim's engine.

SQL is compared as meshsim runs it: the compiled sqlglot tree written for DuckDB. Where a
construct means something else on a target, :func:`portable` rewrites it so that it means
the same, or raises :class:`NotPortable` and the export withholds the policy's data (the
filtered table, or the masked column as NULL) and lists it.

Checked, and the same everywhere (no rewrite): ``IN`` / ``NOT IN`` with NULLs (three-valued,
as the SQL standard says), string comparison (binary, case-sensitive), ``/`` (DuckDB divides
as DOUBLE; sqlglot casts to DOUBLE for Trino; Spark's ``/`` is DOUBLE), ``ILIKE`` for Trino
(``LOWER(x) LIKE LOWER(p)``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from meshsim.errors import MeshsimError

if TYPE_CHECKING:
    from sqlglot import exp

#: a storage URI the platforms accept: scheme://bucket[/path], no spaces, quotes or backslashes
_STORAGE_URI = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s'\"`\\]+(/[^\s'\"`\\]*)?")
#: Trino catalog names (Trino lower-cases them; meshsim keeps to its own name rule)
_CATALOG = re.compile(r"[a-z][a-z0-9_]*")


class NotPortable(Exception):
    """An expression whose meaning on the target differs from DuckDB's (the reason)."""


def check_storage_uri(value: str, subject: str, *, scheme: str | None = None) -> str:
    """``value`` if it is a storage URI (of ``scheme`` when given), else one clear error about
    ``subject`` (the option as the user gave it)."""
    if _STORAGE_URI.fullmatch(value) is None:
        raise MeshsimError(
            f"{subject} is not a storage URI: write scheme://bucket/prefix (no spaces, quotes "
            "or backslashes)",
            hint="--storage-root s3://my-bucket/mesh or --location DOMAIN=s3://bucket/prefix",
        )
    if scheme is not None and not value.startswith(f"{scheme}://"):
        raise MeshsimError(
            f"{subject} is not an {scheme}:// URI: Lake Formation registers S3 locations only",
            hint="--storage-root s3://my-bucket/mesh or --location DOMAIN=s3://bucket/prefix",
        )
    return value


def check_catalog(name: str) -> str:
    if not _CATALOG.fullmatch(name):
        raise MeshsimError(
            f"--catalog {name!r} is not a Trino catalog name: lower-case letters, digits and _, "
            "starting with a letter",
            hint="meshsim export trino --catalog retail",
        )
    return name


def _pattern_functions(node: exp.Expr) -> bool:
    from sqlglot import exp

    if isinstance(node, (exp.SimilarTo, exp.Glob)) or type(node).__name__.startswith("Regexp"):
        return True
    return isinstance(node, exp.Anonymous) and node.name.lower().startswith("regexp")


def _spark_like(node: exp.Like | exp.ILike) -> exp.Expr:
    """A DuckDB LIKE (no escape character) for Spark, whose LIKE escapes with a backslash:
    every backslash of the pattern doubled, so it matches itself as on DuckDB."""
    from sqlglot import exp

    pattern = node.expression
    if isinstance(pattern, exp.Literal) and pattern.is_string:
        node.set("expression", exp.Literal.string(pattern.this.replace("\\", "\\\\")))
    elif isinstance(pattern, (exp.Any, exp.All, exp.Tuple)):
        raise NotPortable("a LIKE ANY/ALL pattern list escapes differently on Spark")
    else:
        doubled = exp.Anonymous(
            this="replace",
            expressions=[pattern, exp.Literal.string("\\"), exp.Literal.string("\\\\")],
        )
        node.set("expression", doubled)
    return node


def _trino_right(node: exp.Right) -> exp.Expr:
    """DuckDB's RIGHT(s, n) for Trino, which has none (sqlglot's SUBSTR(s, LENGTH(s) - n + 1)
    starts before the string when it is shorter than n, and Trino then returns too little)."""
    from sqlglot import exp

    n = node.expression
    if not (isinstance(n, exp.Literal) and n.is_int and int(n.this) >= 0):
        raise NotPortable("RIGHT with a count other than a non-negative number")
    text = node.this
    start = exp.Greatest(
        this=exp.Sub(
            this=exp.Length(this=text.copy()),
            expression=exp.Literal.number(int(n.this) - 1),
        ),
        expressions=[exp.Literal.number(1)],
    )
    return exp.Substring(this=text, start=start)


def portable(tree: exp.Expr, target: str) -> exp.Expr:
    """``tree`` (a compiled filter or mask) rewritten to mean on ``target`` ("trino",
    "databricks" or "lakeformation") what it means on DuckDB; raises :class:`NotPortable`."""
    from sqlglot import exp

    tree = tree.copy()
    for node in tree.walk():
        if _pattern_functions(node):
            raise NotPortable(
                f"{node.key.upper()}: DuckDB's regular expressions and patterns (RE2) are not "
                f"those of {target}'s engines (Java, Joni)"
            )
        if isinstance(node, exp.IntDiv) and target == "trino":
            raise NotPortable("integer division (//) goes through DOUBLE on Trino")
        if isinstance(node, exp.Substring) and target == "trino":
            start = node.args.get("start")
            if not (isinstance(start, exp.Literal) and start.is_int and int(start.this) >= 1):
                raise NotPortable(
                    "SUBSTRING from a start before the string's first character (Trino returns "
                    "nothing where DuckDB starts at the first)"
                )
        if isinstance(node, (exp.Like, exp.ILike)) and not isinstance(node.parent, exp.Escape):
            pattern = node.expression
            if target == "lakeformation" and not (
                isinstance(pattern, exp.Literal) and pattern.is_string and "\\" not in pattern.this
            ):
                raise NotPortable(
                    "a LIKE pattern with a backslash (or not a literal) matches differently on "
                    "the engines that read Lake Formation (Spark escapes with it, Athena not)"
                )
    if target == "databricks":
        tree = tree.transform(
            lambda n: _spark_like(n)
            if isinstance(n, (exp.Like, exp.ILike)) and not isinstance(n.parent, exp.Escape)
            else n
        )
    if target == "trino":
        tree = tree.transform(lambda n: _trino_right(n) if isinstance(n, exp.Right) else n)
    return tree
