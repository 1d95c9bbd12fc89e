"""A row filter's lookup, computed once per consumer and table version: its key set.

A mapping-table filter such as ``o_custkey IN (SELECT c.c_custkey FROM customer.customer AS c
JOIN ... WHERE r.r_name = consumer.region)`` reads its lookup tables again on every query:
DuckDB scans them and joins them to build the semi join. What the subquery returns depends
only on what :func:`meshsim.query.filters.compile_filter` bound into it, the lookup tables'
files and the consumer's attributes as literals, so the planner runs it once, keeps its
distinct values as a table of the engine's in-memory database (a *key set*), and the scan's
filter reads ``o_custkey IN (SELECT * FROM <key set>)``, which DuckDB pushes into the scan as
it does the inline one. ``x IN (q)`` depends only on the set of values ``q`` returns (NULL
included), so the answer is the same; only DuckDB's text changes, never whether the scan is
gated (decided from the consumer's query before, :mod:`meshsim.query.fallible`), and the
scan's syntax tree, which Spark runs and ``explain`` shows, keeps the inline subquery.

Only a subquery whose answer its bound inputs fix is computed ahead: one that reads no
column of the filtered row, and no function (``current_date``, ``random()``, an aggregate)
outside the storage scans; any other stays inline, as does one with more than
:data:`MAX_KEYS` distinct values. Before it runs, the key set's query passes the checks of a
governed scan (DuckDB's parse, reading only the files bound, and its bound plan); it runs under
the engine's time limit (past it, or cancelled, the query that asked fails as timed out). If
DuckDB fails on it the filter stays inline, and fails there as it did before, for every
consumer query alike: the lookup reads no consumer input.

A key set is named ``__meshsim_scan_<nonce>_k<hash of its query>``, a name consumer text may
not contain, and lives as long as the connection: its query names the files it read, so a new
table version makes a new key set, never a changed one. At most :data:`MAX_TABLES` exist;
past that, new filters stay inline.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlglot import exp

from meshsim.engine import QueryTimeout
from meshsim.errors import MeshsimError

#: distinct keys a key set may hold (8 MB of BIGINT keys); a larger lookup stays inline
MAX_KEYS = 1_000_000
#: key sets one connection keeps
MAX_TABLES = 256
#: expression classes a computed-ahead subquery may hold outside its storage scans: no
#: function call (a volatile or time-dependent one would be frozen), no reference outward
_STATIC = (
    exp.Select, exp.From, exp.Join, exp.Where, exp.Subquery, exp.TableAlias, exp.Alias,
    exp.Identifier, exp.Column, exp.Literal, exp.Null, exp.Boolean, exp.Paren, exp.Not,
    exp.And, exp.Or, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is, exp.In,
    exp.Between, exp.Distinct, exp.Star,
)  # fmt: skip
KEYS_ALIAS = "__meshsim_keys"


def is_storage_scan(node: exp.Expr) -> bool:
    """A raw storage scan the filter's compiler bound (:func:`meshsim.query.scans.raw_scan`)."""
    from meshsim.query.scans import RAW_SCAN_META

    return bool(node.meta.get(RAW_SCAN_META))


def _static(query: exp.Select, is_storage: Callable[[exp.Expr], bool]) -> bool:
    """Whether ``query`` is fixed by its bound inputs: uncorrelated, no function outside
    its storage scans (``is_storage``), every column qualified by a source of its own."""
    own: set[str] = set()
    columns: list[exp.Column] = []
    for node in query.walk(prune=is_storage):
        if is_storage(node):
            continue
        if type(node) not in _STATIC:
            return False
        if isinstance(node, exp.TableAlias):
            own.add(node.name)
        elif isinstance(node, exp.Column):
            columns.append(node)
    return all(c.table and c.table in own and not c.args.get("db") for c in columns)


def _table(name: str) -> exp.Table:
    return exp.Table(this=exp.to_identifier(name, quoted=True))


