"""Verified plans kept in the workspace, so that a new session's first run of a text skips
planning (the engine's own plan cache, :mod:`meshsim.query.cache`, dies with its engine).

An entry is found by the meshsim code and the versions of sqlglot and DuckDB, the spec
files' stamp (of what the engine had read when it was made: mesh.yaml, as a spec is loaded
lazily), the consumer, the query bounds and the text. It holds the status of the spec files
of every domain whose tables it read, looked up or asked the serving gate for (a product
file's edit can change planning without changing any governed scan: a declared column
changes what ``*`` expands to), and the skeleton (the
consumer's query as bound, each table a placeholder), which table and scan kind each
placeholder reads, the table versions the plan was bound to and what it depends on of the
consumer's policies (:mod:`meshsim.query.dependencies`: the access to each table it asked
for, or the fingerprint of all the policies for a plan of the whole view). Loading it
*remakes* every governed scan with the current planner (its access now, its policies now,
the published snapshot now) and accepts the plan only when

- the spec files of each of those domains are as they were when it was stored,
- what it depends on of the policies still holds (a change to another table's access
  leaves it in use), every table is still at its bound version (as the engine's own
  cache checks), and the
  serving gate (:mod:`meshsim.contracts.live`) still lets through every table it did when
  the plan was made (a listing such as SHOW TABLES asks it for each table it lists),
- each remade scan is the one the plan was verified with (same SQL), and the whole
  statement is the one verified (same SQL, by digest),
- the file is authentic: it carries an HMAC under a key derived from the mesh key (who
  cannot read the key cannot write a plan that is run), and its name is the HMAC of its key.

Anything else is a miss and the text is planned anew; a write that fails (a read-only
workspace, a full disk) leaves the query unaffected. Time-travel reads are not stored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import astuple, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, ValidationError

from meshsim.files import replace_file
from meshsim.query.dependencies import PlanDependencies, still_hold

if TYPE_CHECKING:
    from meshsim.query.pipeline import Attempt
    from meshsim.query.rewrite import Plan, Planner, TablePlan
    from meshsim.query.scans import GovernedScan
    from meshsim.query.validate import QueryBounds

#: the store's folder in the workspace's governance account (beside the mesh key)
PLAN_FOLDER = "plans"
#: entries one workspace keeps (the oldest are removed past it)
MAX_PLANS = 2048
#: a plan file larger than this is not read (a plan is a query's text and a few names)
MAX_PLAN_BYTES = 4 * 1024 * 1024
_KEY_LABEL = b"meshsim plan store v1"


class StoredScan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    placeholder: str
    table: str
    gated: bool
    sql_digest: str


class StoredTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    ref: str
    version: int
    columns: tuple[str, ...]


class StoredPlan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    key: str  # the entry's key digest: a file copied under another name is refused
    skeleton: str
    scans: tuple[StoredScan, ...]
    tables: tuple[StoredTable, ...]
    ctes: tuple[str, ...]
    bound: dict[str, int]
    lookups: dict[str, int]
    series: bool
    wrapper: str
    sql_digest: str
    served: tuple[str, ...]  # the tables the serving gate let through (a listing's too)
    fingerprint: str  # of the policies it was made under
    #: (table, access digest) of each table access planning asked for; None: the whole view
    accesses: tuple[tuple[str, str], ...] | None
    attributes: str  # the consumer's attributes' digest
    #: (domain, stamp of its spec files) of every domain whose tables the plan read, looked
    #: up or asked the serving gate for
    domains: tuple[tuple[str, str], ...]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _sql_digest(sql: str, nonce: str) -> str:
    """The digest of governed SQL made by an engine whose nonce is ``nonce``: the nonce left
    out of meshsim's reserved names (a key set's, :mod:`meshsim.query.keysets`), whose rest is
    a hash of what they hold; consumer text cannot contain the reserved prefix."""
    from meshsim.query.rewrite import SCAN_MARK

    return _digest(sql.replace(f"{SCAN_MARK}{nonce}_", f"{SCAN_MARK}_"))


_CODE_STAMP: list[str] = []


def code_stamp() -> str:
    """The meshsim code (name, size and modification time of every module) and the versions
    of the libraries that parse and bind: a plan made by other code is never served. Once
    per process."""
    if not _CODE_STAMP:
        import duckdb
        import sqlglot

        import meshsim

        root = Path(meshsim.__file__).parent
        parts = [f"duckdb {duckdb.__version__}", f"sqlglot {sqlglot.__version__}"]
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                if name.endswith(".py"):
                    stat = os.stat(os.path.join(folder, name))
                    relative = os.path.relpath(os.path.join(folder, name), root)
                    parts.append(f"{relative}:{stat.st_size}:{stat.st_mtime_ns}")
        _CODE_STAMP.append(_digest("\n".join(parts)))
    return _CODE_STAMP[0]


class PlanStore:
    """The verified plans of one workspace's engine, in ``folder`` (made owner-only)."""

    def __init__(
        self,
        folder: Path,
        *,
        mesh_key: bytes,
        spec_stamp: str,
        domain_stamp: Callable[[str], str | None],
    ) -> None:
        self.folder = folder
        #: the stamp of the spec files the engine's spec was loaded from (name, size and
        #: modification time of each: what tells the mesh to reload it)
        self.spec_stamp = spec_stamp
        #: a domain's name -> the stamp of the spec files the engine's spec read of it
        #: (:meth:`meshsim.spec.watch.SpecFiles.domain_stamp`), None when it read none
        self.domain_stamp = domain_stamp
        self._key = hmac.new(bytes(mesh_key), _KEY_LABEL, hashlib.sha256).digest()

    def prepare(self) -> None:
        """What the first lookup would do once: the code stamp."""
        code_stamp()

    def _mac(self, data: bytes) -> str:
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def entry_key(self, attempt: Attempt, text: str, bounds: QueryBounds) -> str:
        material = [
            code_stamp(),
            self.spec_stamp,
            attempt.consumer,
            list(astuple(bounds)),
            text,
        ]
        return self._mac(json.dumps(material).encode())

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    # -- reading -------------------------------------------------------------------------------

    def load(
        self,
        key: str,
        attempt: Attempt,
        planner: Planner,
        versions: Callable[[tuple[tuple[str, int], ...]], tuple[tuple[str, int], ...]],
    ) -> Plan | None:
        """The stored plan of ``key`` remade with ``planner`` now, or None (a miss);
        ``versions`` gives the version each of the plan's tables is read at now."""
        stored = self._read(key)
        if stored is None:
            return None
        pins = tuple(sorted(stored.bound.items()))
        if versions(pins) != pins:
            return None
        refs = _spec_refs(stored.bound, stored.served, stored.tables, stored.accesses)
        if self._domains(planner, refs) != stored.domains:
            return None  # a product or domain file changed since (or a domain is gone)
        dependencies = PlanDependencies(stored.fingerprint, stored.accesses, stored.attributes)
        if not still_hold(dependencies, planner, attempt):
            return None
        # the same plan under the policies now (and still under the ones it was made under)
        return _remake(
            stored, attempt, planner, replace(dependencies, fingerprint=attempt.fingerprint)
        )

    def _read(self, key: str) -> StoredPlan | None:
        try:
            fd = os.open(self._path(key), os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            data = os.read(fd, MAX_PLAN_BYTES + 1)
        except OSError:
            return None
        finally:
            os.close(fd)
        mac, _, body = data.partition(b"\n")
        if len(data) > MAX_PLAN_BYTES or not hmac.compare_digest(mac, self._mac(body).encode()):
            return None
        try:
            stored = StoredPlan.model_validate_json(body)
        except ValidationError:
            return None
        return stored if hmac.compare_digest(stored.key, key) else None

    # -- writing -------------------------------------------------------------------------------

    def _domains(self, planner: Planner, refs: set[str]) -> tuple[tuple[str, str], ...] | None:
        """(domain, stamp) of the domains of ``refs``, each read by the planner's spec first
        (as planning read it); None when one has no stamp."""
        for ref in sorted(refs):
            planner.spec.table(ref)
        stamps = []
        for domain in sorted({ref.split(".", 1)[0] for ref in refs}):
            stamp = self.domain_stamp(domain)
            if stamp is None:
                return None
            stamps.append((domain, stamp))
        return tuple(stamps)

    def save(self, key: str, attempt: Attempt, planner: Planner, plan: Plan) -> None:
        """Keep ``plan`` (verified) under ``key``, if it can be remade: every table read at
        its published version, and each placeholder's scan the one the planner makes."""
        dependencies = plan.dependencies
        if dependencies is None:
            return
        refs = _spec_refs(plan.bound, plan.served, plan.tables, dependencies.accesses)
        domains = self._domains(planner, refs)
        if domains is None:
            return
        stored = _storable(key, attempt, planner, plan, domains)
        if stored is None:
            return
        body = stored.model_dump_json().encode()
        data = self._mac(body).encode() + b"\n" + body
        path = self._path(key)
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            replace_file(path, data, mode=0o600)
            self._prune()
        except OSError:  # a cache: the query does not depend on it being written
            pass

    def _prune(self) -> None:
        entries = [e for e in os.scandir(self.folder) if e.name.endswith(".json")]
        if len(entries) <= MAX_PLANS:
            return
        entries.sort(key=lambda e: e.stat().st_mtime_ns)
        for entry in entries[: len(entries) - MAX_PLANS * 9 // 10]:
            Path(entry.path).unlink(missing_ok=True)


def _spec_refs(
    bound: Iterable[str],
    served: Iterable[str],
    tables: Iterable[StoredTable | TablePlan],
    accesses: Iterable[tuple[str, str]] | None,
) -> set[str]:
    """The tables whose spec a plan read: bound, let through, read, or asked for access."""
    return {*bound, *served, *(t.ref for t in tables), *(ref for ref, _ in accesses or ())}


def _storable(
    key: str,
    attempt: Attempt,
    planner: Planner,
    plan: Plan,
    domains: tuple[tuple[str, str], ...],
) -> StoredPlan | None:
    resolved, dependencies = attempt.resolved, plan.dependencies
    if resolved is None or dependencies is None or len(resolved.uses) != len(plan.scans):
        return None
    if any(use.version is not None or use.timestamp is not None for use in resolved.uses):
        return None
    assert attempt.policies is not None
    access = planner.access_for(attempt.consumer, attempt.fingerprint, attempt.policies)
    scans = []
    # bind makes one placeholder per table use, in the order of the uses
    for (placeholder, scan), use in zip(plan.scans.items(), resolved.uses, strict=True):
        table_access = access(use.ref)
        gated = next(
            (
                g
                for g in (False, True)
                if planner.current_scan(
                    attempt.consumer, attempt.fingerprint, table_access, gated=g
                ).sql
                == scan.sql
            ),
            None,
        )
        if gated is None:
            return None
        scans.append(
            StoredScan(
                placeholder=placeholder,
                table=use.ref,
                gated=gated,
                sql_digest=_sql_digest(scan.sql, planner.nonce),
            )
        )
    return StoredPlan(
        key=key,
        skeleton=plan.skeleton,
        scans=tuple(scans),
        tables=tuple(
            StoredTable(ref=t.ref, version=t.version, columns=t.columns) for t in plan.tables
        ),
        ctes=tuple(sorted(plan.ctes)),
        bound=dict(plan.bound),
        lookups=dict(plan.lookups),
        series=plan.series,
        wrapper=plan.wrapper,
        sql_digest=_sql_digest(plan.sql, planner.nonce),
        served=tuple(sorted(plan.served)),
        fingerprint=dependencies.fingerprint,
        accesses=dependencies.accesses,
        attributes=dependencies.attributes,
        domains=domains,
    )


def _remake(
    stored: StoredPlan, attempt: Attempt, planner: Planner, dependencies: PlanDependencies
) -> Plan | None:
    import sqlglot
    from sqlglot import exp

    from meshsim.query.rewrite import Plan, TablePlan

    assert attempt.policies is not None
    for ref in stored.served:  # raises as planning would: a product withheld since
        planner.require_served(ref)
    access = planner.access_for(attempt.consumer, attempt.fingerprint, attempt.policies)
    # the serving gate and the grant of every table read, now
    accesses = {ref: access(ref) for ref in sorted({s.table for s in stored.scans})}
    if not all(a.granted for a in accesses.values()) or any(
        t.ref not in accesses for t in stored.tables
    ):
        return None
    made: dict[tuple[str, bool], GovernedScan] = {}
    scans = {}
    sql = stored.skeleton
    files: set[str] = set()
    for stored_scan in stored.scans:
        kind = (stored_scan.table, stored_scan.gated)
        if kind not in made:
            made[kind] = planner.current_scan(
                attempt.consumer,
                attempt.fingerprint,
                accesses[stored_scan.table],
                gated=stored_scan.gated,
            )
        scan = made[kind]
        if not hmac.compare_digest(_sql_digest(scan.sql, planner.nonce), stored_scan.sql_digest):
            return None
        token = f'"{stored_scan.placeholder}"'
        if sql.count(token) != 1:
            return None
        sql = sql.replace(token, f"({scan.sql})")
        scans[stored_scan.placeholder] = scan
        files |= scan.files
    if not hmac.compare_digest(_sql_digest(sql, planner.nonce), stored.sql_digest):
        return None
    tables = [TablePlan(t.ref, t.version, accesses[t.ref], t.columns) for t in stored.tables]
    tree = sqlglot.parse_one(stored.skeleton, read="duckdb")  # for an engine that needs it
    if not isinstance(tree, exp.Query):
        return None
    return Plan(
        sql,
        tree,
        tables,
        frozenset(files),
        frozenset(stored.ctes),
        dict(stored.lookups),
        stored.skeleton,
        scans,
        dict(stored.bound),
        stored.series,
        stored.wrapper,
        frozenset(stored.served),
        dependencies,
    )
