"""Full-text search over published metadata with SQLite FTS5, ranked by bm25.

Every product, table and column of the latest published versions is one row of the index with
its name, description, tags (and classification) and owners. A hit in a name weighs most, then
tags and owners, then descriptions, so searching ``nation`` puts the column ``n_nationkey`` and
the table ``nation`` before a column whose description mentions a nation. Ties break on kind
(product, table, column) and then on the reference, so results are deterministic.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from meshsim.errors import CatalogError

#: bm25 weights, in index column order: ref, product, kind (unindexed), name, description,
#: tags, owner.
WEIGHTS = (0.0, 0.0, 0.0, 10.0, 1.0, 3.0, 3.0)


def fts_query(text: str) -> str:
    """Words of ``text`` as quoted prefix terms, all required; ``c_acctbal`` is one phrase.

    >>> fts_query("customer ACCT-bal c_acctbal")
    '"customer"* "acct"* "bal"* "c acctbal"*'
    """
    words = [" ".join(re.findall(r"[^\W_]+", w)) for w in re.findall(r"\w+", text.lower())]
    words = [w for w in words if w]
    if not words:
        raise CatalogError(
            f"search text '{text}' has no words to look for",
            hint="try 'meshsim search customer' or 'meshsim search pii'",
        )
    return " ".join(f'"{w}"*' for w in words)


def search(
    con: sqlite3.Connection, text: str, limit: int | None = 20, offset: int = 0
) -> list[dict[str, Any]]:
    """The hits ranked ``offset + 1`` to ``offset + limit`` (ranked in SQLite: only that page
    leaves it)."""
    weights = ", ".join(str(w) for w in WEIGHTS)
    rows = con.execute(
        f"SELECT ref, product, kind, name, description, bm25(search_index, {weights}) AS score"
        " FROM search_index WHERE search_index MATCH ?"
        " ORDER BY score, CASE kind WHEN 'product' THEN 0 WHEN 'table' THEN 1 ELSE 2 END, ref"
        " LIMIT ? OFFSET ?",
        (fts_query(text), -1 if limit is None else limit, offset),
    ).fetchall()
    return [
        {
            "rank": index,
            "kind": row["kind"],
            "ref": row["ref"],
            "product": row["product"],
            "name": row["name"],
            "description": row["description"],
            "score": round(-row["score"], 4),
        }
        for index, row in enumerate(rows, offset + 1)
    ]


def count(con: sqlite3.Connection, text: str) -> int:
    """How many hits ``text`` has (counted without ranking them)."""
    row = con.execute(
        "SELECT count(*) FROM search_index WHERE search_index MATCH ?", (fts_query(text),)
    ).fetchone()
    return int(row[0])
