"""The governed query as data: an ordered tuple of named rules, like sqlglot's optimizer.

Each rule is a function ``rule(engine, attempt) -> None`` that reads what earlier rules put
on the :class:`Attempt` and adds its own product; :func:`run_rules` runs them in order,
records each one's time, and stops at the deadline. :data:`PLAN_RULES`:

1. ``parse`` - text within the size bounds, sqlglot parses exactly one statement; bound
   parameters become literals (:mod:`meshsim.query.parameters`);
   ``statement`` - an inspection statement (DESCRIBE, SUMMARIZE, SHOW TABLES, EXPLAIN) and
   ``information_schema`` become the governed query that answers them from the consumer's
   view (:mod:`meshsim.query.statements`);
2. ``validate`` - a read-only query of allowlisted syntax, safe relation names, recursive CTEs
   in the shape DuckDB binds, bounded size (:mod:`meshsim.query.validate`);
   ``name`` - unnamed output columns named as DuckDB names them (:mod:`meshsim.query.outputs`);
3. ``resolve`` - every table and column qualified by scope, stars expanded to the columns the
   consumer may see (:mod:`meshsim.query.names`);
4. ``authorise`` - deny by default: every table granted, every column named visible
   (:func:`meshsim.query.rewrite.authorize`);
5. ``bind`` - every mesh table reference replaced by its governed scan, pinned to one version
   (:meth:`meshsim.query.rewrite.Planner.bind`);
6. ``verify-plan`` - DuckDB's parse of the final SQL is what was built
   (:mod:`meshsim.query.crosscheck`), and DuckDB's *bound* plan (unoptimized: the optimizer
   can fold a scan into constants it read from the file) scans only what was bound
   (:mod:`meshsim.query.verify`).

Then :data:`EXECUTE` runs the verified SQL under the engine's limits. A verified plan is
cached by (consumer, text) and reused only while what it depends on of the consumer's
policies holds (:mod:`meshsim.query.dependencies`) and every table it read is still at its
bound version; the cache is the engine's, in :mod:`meshsim.query.cache`.
:func:`audit_decision` is the one answer to "was this attempt refused, or did it fail".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from meshsim.errors import AccessDenied, MeshsimError, QueryError
from meshsim.query.audit import Decision

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlglot import exp

    from meshsim.engine import EngineFailure
    from meshsim.query.names import Resolved
    from meshsim.query.parameters import Params
    from meshsim.query.rewrite import Plan
    from meshsim.query.scans import GovernedScan
    from meshsim.query.session import GovernedEngine
    from meshsim.spec.models import Policies


@dataclass
class Attempt:
    """One consumer's attempt at one query, as the rules build it up."""

    consumer: str
    text: str
    #: bound parameters (list for ? and $1, dict for $name), replaced by literals at parse
    params: Params | None = None
    #: where the verified plan runs (:data:`meshsim.engines.ENGINES`)
    engine: str = "duckdb"
    started: float = field(default_factory=time.perf_counter)
    limit_s: float | None = None
    policies: Policies | None = None
    fingerprint: str = ""
    statement: exp.Expr | None = None  # what parse made of the text
    #: DESCRIBE / SUMMARIZE (DuckDB wraps the verified query) or EXPLAIN (not run)
    wrapper: str = ""
    parsed_text: str = ""  # the text parsed (each ? numbered $1, $2... when bound)
    source_text: str = ""  # the text the statement's positions refer to (inside EXPLAIN)
    query_text: str = ""  # the text of the query itself (inside EXPLAIN, DESCRIBE, ...)
    tree: exp.Query | None = None  # the validated query
    resolved: Resolved | None = None
    plan: Plan | None = None
    table: pa.Table | None = None
    cached: bool = False
    #: planning read the consumer's whole view (a listing of every table it may read)
    whole_view: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def time_left(self) -> float | None:
        if self.limit_s is None:
            return None
        return self.limit_s - (time.perf_counter() - self.started)

    def check_deadline(self) -> None:
        left = self.time_left
        if left is not None and left <= 0:
            from meshsim.engine import QueryTimeout

            raise QueryTimeout(
                f"the query ran longer than {self.limit_s:g} s (planning and execution) and "
                f"was interrupted",
                consumer=self.consumer,
                hint="add filters or a LIMIT, or ask for a longer timeout",
            )


@dataclass(frozen=True)
class Rule:
    name: str
    apply: Callable[[GovernedEngine, Attempt], None]


# -- the rules ---------------------------------------------------------------------------------


