"""The governed SQL entry point: :class:`GovernedEngine` and per-consumer :class:`Session`.

>>> # engine = GovernedEngine(spec, locate=..., mesh_key=b"...", allowed_paths=[...])
>>> # engine.session("eu_marketing_analyst").sql("SELECT count(*) FROM customer.customer")

Every attempt is audited. Errors a user sees are meshsim's own (validation, AccessDenied,
policy errors) or a generic engine failure naming only DuckDB's exception class: DuckDB's
message text can echo data values (for example a failed cast quotes the value), so it is
dropped, in the error and in the audit record alike.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from meshsim.errors import AccessDenied, MeshsimError, PolicyError, QueryError
from meshsim.query.audit import AuditRecord, AuditSink
from meshsim.query.crosscheck import crosscheck
from meshsim.query.result import Explanation, Result
from meshsim.query.rewrite import Plan, Planner
from meshsim.query.validate import parse_query
from meshsim.spec.loader import MeshSpec
from meshsim.spec.models import Policies

if TYPE_CHECKING:
    from meshsim.storage.snapshot import SnapshotCache

KEY_REDACTED = "<mesh-key>"
_SQL_STRING = re.compile(r"'(?:[^']|'')*'")
_FILE_LIST = re.compile(r"READ_PARQUET\(\[((?:\s*'(?:[^']|'')*'\s*,?)*)\]")


class GovernedEngine:
    """Governed federated SQL over one mesh's Delta tables, on one hardened DuckDB."""

    def __init__(
        self,
        spec: MeshSpec,
        *,
        locate: Callable[[str], str],
        mesh_key: bytes,
        allowed_paths: list[str],
        audit: AuditSink | None = None,
        policies: Callable[[], Policies] | None = None,
        threads: int | None = None,
        memory_limit: str | None = None,
        timeout_s: float | None = None,
        snapshots: SnapshotCache | None = None,
    ) -> None:
        if not isinstance(mesh_key, bytes | bytearray) or len(mesh_key) < 16:
            raise PolicyError("the mesh key must be at least 16 random bytes")
        self.spec = spec
        self.audit = audit
        self.timeout_s = 30.0 if timeout_s is None else timeout_s
        self.planner = Planner(
            spec, locate=locate, mesh_key=bytes(mesh_key), policies=policies, snapshots=snapshots
        )
        self._allowed_paths = list(allowed_paths)
        self._threads = threads
        self._memory_limit = memory_limit
        self._con = None
        self._lock = threading.Lock()
        self._checked_scans: set[str] = set()
        self._plans: dict[tuple[str, str, str], tuple[Plan, tuple[tuple[str, int], ...]]] = {}

    @property
    def connection(self):
        with self._lock:
            if self._con is None:
                from meshsim import engine

                self._con = engine.connect(
                    self._allowed_paths, threads=self._threads, memory_limit=self._memory_limit
                )
            return self._con

    def session(self, consumer: str) -> Session:
        from meshsim.policy.access import require_consumer

        require_consumer(self.spec, consumer)
        return Session(self, consumer)

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
        self.planner.clear()
        self._plans.clear()

    def __enter__(self) -> GovernedEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------

    def _plan(self, text: str, consumer: str) -> Plan:
        """Plan ``text`` for ``consumer``, or reuse the plan made for the same text, consumer
        and policy version while every table it reads is still at the version it was planned
        against (never keyed by SQL text alone)."""
        current = self.planner.current_policies()
        key = (consumer, current[1], text)
        cached = self._plans.get(key)
        if cached is not None and self._table_versions(cached[1]) == cached[1]:
            return cached[0]
        tree = parse_query(text, consumer=consumer)
        plan = self.planner.plan(tree, consumer, current)
        self.crosscheck(plan, consumer)
        # the versions the plan was bound to, not re-read now: a commit that lands while
        # planning must make the plan stale, not be recorded as seen
        versions = tuple(sorted(plan.bound.items()))
        with self._lock:
            if len(self._plans) > 1024:
                self._plans.clear()
            self._plans[key] = (plan, versions)
        return plan

    def _table_versions(self, pins: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
        """The latest version of each table (from the log listing, no replay)."""
        from meshsim.storage.delta import latest_version

        return tuple((ref, latest_version(self.planner.locate(ref), table=ref)) for ref, _ in pins)

    def crosscheck(self, plan: Plan, consumer: str) -> None:
        """DuckDB's parser checks the final SQL in two parts that compose it exactly: the
        consumer's part with each governed scan still a placeholder table (every query), and
        each governed scan, meshsim's own SQL, once per compiled scan. Re-parsing the whole
        statement would cost more than all of planning (the scans hold the file lists)."""
        from meshsim import engine

        crosscheck(
            engine.serialize_sql(self.connection, plan.skeleton),
            ctes=plan.ctes | frozenset(plan.scans),
            files=frozenset(),
            consumer=consumer,
        )
        for scan in plan.scans.values():
            if scan.sql in self._checked_scans:
                continue
            crosscheck(
                engine.serialize_sql(self.connection, f"SELECT * FROM ({scan.sql}) AS s"),
                ctes=frozenset(),
                files=scan.files,
                consumer=consumer,
            )
            with self._lock:
                if len(self._checked_scans) > 4096:
                    self._checked_scans.clear()
                self._checked_scans.add(scan.sql)

    def redact(self, sql: str) -> str:
        """The SQL as a consumer may see it: no mesh key, and no storage paths (the workspace
        layout is the platform's business), only how many files each scan reads."""
        sql = sql.replace(self.planner.mesh_key.hex(), KEY_REDACTED)

        def files(match: re.Match[str]) -> str:
            count = len(_SQL_STRING.findall(match.group(1)))
            return f"READ_PARQUET([<{count} file{'s' if count != 1 else ''}>]"

        return _FILE_LIST.sub(files, sql)

    def _record(
        self,
        consumer: str,
        text: str,
        decision: str,
        started: float,
        *,
        reason: str = "",
        plan: Plan | None = None,
        rows: int | None = None,
    ) -> None:
        if self.audit is None:
            return
        tables = tuple((t.ref, t.version) for t in plan.tables) if plan else ()
        columns = tuple(f"{t.ref}.{c}" for t in plan.tables for c in t.columns) if plan else ()
        policies = tuple(p for t in plan.tables for p in t.policies) if plan else ()
        self.audit.append(
            AuditRecord(
                time=datetime.now(UTC),
                consumer=consumer,
                sql=text,
                decision=decision,  # type: ignore[arg-type]
                reason=reason,
                tables=tables,
                columns=columns,
                policies=policies,
                rows=rows,
                duration_ms=(time.perf_counter() - started) * 1000.0,
            )
        )


class Session:
    """One consumer's queries. Cheap; create as many as needed."""

    def __init__(self, engine: GovernedEngine, consumer: str) -> None:
        self.engine = engine
        self.consumer = consumer

    def sql(self, text: str) -> Result:
        """Run ``text`` under the consumer's policies; audited whatever happens."""
        from meshsim import engine as duck

        started = time.perf_counter()
        plan: Plan | None = None
        try:
            plan = self.engine._plan(text, self.consumer)
            table = duck.run_arrow(
                self.engine.connection,
                plan.sql,
                timeout_s=self.engine.timeout_s,
                consumer=self.consumer,
            )
        except (AccessDenied, PolicyError) as exc:
            self.engine._record(
                self.consumer, text, "refused", started, reason=exc.message, plan=plan
            )
            raise
        except (duck.EngineFailure, duck.QueryTimeout) as exc:
            self.engine._record(
                self.consumer, text, "error", started, reason=exc.message, plan=plan
            )
            raise
        except MeshsimError as exc:
            self.engine._record(
                self.consumer,
                text,
                "refused" if isinstance(exc, QueryError) else "error",
                started,
                reason=exc.message,
                plan=plan,
            )
            raise
        except Exception as exc:
            self.engine._record(
                self.consumer,
                text,
                "error",
                started,
                reason=f"internal error ({type(exc).__name__})",
                plan=plan,
            )
            raise QueryError(
                f"meshsim could not plan or run the query ({type(exc).__name__})",
                consumer=self.consumer,
            ) from None
        self.engine._record(self.consumer, text, "allowed", started, plan=plan, rows=table.num_rows)
        return Result(table, tuple((t.ref, t.version) for t in plan.tables))

    def explain(self, text: str) -> Explanation:
        """What ``text`` would read and under which policies (not run; audited as refused
        or allowed like a query, with no rows)."""
        started = time.perf_counter()
        try:
            plan = self.engine._plan(text, self.consumer)
        except MeshsimError as exc:
            self.engine._record(
                self.consumer, f"EXPLAIN {text}", "refused", started, reason=exc.message
            )
            raise
        self.engine._record(self.consumer, f"EXPLAIN {text}", "allowed", started, plan=plan)
        tables = []
        for table in plan.tables:
            info = table.describe()
            info["row_filters"] = [f"{f.name}: {f.predicate}" for f in table.access.row_filters]
            tables.append(info)
        return Explanation(self.consumer, text, self.engine.redact(plan.sql), tables)
