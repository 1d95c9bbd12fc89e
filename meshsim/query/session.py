"""The governed SQL entry point: :class:`GovernedEngine` and per-consumer :class:`Session`.

>>> # engine = GovernedEngine(spec, locate=..., mesh_key=b"...", allowed_paths=[...])
>>> # engine.session("eu_marketing_analyst").sql("SELECT count(*) FROM customer.customer")

A query is :data:`meshsim.query.pipeline.RULES` applied in order; the engine holds what the
rules need (planner, connection, limits, caches) and audits every attempt, once, with
:func:`meshsim.query.pipeline.audit_decision`. Errors a user sees are meshsim's own
(validation, AccessDenied, policy errors) or a generic engine failure naming only DuckDB's
exception class: DuckDB's message text can echo data values (for example a failed cast quotes
the value), so it is dropped, in the error and in the audit record alike.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from meshsim.errors import MeshsimError, PolicyError, QueryError
from meshsim.query import pipeline
from meshsim.query.audit import AuditRecord, AuditSink, Decision
from meshsim.query.cache import QueryCaches
from meshsim.query.dependencies import dependencies_of, still_hold, with_current_access
from meshsim.query.parameters import Params, audit_text
from meshsim.query.pipeline import Attempt, Rule
from meshsim.query.result import Explanation, Result
from meshsim.query.rewrite import Plan, Planner
from meshsim.query.validate import QueryBounds
from meshsim.spec.loader import MeshSpec
from meshsim.spec.models import Policies

if TYPE_CHECKING:
    from meshsim.engine import EngineLimits
    from meshsim.query.plan_store import PlanStore
    from meshsim.query.templates import Words
    from meshsim.storage.snapshot import SnapshotCache

KEY_REDACTED = "<mesh-key>"


class GovernedEngine:
    """Governed federated SQL over one mesh's Delta tables, on one hardened DuckDB."""

    def __init__(
        self,
        spec: MeshSpec,
        *,
        locate: Callable[[str], str],
        mesh_key: bytes,
        allowed_paths: list[str],
        root_of: Callable[[str], str | None] | None = None,
        audit: AuditSink | None = None,
        policies: Callable[[str | None], Policies] | None = None,
        threads: int | None = None,
        memory_limit: str | None = None,
        timeout_s: float | None = None,
        snapshots: SnapshotCache | None = None,
        limits: EngineLimits | None = None,
        bounds: QueryBounds | None = None,
        published: Callable[[str], int | None] | None = None,
        publications: Callable[[str], Sequence[int]] | None = None,
        serves: Callable[[str], None] | None = None,
        plan_store: PlanStore | None = None,
    ) -> None:
        from meshsim.engine import EngineLimits

        if not isinstance(mesh_key, bytes | bytearray) or len(mesh_key) < 16:
            raise PolicyError("the mesh key must be at least 16 random bytes")
        limits = limits or EngineLimits()
        self.limits = replace(
            limits,
            threads=limits.threads if threads is None else threads,
            memory_limit=limits.memory_limit if memory_limit is None else memory_limit,
            timeout_s=limits.timeout_s if timeout_s is None else timeout_s,
        )
        self.bounds = bounds or QueryBounds()
        self.spec = spec
        self.audit = audit
        self.caches = QueryCaches()
        self.planner = Planner(
            spec,
            locate=locate,
            mesh_key=bytes(mesh_key),
            policies=policies,
            snapshots=snapshots,
            caches=self.caches,
            published=published,
            publications=publications,
            serves=serves,
        )
        from meshsim.query.keysets import KeySets
        from meshsim.query.rewrite import SCAN_MARK

        self.planner.keysets = KeySets(
            lambda: self.duck, f"{SCAN_MARK}{self.planner.nonce}_", self.limits.timeout_s
        )
        #: the planning rules, in order (data: a test or a benchmark may run a prefix)
        self.plan_rules: tuple[Rule, ...] = pipeline.PLAN_RULES
        #: verified plans that outlive this engine (:mod:`meshsim.query.plan_store`)
        self.plan_store = plan_store
        self._allowed_paths = list(allowed_paths)
        #: ``ref -> the data root a table lives in`` outside ``allowed_paths`` (a registered
        #: table's location), or None: DuckDB may read a root only once a query needs it
        self._root_of = root_of or (lambda ref: None)
        self._roots: set[str] = set()
        self._con = None
        self._retired: list = []  # connections opened before a root was added, closed last
        self._lock = threading.Lock()

    @property
    def timeout_s(self) -> float | None:
        return self.limits.timeout_s

    @property
    def duck(self):
        """The hardened DuckDB (:class:`meshsim.engine.GovernedDuckDB`), opened on first use
        with the data roots queries have needed so far (:meth:`cover`)."""
        with self._lock:
            if self._con is None:
                from meshsim import engine

                self._con = engine.open_governed(
                    [*self._allowed_paths, *sorted(self._roots)],
                    threads=self.limits.threads,
                    memory_limit=self.limits.memory_limit,
                )
            return self._con

    def cover(self, refs: Iterable[str]) -> bool:
        """Let DuckDB read the data roots of tables ``refs`` (registered tables live each in
        its own): a DuckDB opened without one of them is replaced by one with all. Listing
        every registered table's root up front cost every engine that opened a DuckDB time
        per table of the mesh (its allowed directories are fixed once it is locked).

        True when the DuckDB was replaced: what lived in it (key sets) is gone, so the scans
        and plans that name them are dropped and the caller compiles its scans again."""
        needed = {root for root in map(self._root_of, refs) if root is not None}
        if needed <= self._roots:
            return False
        with self._lock:
            self._roots |= needed
            if self._con is None:
                return False
            self._retired.append(self._con)  # another thread may still be running on it
            self._con = None
            self.caches.plans.clear()
            self.caches.templates.clear()
            self.caches.scans.clear()
        return True

    @property
    def connection(self):
        return self.duck.con

    def session(self, consumer: str, engine: str = "duckdb") -> Session:
        """A session as ``consumer`` whose queries run on ``engine`` (:data:`ENGINES`);
        refused when the mesh binds ``consumer`` to other OS users than the one running this
        process (checked again on every attempt)."""
        from meshsim.engines import require_engine
        from meshsim.identity import authenticate
        from meshsim.policy.access import require_consumer

        require_engine(engine)
        require_consumer(self.spec, consumer)
        authenticate(self.spec, consumer)
        if engine == "spark":  # started here, not on a query's clock (it takes seconds)
            from meshsim.engines.spark import spark_session

            spark_session()
        return Session(self, consumer, engine)

    def close(self) -> None:
        with self._lock:
            for con in [*self._retired, *([self._con] if self._con is not None else [])]:
                con.close()
            self._con, self._retired = None, []
        self.planner.clear()

    def __enter__(self) -> GovernedEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- planning and running ----------------------------------------------------------------

    def attempt(
        self, consumer: str, text: str, params: Params | None = None, engine: str = "duckdb"
    ) -> Attempt:
        """A new attempt, with the policies in force read once: the plan cache key and the
        plan itself come from this one read."""
        from meshsim.identity import authenticate

        authenticate(self.spec, consumer)  # every attempt, however it was reached
        attempt = Attempt(consumer, text, params, engine, limit_s=self.limits.timeout_s)
        attempt.policies, attempt.fingerprint = self.planner.current_policies(consumer)
        return attempt

    def warm(self, consumer: str) -> None:
        """Do now what ``consumer``'s first query would: compile the governed scan of every
        mesh table it may read at the published version, check it alone with DuckDB (which
        reads its Parquet metadata) and make its stand-in. Not audited: nothing is queried."""
        from meshsim import engine as duck
        from meshsim.system import SYSTEM_DOMAIN

        attempt = self.attempt(consumer, "")
        assert attempt.policies is not None
        planner = self.planner
        access = planner.access_for(consumer, attempt.fingerprint, attempt.policies)
        stand_ins: dict[str, str] = {}
        keysets = planner.keysets
        with keysets.attempt(attempt) if keysets is not None else nullcontext():
            for table in self.spec.tables():
                if table.domain == SYSTEM_DOMAIN or not table.columns:
                    continue  # the audit table changes with every query
                table_access = access(table.ref)
                if not table_access.granted:
                    continue
                scan = planner.current_scan(consumer, attempt.fingerprint, table_access)
                if self.cover([table.ref, *(ref for ref, _ in scan.lookups)]):
                    # its key sets lived in the DuckDB just replaced
                    scan = planner.current_scan(consumer, attempt.fingerprint, table_access)
                name, select = pipeline.verify_scan(self, scan, attempt)
                stand_ins[name] = select
        duck.explain_with_stand_ins(self.duck, "", stand_ins, timeout_s=self.limits.timeout_s)
        if self.plan_store is not None:
            self.plan_store.prepare()

    def plan(self, attempt: Attempt) -> Plan:
        """The verified plan of ``attempt``: from a plan cache while every table it read is
        still at the version it was bound to and its product is served, else by
        :attr:`plan_rules`."""
        with self.planner.one_attempt() as served:
            return self._plan(attempt, served)

    def _plan(self, attempt: Attempt, served: set[str]) -> Plan:
        rules, text = self.plan_rules, attempt.text
        if attempt.params is not None:
            # the key is the text with the values bound: parse (which binds them) runs first
            from meshsim.query.parameters import bound_text

            parse = tuple(r for r in rules if r.name == "parse")
            pipeline.run_rules(self, attempt, parse)
            assert attempt.statement is not None
            rules = tuple(r for r in rules if r.name != "parse")
            text = bound_text(attempt.statement, attempt.wrapper)
        # the rules too: a plan a test or benchmark made with a prefix is not the pipeline's
        key = (attempt.consumer, text, rules)
        known = self.caches.plans.get(key)
        cached = self._reusable(known, attempt)
        if cached is not None and self._usable(cached):
            if cached is not known:
                self.caches.plans.put(key, cached)
            attempt.plan, attempt.cached = cached, True
            return cached
        words = self._words(attempt, rules)
        if words is not None:
            began = time.perf_counter()
            plan = self.caches.templates.plan_for(self, attempt, words, self._usable)
            attempt.timings["template"] = time.perf_counter() - began
            if plan is not None:
                attempt.plan, attempt.cached = plan, True
                self.caches.plans.put(key, plan)
                return plan
        store = self._plan_store(attempt)
        stored_key = store.entry_key(attempt, text, self.bounds) if store is not None else ""
        plan = None
        if store is not None:
            plan = store.load(stored_key, attempt, self.planner, self._table_versions)
            if plan is not None and (
                plan.dependencies is None or plan.dependencies.accesses is None
            ):
                plan = None  # a listing (never stored since): planned here
            if plan is not None and self.cover(plan.bound):
                # remade on the DuckDB just replaced: its key sets are not in the new one
                plan = store.load(stored_key, attempt, self.planner, self._table_versions)
            attempt.cached = plan is not None
        if plan is None:
            pipeline.run_rules(self, attempt, rules)
            plan = attempt.plan
            assert plan is not None
            plan.served = frozenset(served)
            plan.dependencies = dependencies_of(self.planner, attempt, plan, served)
            if store is not None and plan.dependencies.accesses is not None:
                # a listing depends on the whole view, product files included, which no key
                # of the store covers: planned in each engine, never stored
                store.save(stored_key, attempt, self.planner, plan)
            if words is not None:
                self.caches.templates.record(attempt, plan, words)
        attempt.plan = plan
        # checked later against the versions the plan was bound to (plan.bound), not re-read
        # now: a commit that lands while planning must make the plan stale
        self.caches.plans.put(key, plan)
        return plan

    def _usable(self, plan: Plan) -> bool:
        """Whether a plan made before may be used now: every table it read still at the version
        it was bound to, every product it read served, every key set it reads still there."""
        bound = tuple(sorted(plan.bound.items()))
        if self._table_versions(bound) != bound:
            return False
        # the gate's answer is not in any key: a product withheld since (an edit, a publish
        # from another checkout) is refused as planning it would be
        for ref in sorted(plan.served):
            self.planner.require_served(ref)
        return self._holds_key_sets(plan)

    def _words(self, attempt: Attempt, rules: tuple[Rule, ...]) -> Words | None:
        """The template cache's view of ``attempt``'s text, when a template may plan it: the
        whole pipeline, no bound parameters, on DuckDB, within the size bound."""
        if (
            rules is not pipeline.PLAN_RULES
            or attempt.params is not None
            or attempt.engine != "duckdb"
            or not isinstance(attempt.text, str)  # the parse rule refuses it
            or len(attempt.text) > self.bounds.max_chars
        ):
            return None
        from meshsim.query.templates import words

        return words(attempt.text)

    def _reusable(self, cached: Plan | None, attempt: Attempt) -> Plan | None:
        """The cached plan of ``attempt``'s text, if planning it under the policies now would
        make the same plan (:mod:`meshsim.query.dependencies`)."""
        if cached is None:
            return None
        dependencies = cached.dependencies
        if dependencies is None or not still_hold(dependencies, self.planner, attempt):
            return None
        if dependencies.fingerprint == attempt.fingerprint:
            return cached
        # the same plan under these policies too, naming the grants that apply now
        plan = with_current_access(cached, self.planner, attempt)
        return replace(plan, dependencies=replace(dependencies, fingerprint=attempt.fingerprint))

    def _holds_key_sets(self, plan: Plan) -> bool:
        """Whether every key set ``plan`` reads still exists (then kept while it runs)."""
        keysets = self.planner.keysets
        names = frozenset(n for scan in plan.scans.values() for n in scan.keysets)
        return keysets is None or keysets.hold(names)

    def _plan_store(self, attempt: Attempt) -> PlanStore | None:
        """The plan store, for an attempt it can serve: planned by the whole rule pipeline
        (a test or benchmark may run a prefix), run on DuckDB."""
        if self.plan_rules is not pipeline.PLAN_RULES or attempt.engine != "duckdb":
            return None
        return self.plan_store

    def run(self, attempt: Attempt, *, execute: bool = True) -> Attempt:
        """Plan (and run) ``attempt``; audited exactly once, whatever happens."""
        error: BaseException | None = None
        keysets = self.planner.keysets
        try:
            with keysets.attempt(attempt) if keysets is not None else nullcontext():
                self.plan(attempt)
                if execute:
                    pipeline.run_rules(self, attempt, (pipeline.EXECUTE,))
        except MeshsimError as exc:
            error = exc
            raise
        except Exception as exc:
            error = exc
            raise QueryError(
                f"meshsim could not plan or run the query ({type(exc).__name__})",
                consumer=attempt.consumer,
            ) from None
        except BaseException as exc:  # Ctrl-C in a notebook or a script: audited, re-raised
            error = exc
            raise
        finally:
            self._record(attempt, error, explain=not execute)
        return attempt

    def _table_versions(self, pins: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
        """The version each table is read at now: its published version (latest when not
        pinned, from the log listing, no replay)."""
        return tuple((ref, self.planner.current_version(ref)) for ref, _ in pins)

    def explanation(self, consumer: str, text: str, plan: Plan) -> Explanation:
        """What ``plan`` reads and under which policies, as ``consumer`` may see it."""
        tables = []
        for table in plan.tables:
            info = table.describe()
            info["row_filters"] = [f"{f.name}: {f.predicate}" for f in table.access.row_filters]
            tables.append(info)
        return Explanation(consumer, text, self.redact(plan.explain_sql()), tables)

    def redact(self, sql: str) -> str:
        """SQL as a consumer may see it: without the mesh key."""
        return sql.replace(self.planner.mesh_key.hex(), KEY_REDACTED)

    def _record(self, attempt: Attempt, error: BaseException | None, *, explain: bool) -> None:
        if self.audit is None:
            return
        decision: Decision = pipeline.audit_decision(error)
        plan = attempt.plan
        tables = tuple((t.ref, t.version) for t in plan.tables) if plan else ()
        columns = tuple(f"{t.ref}.{c}" for t in plan.tables for c in t.columns) if plan else ()
        policies = tuple(p for t in plan.tables for p in t.policies) if plan else ()
        rows = attempt.table.num_rows if attempt.table is not None and error is None else None
        text = attempt.text if isinstance(attempt.text, str) else repr(attempt.text)
        text = audit_text(text, attempt.params)
        # an unpaired surrogate cannot be stored; keep the attempt, escaped
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
        self.audit.append(
            AuditRecord(
                time=datetime.now(UTC),
                consumer=attempt.consumer,
                sql=f"EXPLAIN {text}" if explain else text,
                decision=decision,
                reason=pipeline.reason_of(error) if error is not None else "",
                tables=tables,
                columns=columns,
                policies=policies,
                rows=rows,
                duration_ms=(time.perf_counter() - attempt.started) * 1000.0,
            )
        )


class Session:
    """One consumer's queries. Cheap; create as many as needed."""

    def __init__(self, engine: GovernedEngine, consumer: str, runs_on: str = "duckdb") -> None:
        self.engine = engine
        self.consumer = consumer
        #: where the verified plans run: "duckdb" or "spark"
        self.runs_on = runs_on

    def sql(self, text: str, params: Params | None = None) -> Result:
        """Run ``text`` under the consumer's policies; audited whatever happens. ``params``
        binds ``?``/``$1`` (a list or tuple) or ``$name`` (a dict) as in ``duckdb.execute``."""
        attempt = self.engine.run(self.engine.attempt(self.consumer, text, params, self.runs_on))
        assert attempt.table is not None and attempt.plan is not None
        return Result(
            attempt.table,
            tuple((t.ref, t.version) for t in attempt.plan.tables),
            pipeline.stage_timings(attempt),
        )

    def explain(self, text: str, params: Params | None = None) -> Explanation:
        """What ``text`` would read and under which policies (not run; audited as refused
        or allowed like a query, with no rows). Storage is shown as each governed scan's
        table, version and file count, never its paths or partition values."""
        attempt = self.engine.run(self.engine.attempt(self.consumer, text, params), execute=False)
        assert attempt.plan is not None
        return self.engine.explanation(self.consumer, text, attempt.plan)