def parse(engine: GovernedEngine, attempt: Attempt) -> None:
    """Parse, then bind the parameters as literals in meshsim's own tree. EXPLAIN's query is
    opaque text to sqlglot, so it is parsed here too, and its placeholders numbered in the
    order of *its* text: every wrapper's query binds exactly like the query alone."""
    from meshsim.query.parameters import (
        bind_parameters,
        check_params,
        check_params_size,
        number_placeholders,
    )
    from meshsim.query.statements import EXPLAIN, explained_query, is_explain
    from meshsim.query.validate import command_text, parse_statement

    params = check_params(attempt.params, attempt.consumer)
    check_params_size(params, engine.bounds.max_chars, attempt.consumer)
    text = attempt.text if params is None else number_placeholders(attempt.text, attempt.consumer)
    statement = parse_statement(text, consumer=attempt.consumer, bounds=engine.bounds)
    source = text
    if is_explain(statement):
        source = command_text(statement)
        if params is not None:
            source = number_placeholders(source, attempt.consumer)
        statement = explained_query(source, attempt.consumer, engine.bounds)
        attempt.wrapper = EXPLAIN
    attempt.statement = bind_parameters(statement, params, attempt.consumer)
    attempt.parsed_text, attempt.source_text = text, source


def statement(engine: GovernedEngine, attempt: Attempt) -> None:
    from meshsim.query.statements import inspect

    inspect(engine, attempt)


def validate(engine: GovernedEngine, attempt: Attempt) -> None:
    from meshsim.query.validate import validate_query

    assert attempt.statement is not None
    attempt.tree = validate_query(
        attempt.statement, consumer=attempt.consumer, bounds=engine.bounds
    )


def name(engine: GovernedEngine, attempt: Attempt) -> None:
    from meshsim.query.outputs import name_outputs

    assert attempt.tree is not None
    # the tables it names, before the first DuckDB opens: else it opens twice
    engine.cover(_named_tables(attempt.tree))
    name_outputs(engine.connection, attempt.query_text or attempt.text, attempt.tree)


def _named_tables(tree: exp.Query) -> list[str]:
    from sqlglot import exp

    return [
        f"{t.db}.{t.name}".lower()
        for t in tree.find_all(exp.Table)
        if t.db and not isinstance(t.this, exp.Func)
    ]


def resolve(engine: GovernedEngine, attempt: Attempt) -> None:
    """Qualify with the consumer's VISIBLE schema; a query that does not resolve because it
    names a hidden column is refused as such (authorise on the full schema says which)."""
    from sqlglot import exp

    from meshsim.query.names import resolve as resolve_names
    from meshsim.query.rewrite import authorize, require_columns

    assert attempt.tree is not None and attempt.policies is not None
    planner = engine.planner
    access = planner.access_for(attempt.consumer, attempt.fingerprint, attempt.policies)
    require_columns(attempt.tree, planner)
    named = frozenset(f"{t.db}.{t.name}".lower() for t in attempt.tree.find_all(exp.Table) if t.db)
    visible = planner.visible_schema(attempt.consumer, attempt.fingerprint, access, named)
    try:
        text = attempt.source_text or attempt.text
        attempt.resolved = resolve_names(
            attempt.tree,
            planner.spec,
            consumer=attempt.consumer,
            schema=visible,
            text=text,
            columns_at=planner.columns_at,
        )
    except QueryError as first:
        try:
            diagnosis = resolve_names(attempt.tree, planner.spec, consumer=attempt.consumer)
        except QueryError:
            raise first from None
        authorize(diagnosis, planner.spec, attempt.consumer, access)
        raise first from None


def authorise(engine: GovernedEngine, attempt: Attempt) -> None:
    from meshsim.query.rewrite import authorize

    assert attempt.resolved is not None and attempt.policies is not None
    planner = engine.planner
    access = planner.access_for(attempt.consumer, attempt.fingerprint, attempt.policies)
    authorize(attempt.resolved, planner.spec, attempt.consumer, access)


def bind(engine: GovernedEngine, attempt: Attempt) -> None:
    assert attempt.resolved is not None and attempt.policies is not None
    planner = engine.planner
    access = planner.access_for(attempt.consumer, attempt.fingerprint, attempt.policies)
    attempt.plan = planner.bind(attempt.resolved, attempt.consumer, access, attempt.fingerprint)
    # every table read or looked up (a row filter's too); scans compiled on a DuckDB that
    # had to be replaced for it are compiled again: their key sets lived in it
    if engine.cover(attempt.plan.bound):
        resolve(engine, attempt)  # a fresh tree: bind spliced its scans into the last one
        assert attempt.resolved is not None
        attempt.plan = planner.bind(attempt.resolved, attempt.consumer, access, attempt.fingerprint)
    attempt.plan.wrapper = attempt.wrapper


