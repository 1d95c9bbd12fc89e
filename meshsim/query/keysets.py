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
governed scan (DuckDB's parse, reading only the files bound, and its bound plan); each DuckDB
call gets only the time left of the query that asked (past it, or cancelled, that query fails
as timed out). If DuckDB fails on it the filter stays inline, and fails there as it did
before, for every consumer query alike: the lookup reads no consumer input. A lookup that
stays inline is remembered like a key set: it is not computed again.

A key set is named ``__meshsim_scan_<nonce>_k<hash of its query>``, a name consumer text may
not contain; its query names the files it read, so a new table version makes a new key set,
never a changed one. Each is made once, by the first query that needs it, while other
queries plan (and find or make other key sets) meanwhile. One is freed when a newer version
of the same lookup is made, or, past :data:`MAX_TABLES`, the least recently used first; never
while a query that planned with it runs (:meth:`KeySets.attempt`). A cached scan or plan
naming a freed key set is planned again (:meth:`KeySets.hold`). A make that fails or is
interrupted leaves no table, and a table left by one is replaced, never in the way.
Only DuckDB reads key sets: a query run on Spark runs the inline tree, and makes none.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from meshsim.engine import QueryTimeout
from meshsim.errors import MeshsimError

if TYPE_CHECKING:
    from meshsim.query.pipeline import Attempt

#: distinct keys a key set may hold (8 MB of BIGINT keys); a larger lookup stays inline
MAX_KEYS = 1_000_000
#: key sets one connection keeps (lookups remembered as inline count too)
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


def _lookup(select: exp.Select, is_storage: Callable[[exp.Expr], bool]) -> str:
    """What ``select`` computes, whatever version of its tables it reads: a key set made for
    a newer version of the same lookup leaves this one to nobody."""
    from meshsim.query.scans import RAW_SCAN_TABLE

    shape = select.copy()
    for node in list(shape.find_all(exp.Select)):
        if node is not shape and is_storage(node):
            table = node.meta.get(RAW_SCAN_TABLE)
            # a scan that does not say its table stands for itself: superseded by nothing
            node.replace(exp.to_identifier(table) if table else exp.Literal.string(node.sql()))
    return shape.sql(dialect="duckdb")


@dataclass(eq=False)
class _KeySet:
    name: str
    lookup: str  # :func:`_lookup`
    making: threading.Lock = field(default_factory=threading.Lock)
    #: None until made; False: the lookup stays inline (over the limit, DuckDB failed)
    made: bool | None = None
    holders: int = 0  # queries running that planned with it
    stale: bool = False  # a newer version of its lookup was made


@dataclass(frozen=True)
class _Clock:
    """The time a key set's DuckDB calls get: what is left of the asking query's."""

    time_left: Callable[[], float | None]
    consumer: str | None = None
    limit_s: float | None = None


class KeySets:
    """The key sets of one governed engine's connection; :meth:`substitute` is the planner's
    entry point. ``duck()`` is the engine's :class:`meshsim.engine.GovernedDuckDB`."""

    def __init__(self, duck: Callable[[], Any], prefix: str, timeout_s: float | None) -> None:
        self._duck = duck
        self._prefix = prefix
        self._timeout_s = timeout_s
        #: guards ``_made`` only; a key set is made under its own ``making`` lock
        self._lock = threading.Lock()
        #: key set name -> key set, on ``_con`` (the connection they were made on), least
        #: recently used first
        self._made: OrderedDict[str, _KeySet] = OrderedDict()
        self._con: Any = None
        #: the attempt this thread plans and runs, and the key sets it holds
        self._local = threading.local()

    @contextmanager
    def attempt(self, attempt: Attempt) -> Iterator[None]:
        """While ``attempt`` plans and runs on this thread: key sets are made within its time
        left, none for a query run on Spark, and every one it planned with stays."""
        outer = getattr(self._local, "attempt", None), getattr(self._local, "held", None)
        self._local.attempt, self._local.held = attempt, []
        try:
            yield
        finally:
            held = self._local.held
            self._local.attempt, self._local.held = outer
            with self._lock:
                for entry in held:
                    entry.holders -= 1
                self._free()

    def wanted(self) -> bool:
        """Whether the query planned now reads key sets: only DuckDB runs the SQL text."""
        attempt = getattr(self._local, "attempt", None)
        return attempt is None or attempt.engine == "duckdb"

    def hold(self, names: frozenset[str]) -> bool:
        """Whether every key set of ``names`` still exists (a scan or plan naming one that
        does not must be planned again); if so they stay while this thread's attempt runs."""
        if not names:
            return True
        con = self._duck().con
        with self._lock:
            if self._con is not con:  # made on a DuckDB since replaced (or closed)
                return False
            entries = [self._made.get(name) for name in names]
            if not all(e is not None and e.made for e in entries):
                return False
            for entry in entries:
                assert entry is not None
                self._made.move_to_end(entry.name)
                self._held(entry)
            return True

    def substitute(
        self,
        predicates: Sequence[exp.Expr],
        files: frozenset[str],
        is_storage: Callable[[exp.Expr], bool] = is_storage_scan,
    ) -> tuple[list[exp.Expr], frozenset[str]]:
        """``predicates`` (compiled row filters) with each ``IN`` subquery that can be
        computed ahead read from its key set instead, and the key sets used. ``files`` are
        the lookups' files (the only ones a key set's query may read). Each key set used is
        held for this thread's attempt (:meth:`attempt`)."""
        out: list[exp.Expr] = []
        used: set[str] = set()
        for predicate in predicates:
            tree = predicate.copy()
            for node in list(tree.find_all(exp.In)):
                if node.root() is not tree:
                    continue  # inside a lookup already read from its key set: not read
                query = node.args.get("query")
                if not isinstance(query, exp.Subquery):
                    continue
                select = query.this
                if not isinstance(select, exp.Select) or len(select.expressions) != 1:
                    continue
                if not _static(select, is_storage):
                    continue
                name = self._key_set(select, files, is_storage)
                if name is None:
                    continue
                used.add(name)
                keys = exp.select(exp.Star()).from_(_table(name))
                query.replace(exp.Subquery(this=keys))
            out.append(tree)
        return out, frozenset(used)

    def _clock(self) -> _Clock:
        attempt = getattr(self._local, "attempt", None)
        if attempt is None:
            return _Clock(lambda: self._timeout_s)
        return _Clock(lambda: attempt.time_left, attempt.consumer, attempt.limit_s)

    def _key_set(
        self, select: exp.Select, files: frozenset[str], is_storage: Callable[[exp.Expr], bool]
    ) -> str | None:
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
        name = f"{self._prefix}k{hashlib.sha256(sql.encode()).hexdigest()[:32]}"
        lookup = _lookup(select, is_storage)
        db = self._duck()
        clock = self._clock()
        while True:
            with self._lock:
                if self._con is not db.con:  # a new connection holds none of the old ones
                    self._made, self._con = OrderedDict(), db.con
                entry = self._made.get(name)
                if entry is None:
                    entry = self._made[name] = _KeySet(name, lookup)
                self._made.move_to_end(name)
                if entry.made is not None:
                    return self._held(entry)
            # another query may be making it: wait for that one only, within our own time
            left = clock.time_left()
            if not entry.making.acquire(timeout=-1 if left is None else max(left, 0.0)):
                raise _timed_out(clock)
            try:
                with self._lock:
                    current = self._made.get(name) is entry and entry.made is None
                if current:
                    return self._make_entry(db, entry, distinct, files, clock)
            finally:
                entry.making.release()
            # made meanwhile, or freed with its connection: look again

    def _make_entry(
        self, db: Any, entry: _KeySet, query: exp.Select, files: frozenset[str], clock: _Clock
    ) -> str | None:
        try:
            made = self._make(db, entry.name, query, files, clock)
        except QueryTimeout:
            raise  # out of time or cancelled: so is the query that asked (the next one makes it)
        except MeshsimError:
            made = False  # inline, where it fails (or not) as it always did
        with self._lock:
            entry.made = made
            for other in self._made.values():
                if other is not entry and other.lookup == entry.lookup and other.made is not None:
                    other.stale = True
            name = self._held(entry)
            self._free(keep=entry)
            return name

    def _held(self, entry: _KeySet) -> str | None:
        """``entry``'s name, held by this thread's attempt; None for a lookup left inline.
        Called under ``_lock``."""
        if not entry.made:
            return None
        held = getattr(self._local, "held", None)
        if held is not None:
            entry.holders += 1
            held.append(entry)
        return entry.name

    def _free(self, keep: _KeySet | None = None) -> None:
        """Drop the key sets no query holds that a newer version superseded, then the least
        recently used past :data:`MAX_TABLES` (never ``keep``, just made). Called under
        ``_lock``: a DROP of an in-memory table is quick, and no make of the same name may
        start before it ends."""
        free = [e for e in self._made.values() if e.stale and e.holders == 0]
        over = len(self._made) - len(free) - MAX_TABLES
        for entry in self._made.values():
            if over <= 0:
                break
            idle = entry.made is not None and entry.holders == 0 and entry is not keep
            if idle and not entry.stale:
                free.append(entry)
                over -= 1
        for entry in free:
            del self._made[entry.name]
            if entry.made:
                self._drop(self._con, entry.name)

    def _drop(self, con: Any, name: str) -> None:
        from meshsim import engine as duck

        drop = exp.Drop(tables=[_table(name)], kind="TABLE", exists=True)
        try:  # cleanup is not on any query's clock: the engine's whole limit
            duck.run_statement(con, drop.sql(dialect="duckdb"), timeout_s=self._timeout_s)
        except MeshsimError:
            pass  # left behind: the next make of this name replaces it

    def _make(
        self, db: Any, name: str, query: exp.Select, files: frozenset[str], clock: _Clock
    ) -> bool:
        """Check ``query`` like a governed scan, run it into table ``name``; False (and no
        table) when it returned more than :data:`MAX_KEYS` keys, or on any failure."""
        from meshsim import engine as duck
        from meshsim.query.crosscheck import crosscheck
        from meshsim.query.verify import verify_bound_plan

        who, limit_s = clock.consumer, clock.limit_s
        sql = query.sql(dialect="duckdb")
        crosscheck(duck.serialize_sql(db.con, sql), ctes=frozenset(), files=files, scan=True)
        plan = duck.explain_bound(
            db, sql, timeout_s=clock.time_left(), consumer=who, limit_s=limit_s
        )
        verify_bound_plan(plan)
        table = _table(name)
        # OR REPLACE: a table an interrupted make left (its DROP failed too) is no obstacle
        create = exp.Create(this=table, kind="TABLE", expression=query, replace=True)
        count = exp.select(exp.Count(this=exp.Star())).from_(table.copy())
        kept = False
        try:
            duck.run_statement(
                db.con,
                create.sql(dialect="duckdb"),
                timeout_s=clock.time_left(),
                consumer=who,
                limit_s=limit_s,
            )
            rows = duck.run_arrow(
                db.con,
                count.sql(dialect="duckdb"),
                timeout_s=clock.time_left(),
                consumer=who,
                limit_s=limit_s,
            )
            kept = rows.column(0)[0].as_py() <= MAX_KEYS
            return kept
        finally:
            if not kept:
                self._drop(db.con, name)


def _timed_out(clock: _Clock) -> QueryTimeout:
    return QueryTimeout(
        f"the query ran longer than {clock.limit_s or 0:g} s (planning and execution) and was "
        f"interrupted",
        consumer=clock.consumer,
        hint="add filters or a LIMIT, or ask for a longer timeout",
    )