class KeySets:
    """The key sets of one governed engine's connection; :meth:`substitute` is the planner's
    entry point. ``duck()`` is the engine's :class:`meshsim.engine.GovernedDuckDB`."""

    def __init__(self, duck: Callable[[], Any], prefix: str, timeout_s: float | None) -> None:
        self._duck = duck
        self._prefix = prefix
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        #: query SQL -> key set name, on ``_con`` (the connection they were made on)
        self._made: dict[str, str] = {}
        self._con: Any = None

    def substitute(
        self,
        predicates: Sequence[exp.Expr],
        files: frozenset[str],
        is_storage: Callable[[exp.Expr], bool] = is_storage_scan,
    ) -> tuple[list[exp.Expr], frozenset[str]]:
        """``predicates`` (compiled row filters) with each ``IN`` subquery that can be
        computed ahead read from its key set instead, and the key sets used. ``files`` are
        the lookups' files (the only ones a key set's query may read). Pure on its inputs."""
        out: list[exp.Expr] = []
        used: set[str] = set()
        for predicate in predicates:
            tree = predicate.copy()
            for node in list(tree.find_all(exp.In)):
                query = node.args.get("query")
                if not isinstance(query, exp.Subquery):
                    continue
                select = query.this
                if not isinstance(select, exp.Select) or len(select.expressions) != 1:
                    continue
                if not _static(select, is_storage):
                    continue
                name = self._key_set(select, files)
                if name is None:
                    continue
                used.add(name)
                keys = exp.select(exp.Star()).from_(_table(name))
                query.replace(exp.Subquery(this=keys))
            out.append(tree)
        return out, frozenset(used)

    def _key_set(self, select: exp.Select, files: frozenset[str]) -> str | None:
        distinct = (
            exp.select(exp.Star())
            .distinct()
            .from_(
                exp.Subquery(
                    this=select.copy(),
                    alias=exp.TableAlias(this=exp.to_identifier(KEYS_ALIAS, quoted=True)),
                )
            )
            .limit(MAX_KEYS + 1)
        )
        sql = distinct.sql(dialect="duckdb")
        db = self._duck()
        with self._lock:
            if self._con is not db.con:  # a new connection holds none of the old ones
                self._made, self._con = {}, db.con
            if sql in self._made:
                return self._made[sql]
            if len(self._made) >= MAX_TABLES:
                return None
            name = f"{self._prefix}k{hashlib.sha256(sql.encode()).hexdigest()[:32]}"
            try:
                made = self._make(db, name, distinct, files)
            except QueryTimeout:
                raise  # out of time or cancelled: so is the query that asked
            except MeshsimError:
                return None  # inline, where it fails (or not) as it always did
            if made:
                self._made[sql] = name
            return name if made else None

    def _make(self, db: Any, name: str, query: exp.Select, files: frozenset[str]) -> bool:
        """Check ``query`` like a governed scan, run it into table ``name``; False (and no
        table) when it returned more than :data:`MAX_KEYS` keys."""
        from meshsim import engine as duck
        from meshsim.query.crosscheck import crosscheck
        from meshsim.query.verify import verify_bound_plan

        sql = query.sql(dialect="duckdb")
        crosscheck(duck.serialize_sql(db.con, sql), ctes=frozenset(), files=files, scan=True)
        verify_bound_plan(duck.explain_bound(db, sql, timeout_s=self._timeout_s))
        table = _table(name)
        create = exp.Create(this=table, kind="TABLE", expression=query)
        duck.run_statement(db.con, create.sql(dialect="duckdb"), timeout_s=self._timeout_s)
        count = exp.select(exp.Count(this=exp.Star())).from_(table.copy())
        rows = duck.run_arrow(db.con, count.sql(dialect="duckdb"), timeout_s=self._timeout_s)
        if rows.column(0)[0].as_py() <= MAX_KEYS:
            return True
        drop = exp.Drop(tables=[table.copy()], kind="TABLE")
        duck.run_statement(db.con, drop.sql(dialect="duckdb"), timeout_s=self._timeout_s)
        return False