def verify_plan(engine: GovernedEngine, attempt: Attempt) -> None:
    """DuckDB's bound plan of each governed scan alone (once per scan), then, in one call on
    the verifier, DuckDB's parse and bound plan of the skeleton over the scans' stand-ins
    (:mod:`meshsim.query.verify` says why the parts bind as the whole does). The skeleton's
    parse is checked every time; its plan is bound only for a shape not bound and accepted
    on this verifier before (:func:`meshsim.query.crosscheck.parse_shape` says why a shape
    scans the same whatever its string literals)."""
    from meshsim import engine as duck
    from meshsim.query.crosscheck import crosscheck, parse_shape
    from meshsim.query.verify import verify_bound_plan

    plan = attempt.plan
    assert plan is not None
    stand_ins: dict[str, str] = {}
    skeleton = plan.skeleton
    for placeholder, scan in plan.scans.items():
        name, select = verify_scan(engine, scan, attempt)
        stand_ins[name] = select
        # bind made each placeholder appear exactly once, quoted
        skeleton = skeleton.replace(f'"{placeholder}"', f'"{name}"')
    shapes: list[str] = []

    def check(serialized: str) -> str:
        # the parse checked is of the very text bound: the skeleton over the stand-ins
        crosscheck(
            serialized,
            ctes=plan.ctes | frozenset(stand_ins),
            files=frozenset(),
            consumer=attempt.consumer,
        )
        shapes.append(f"{plan.series}:{parse_shape(serialized)}")
        return shapes[-1]

    db = engine.duck
    try:
        explained = duck.explain_with_stand_ins(
            db,
            skeleton,
            stand_ins,
            timeout_s=attempt.time_left,
            consumer=attempt.consumer,
            limit_s=attempt.limit_s,
            check=check,
        )
    except duck.EngineFailure as exc:
        # making the stand-ins (CREATE ... WITH NO DATA) can decode a first page already
        _require_plan_files(engine, plan, exc)
        raise
    if not explained:
        return  # a shape bound and accepted before
    verify_bound_plan(
        explained, series=plan.series, stand_ins=frozenset(stand_ins), consumer=attempt.consumer
    )
    duck.accept_shape(db, shapes[-1])


def verify_scan(engine: GovernedEngine, scan: GovernedScan, attempt: Attempt) -> tuple[str, str]:
    """DuckDB's parse and bound plan of one governed scan alone (once per scan SQL); its
    stand-in's name and the SELECT it stands in for."""
    from meshsim import engine as duck
    from meshsim.query.crosscheck import crosscheck
    from meshsim.query.verify import verify_bound_plan

    select = f"SELECT * FROM ({scan.sql}) AS s"
    checked = engine.caches.checked_scans
    if not checked.get(scan.sql):
        crosscheck(
            duck.serialize_sql(engine.connection, select),
            ctes=scan.keysets,  # its only table names: the key sets it was bound to
            files=scan.files,
            consumer=attempt.consumer,
            scan=True,
        )
        alone = duck.explain_bound(
            engine.duck,
            select,
            timeout_s=attempt.time_left,
            consumer=attempt.consumer,
            limit_s=attempt.limit_s,
        )
        verify_bound_plan(alone, keysets=scan.keysets, consumer=attempt.consumer)
        checked.put(scan.sql, True)
    return stand_in_name(engine.planner.nonce, scan.sql), select


def stand_in_name(nonce: str, scan_sql: str) -> str:
    """The verifier's stand-in table of one governed scan: reserved prefix (consumer text may
    not contain it), the engine's nonce, a hash of the scan's SQL."""
    import hashlib

    from meshsim.query.rewrite import SCAN_MARK

    return f"{SCAN_MARK}{nonce}_t{hashlib.sha256(scan_sql.encode()).hexdigest()[:32]}"


def execute(engine: GovernedEngine, attempt: Attempt) -> None:
    from meshsim import engine as duck

    plan = attempt.plan
    assert plan is not None
    if plan.wrapper == "EXPLAIN":
        from meshsim.query.result import explain_table

        attempt.table = explain_table(engine.explanation(attempt.consumer, attempt.text, plan))
        return
    limits = engine.limits
    if attempt.engine == "spark":
        attempt.table = _execute_on_spark(engine, attempt, plan)
        return
    db = engine.duck
    try:
        attempt.table = duck.run_arrow(
            db.con,
            f"{plan.wrapper} {plan.sql}" if plan.wrapper else plan.sql,
            timeout_s=attempt.time_left,
            consumer=attempt.consumer,
            max_rows=limits.max_result_rows,
            max_bytes=limits.max_result_bytes,
            limit_s=attempt.limit_s,
            parsed=db.parsed,
        )
    except duck.EngineFailure as exc:
        # a data file damaged since the plan was made fails inside DuckDB, whose message is
        # withheld: say which table and file instead, if that is the cause
        _require_plan_files(engine, plan, exc)
        raise


