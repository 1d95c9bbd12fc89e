"""Rule verify-plan: check what DuckDB actually BOUND, not what sqlglot parsed.

sqlglot's scopes and DuckDB's binder are two implementations of SQL name resolution, and they
disagree at the edges (a recursive CTE's anchor, set-operation bodies): a name sqlglot takes
for a CTE may be, for DuckDB, a *replacement scan* of a file of that name. The parse-level
checks cannot see that. So, before a plan is used, DuckDB's physical plan of the exact final
statement (``EXPLAIN (FORMAT JSON)``) is walked and every operator that produces rows from
outside the query must be one meshsim put there:

* ``READ_PARQUET``: a table-function scan. The only ``read_parquet`` calls in the final SQL are
  meshsim's governed scans, each over a literal list of exactly the files bound for the query
  (checked on DuckDB's parse by :mod:`meshsim.query.crosscheck`; consumer text may not call it).
  A replacement scan of a path is bound as ``PARQUET_SCAN``, ``READ_CSV_AUTO``,
  ``READ_JSON_AUTO`` (and so on), never as ``READ_PARQUET``, so it is refused here.
* ``RANGE`` / ``GENERATE_SERIES``: only when the consumer's (validated, bounded) query uses them.
* scans of the query's own intermediate results (CTEs, VALUES, constant rows, empty results,
  correlated-subquery helpers).

Anything else that scans (a catalog table, another table function, an operator this list
does not know) refuses the query: an allowlist, so a new DuckDB operator fails closed.

The final statement is the consumer's query (the *skeleton*) with each mesh table replaced by
a governed scan, and binding all of it again for every new text cost more than the rest of
planning together. So it is checked in two parts that bind exactly as the whole does:

* each governed scan alone, once per scan SQL (``SELECT * FROM (<scan>) AS s``): a scan names
  no table but its key sets (its parse-level check refuses any other table name, and a key
  set's name ``__meshsim_scan_<nonce>_k<hash>`` is one consumer text may not contain), so
  nothing around it can change what its names bind to; it is the same text wherever it is
  spliced, and a ``SEQ_SCAN`` in it is accepted only of its key sets;
* the skeleton with each scan replaced by its *stand-in*: an empty temporary table of the
  scan's columns and types, on the verifier only (:func:`meshsim.engine.explain_with_stand_ins`),
  named ``__meshsim_scan_<nonce>_t<hash>``, a name consumer text may not contain. Every name
  of the consumer's query binds as it does beside the scan (same columns, same types), and a
  ``SEQ_SCAN`` is accepted only of the stand-ins of this plan.

The skeleton's parse is checked for every text. Its plan is bound once per *shape* on one
verifier: a text whose parse differs from one bound and accepted there only in the text of
string literals and in positions (:func:`meshsim.query.crosscheck.parse_shape`: every name,
number, type and function is kept, and the stand-ins' names are content hashes of their
scans) scans what that one scanned. Binding was half of this rule's time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from meshsim.errors import QueryError

#: Table-function scans meshsim binds itself; the value says whether it needs consumer series.
TABLE_SCANS = {"READ_PARQUET": False, "RANGE": True, "GENERATE_SERIES": True}

#: Operators that produce rows from the query itself (no storage, no catalog).
INTERNAL_SOURCES = frozenset(
    {
        "DUMMY_SCAN",
        "COLUMN_DATA_SCAN",
        "EMPTY_RESULT",
        "CTE_SCAN",
        "REC_CTE_SCAN",
        "RECURSIVE_CTE_SCAN",
        "DELIM_SCAN",
        "CHUNK_SCAN",
        "EXPRESSION_SCAN",
    }
)


class PlanRefused(QueryError):
    """DuckDB bound something meshsim did not put in the query; nothing was run."""


def operators(plan: Any) -> Iterator[dict[str, Any]]:
    """Every operator of an ``EXPLAIN (FORMAT JSON)`` document, depth first."""
    stack = list(plan) if isinstance(plan, list) else [plan]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        yield node
        stack.extend(node.get("children") or ())


def verify_bound_plan(
    explained: str,
    *,
    series: bool = False,
    stand_ins: frozenset[str] = frozenset(),
    keysets: frozenset[str] = frozenset(),
    consumer: str | None = None,
) -> frozenset[str]:
    """Refuse unless every source operator of the bound plan is one meshsim bound.

    ``explained`` is DuckDB's ``EXPLAIN (FORMAT JSON)`` text of the final SQL (or of the
    skeleton over ``stand_ins``, the names of the plan's stand-in tables, the only tables it
    may scan); ``keysets`` are the key sets a governed scan was bound to (tables of the
    engine's database, :mod:`meshsim.query.keysets`); ``series`` says whether the consumer's
    query may use ``range``/``generate_series``. Returns the set of source operator names
    seen (for tests and the benchmarks' stage report).
    """
    try:
        plan = json.loads(explained)
    except (TypeError, ValueError):
        raise _refuse("DuckDB's plan could not be read", consumer) from None
    seen: set[str] = set()
    for node in operators(plan):
        name = str(node.get("name", "")).strip().upper()
        info = node.get("extra_info") or {}
        function = str(info.get("Function", "")).strip().upper() if isinstance(info, dict) else ""
        is_source = not node.get("children") or bool(function) or name.endswith("_SCAN")
        if not is_source:
            continue
        kind = function or name
        seen.add(kind)
        if kind in TABLE_SCANS:
            if TABLE_SCANS[kind] and not series:
                raise _refuse(f"a {kind.lower()} scan the query did not ask for", consumer)
            continue
        if kind in INTERNAL_SOURCES and not function:
            continue
        if kind == "SEQ_SCAN" and (_stand_in(info, stand_ins) or _key_set(info, keysets)):
            continue
        raise _refuse(f"DuckDB bound a scan meshsim did not bind ({kind})", consumer)
    return frozenset(seen)


def _stand_in(info: Any, stand_ins: frozenset[str]) -> bool:
    """A scan of one of the plan's stand-in tables (DuckDB names it ``"temp".main.<name>``)."""
    table = info.get("Table") if isinstance(info, dict) else None
    prefix = '"temp".main.'
    return isinstance(table, str) and table.startswith(prefix) and table[len(prefix) :] in stand_ins


def _key_set(info: Any, keysets: frozenset[str]) -> bool:
    """A scan of one of the scan's key sets (``memory.main.<name>``: the in-memory database)."""
    table = info.get("Table") if isinstance(info, dict) else None
    prefix = "memory.main."
    return isinstance(table, str) and table.startswith(prefix) and table[len(prefix) :] in keysets


def _refuse(reason: str, consumer: str | None) -> PlanRefused:
    return PlanRefused(
        f"the query was refused by meshsim's plan check: {reason}; nothing was run",
        consumer=consumer,
        hint="name mesh tables as domain.table; relation names may not look like file paths",
    )