def _execute_on_spark(engine: GovernedEngine, attempt: Attempt, plan: Plan) -> pa.Table:
    """The verified plan on Spark (:mod:`meshsim.engines.spark`), over the same snapshots."""
    from meshsim.engines.spark import run_plan

    if plan.wrapper:
        raise QueryError(
            f"{plan.wrapper} runs on DuckDB only (it inspects DuckDB's own plan or result)",
            consumer=attempt.consumer,
            hint="run it with --engine duckdb",
        )
    pins = sorted({(t.ref, t.version) for t in plan.tables} | set(plan.lookups.items()))
    limits = engine.limits
    return run_plan(
        plan,
        [engine.planner.snapshot(ref, version) for ref, version in pins],
        consumer=attempt.consumer,
        timeout_s=attempt.time_left,
        max_rows=limits.max_result_rows,
        max_bytes=limits.max_result_bytes,
    )


#: engine failures that a damaged data page can cause (DuckDB does not always name the file)
_DECODING_FAILURES = frozenset({"InvalidInputException", "IOException", "Error"})


def _require_plan_files(engine: GovernedEngine, plan: Plan, failure: EngineFailure) -> None:
    """Raise a StorageError naming the table and file if a data file of the plan is damaged:
    missing, truncated or without its footer, or with pages that cannot be decoded (the file
    DuckDB named, or found by decoding the plan's files when it named none)."""
    from meshsim.storage.files import (
        FileProblem,
        damaged_files_error,
        require_files,
        undecodable_files,
    )

    pins = sorted({(t.ref, t.version) for t in plan.tables} | set(plan.lookups.items()))
    snapshots = [(ref, version, engine.planner.snapshot(ref, version)) for ref, version in pins]
    for _, _, snapshot in snapshots:
        require_files(snapshot)
    for ref, version, snapshot in snapshots:
        if failure.file and any(f.path == failure.file for f in snapshot.files):
            problem = FileProblem(ref, failure.file, "has data pages that cannot be decoded")
            raise damaged_files_error(ref, version, [problem])
    if failure.file or failure.kind not in _DECODING_FAILURES:
        return
    for ref, version, snapshot in snapshots:
        problems = undecodable_files(snapshot)
        if problems:
            raise damaged_files_error(ref, version, problems)


PLAN_RULES: tuple[Rule, ...] = (
    Rule("parse", parse),
    Rule("statement", statement),
    Rule("validate", validate),
    Rule("name", name),
    Rule("resolve", resolve),
    Rule("authorise", authorise),
    Rule("bind", bind),
    Rule("verify-plan", verify_plan),
)
EXECUTE = Rule("execute", execute)
RULES: tuple[Rule, ...] = (*PLAN_RULES, EXECUTE)


def run_rules(engine: GovernedEngine, attempt: Attempt, rules: tuple[Rule, ...]) -> Attempt:
    """Apply ``rules`` in order, timing each, checking the deadline between them."""
    for rule in rules:
        attempt.check_deadline()
        began = time.perf_counter()
        try:
            rule.apply(engine, attempt)
        except RecursionError:
            raise QueryError(
                f"the query is nested too deeply for meshsim's {rule.name} rule; simplify it "
                f"(at most {engine.bounds.max_nesting} levels of parentheses, fewer for deeply "
                f"nested subqueries)",
                consumer=attempt.consumer,
            ) from None
        finally:
            attempt.timings[rule.name] = time.perf_counter() - began
    attempt.check_deadline()
    return attempt


def audit_decision(error: BaseException | None) -> Decision:
    """How an attempt is audited: ``allowed`` (no error), ``refused`` (meshsim's rules said
    no: invalid or disallowed SQL, a denied table or column, a plan that scans what was not
    bound) or ``error`` (the query was acceptable but could not be answered: the engine
    failed, timed out or the result passed a limit; a policy could not be compiled; storage
    failed; an internal error)."""
    from meshsim.engine import EngineFailure, QueryTimeout, ResultTooLarge

    if error is None:
        return "allowed"
    if isinstance(error, EngineFailure | QueryTimeout | ResultTooLarge):
        return "error"
    if isinstance(error, AccessDenied | QueryError):
        return "refused"
    return "error"


def reason_of(error: BaseException) -> str:
    """The audit record's reason: meshsim's own message, or only the class of anything else."""
    if isinstance(error, MeshsimError):
        return error.message
    if isinstance(error, KeyboardInterrupt):
        return "the query was cancelled"
    return f"internal error ({type(error).__name__})"


def stage_timings(attempt: Attempt) -> dict[str, Any]:
    """Milliseconds per rule, for the benchmarks' stage report."""
    return {name: seconds * 1000.0 for name, seconds in attempt.timings.items()}
