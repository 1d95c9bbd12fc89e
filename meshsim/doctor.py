"""``meshsim doctor``: check a workspace file by file, say what is wrong and how to fix it,
and with ``repair`` fix what can be fixed without losing anything.

Checks, in order (each a :class:`Check`): the workspace path, ``workspace.json``, the mesh
folder it was built from, ``governance/mesh.key``, the catalog (present, an SQLite database,
its schema version, ``PRAGMA integrity_check``), the catalog backup and audit journal, then
every built table (its Delta log loads; every data file the current version names is there,
of the logged size, with a readable Parquet footer) and the Delta export of the audit log.

Repairs never delete: a damaged file is moved aside as ``<name>.damaged-<time>``. The catalog
is restored from its backup and audit journal (:mod:`meshsim.catalog.backup`); damaged
generated tables are rewritten by a build; a damaged audit export is dropped (it is
re-exported when next read); a damaged mesh key is replaced (hashed values change, and the
report says so). A damaged ``workspace.json`` is moved aside, with the ``state`` folder of
the shards it names (under the same time, so the copy names its shards still); the next
``meshsim build`` writes them again.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from meshsim.errors import MeshsimError
from meshsim.workspace import Workspace, WorkspaceState

if TYPE_CHECKING:
    from meshsim.catalog.restore import Restored
    from meshsim.spec.loader import MeshSpec

Status = Literal["ok", "warning", "error"]


@dataclass(frozen=True)
class Check:
    """One thing checked: what, how it is, and what to do (or what ``repair`` did)."""

    name: str
    status: Status
    detail: str
    fix: str = ""
    repaired: str = ""


@dataclass(frozen=True)
class DoctorReport:
    workspace: Path
    checks: tuple[Check, ...]
    repairs: tuple[str, ...] = field(default=())

    @property
    def healthy(self) -> bool:
        return all(c.status != "error" for c in self.checks)


def _aside(path: Path, stamp: str | None = None) -> Path:
    stamp = stamp or datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    os.replace(path, target)
    return target


class _Doctor:
    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace
        self.checks: list[Check] = []
        self.state: WorkspaceState | None = None
        self.spec: MeshSpec | None = None

    def add(self, name: str, status: Status, detail: str, fix: str = "") -> Check:
        check = Check(name, status, detail, fix)
        self.checks.append(check)
        return check

    # -- checks ---------------------------------------------------------------------------

    def run(self) -> list[Check]:
        try:
            self.ws.check_path()
        except MeshsimError as exc:
            self.add(
                "workspace path", "error", exc.message, f"move the workspace: {exc.hint or ''}"
            )
            return self.checks
        if not self.ws.root.is_dir():
            self.add(
                "workspace", "error", f"'{self.ws.root}' does not exist", self._build_command()
            )
            return self.checks
        steps = (
            ("workspace.json", self._state),
            ("mesh", self._mesh),
            ("mesh.key", self._mesh_key),
            ("catalog", self._catalog),
            ("catalog backup", self._backup),
            ("catalog history", self._history),
            ("tables", self._tables),
            ("audit export", self._audit_export),
        )
        for name, step in steps:
            try:
                step()
            except MeshsimError as exc:  # a file the check itself cannot read
                self.add(name, "error", exc.message, exc.hint or "")
            except OSError as exc:
                where = f"'{exc.filename}'" if exc.filename else "a file"
                self.add(
                    name,
                    "error",
                    f"{where} cannot be read ({(exc.strerror or str(exc)).lower()})",
                    "fix the permissions: the user running meshsim must read and write the "
                    "workspace",
                )
        return self.checks

    def _build_command(self) -> str:
        mesh = self.state.mesh_dir if self.state else "DIR"
        scale = f"{self.state.scale:g}" if self.state else "SF"
        return f"run 'meshsim build --mesh {mesh} --workspace {self.ws.root} --scale {scale}'"

    def _state(self) -> None:
        name = "workspace.json"
        if not self.ws.state_file.exists():
            self.add(name, "error", "missing: the workspace was never built", self._build_command())
            return
        try:
            self.state = self.ws.read_state()
        except MeshsimError as exc:
            self.add(
                name,
                "error",
                exc.message,
                "--repair moves it aside; then " + self._build_command() + " to write it again",
            )
            return
        self.add(
            name,
            "ok",
            f"built from '{self.state.mesh_dir}' at scale {self.state.scale:g}, "
            f"{len(self.state.tables)} table(s)",
        )

    def _mesh(self) -> None:
        if self.state is None:
            return
        from meshsim.spec.loader import load_mesh

        try:
            self.spec = load_mesh(self.state.mesh_dir)
        except MeshsimError as exc:
            self.add(
                "mesh",
                "error",
                f"the mesh '{self.state.mesh_dir}' the workspace was built from cannot be "
                f"loaded: {exc.message.splitlines()[0]}",
                f"restore it, or rebuild from another: 'meshsim build --mesh DIR --workspace "
                f"{self.ws.root}'",
            )
            return
        self.add("mesh", "ok", f"'{self.spec.name}' from '{self.state.mesh_dir}'")

    def _mesh_key(self) -> None:
        try:
            self.ws.mesh_key()
        except MeshsimError as exc:
            self.add(
                "mesh.key",
                "error",
                exc.message,
                "--repair creates a new key (moving a damaged one aside): masked values hashed "
                "with the old key will differ from new ones",
            )
            return
        self.add("mesh.key", "ok", "64 hexadecimal digits")

    def _catalog(self) -> None:
        from meshsim.catalog.store import SCHEMA_VERSION, Store, catalog_errors

        name = "catalog"
        if self.state is not None and self.ws.first_build_unfinished():
            error = self.ws.unfinished_build_error()
            self.add("build", "error", error.message, error.hint or "")
            return
        store = Store(self.ws.governance, create=False, catch_up_backup=False)
        try:
            store.check()
            with catalog_errors(store.path), store.read() as con:
                integrity = [r[0] for r in con.execute("PRAGMA integrity_check(5)")]
                version = con.execute("PRAGMA user_version").fetchone()[0]
                counts = {
                    table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                    for table in ("products", "requests", "audit")
                }
        except MeshsimError as exc:
            self.add(name, "error", exc.message, "--repair restores it from its backup")
            return
        finally:
            store.close()
        if integrity != ["ok"]:
            self.add(
                name,
                "error",
                f"'{store.path}' fails its integrity check: {'; '.join(integrity)}",
                "--repair restores it from its backup",
            )
            return
        if self.state is not None and self.state.catalog_created_at is None:
            self.add(
                "catalog record",
                "warning",
                "workspace.json does not record that the catalog was created (built by an older "
                "meshsim), so a lost catalog would not be told from a new workspace",
                "--repair records it",
            )
        self.add(
            name,
            "ok",
            f"schema version {version} (this meshsim: {SCHEMA_VERSION}), {counts['products']} "
            f"product(s), {counts['requests']} request(s), {counts['audit']} audit record(s)",
        )

    def _backup(self) -> None:
        from meshsim.catalog.backup import (
            backup_path,
            journal_path,
            open_backup,
            read_journal,
            stale_copies,
        )

        if any(c.name == "build" for c in self.checks):
            return  # no catalog yet, so nothing to back up: the build check says what to do
        backup = backup_path(self.ws.governance)
        if not backup.is_file():
            self.add(
                "catalog backup",
                "warning",
                f"'{backup}' does not exist yet, so a lost catalog could not be restored",
                "--repair writes it now (it is brought up to date after every change)",
            )
        else:
            try:
                con = open_backup(backup)
                try:
                    integrity = con.execute("PRAGMA integrity_check(1)").fetchone()[0]
                finally:
                    con.close()
            except sqlite3.Error as exc:
                integrity = str(exc)
            if integrity != "ok":
                self.add(
                    "catalog backup",
                    "error",
                    f"'{backup}' is damaged ({integrity})",
                    "--repair writes it again from the catalog",
                )
            else:
                self._backup_revision(backup)
        stale = stale_copies(self.ws.governance)
        if stale:
            self.add(
                "catalog backup copies",
                "warning",
                f"{len(stale)} temporary copy(ies) of the backup left by a process stopped "
                f"while writing one: {', '.join(p.name for p in stale)}",
                "--repair removes them (the backup itself is checked above)",
            )
        records, bad = read_journal(self.ws.governance)
        journal = journal_path(self.ws.governance)
        if bad:
            self.add(
                "audit journal",
                "warning",
                f"'{journal}': {bad} line(s) cannot be read (cut short by a crash or a full "
                f"disk); {len(records)} record(s) can",
                "nothing to do: only those lines are lost, and only if the catalog is",
            )
        else:
            self.add("audit journal", "ok", f"{len(records)} query record(s) in '{journal}'")

    def _backup_revision(self, backup: Path) -> None:
        """A backup behind a healthy catalog lacks its last change(s): a process stopped
        between a change's commit and its backup (the next command brings it up to date)."""
        from meshsim.catalog.backup import backup_lock, stored_revision
        from meshsim.catalog.store import DB_FILE
        from meshsim.locks import LockTimeout, exclusive

        healthy = any(c.name == "catalog" and c.status == "ok" for c in self.checks)

        def revisions() -> tuple[int | None, int | None]:
            current = stored_revision(self.ws.governance / DB_FILE) if healthy else None
            return stored_revision(backup), current

        copied, current = revisions()
        if copied is not None and current is not None and copied < current:
            # a change committed a moment ago writes its backup under the lock: wait for it
            with (
                suppress(LockTimeout, OSError),
                exclusive(backup_lock(self.ws.governance), bounded=True),
            ):
                copied, current = revisions()
        if copied is not None and current is not None and copied < current:
            newer = f"{copied + 1}..{current}" if current > copied + 1 else f"{current}"
            self.add(
                "catalog backup",
                "error",
                f"'{backup}' is behind the catalog (revision {copied}, the catalog's "
                f"{current}): the change(s) of revision {newer} were saved but not backed up "
                f"(a process stopped between the two?), so a lost catalog would lose them",
                "--repair brings it up to date from the catalog (so does the next command)",
            )
            return
        self.add("catalog backup", "ok", f"'{backup}' (revision {copied})")

    def _history(self) -> None:
        """The catalog against its backup and journal: behind them, it lost committed work
        (a lost write-ahead log); the journal lacking what only the catalog holds, a lost
        catalog would lose it."""
        from meshsim.catalog.backup import backup_path, journal_path, read_journal
        from meshsim.catalog.store import DB_FILE

        if not any(c.name == "catalog" and c.status == "ok" for c in self.checks):
            return
        governance = self.ws.governance
        journal = journal_path(governance)
        if journal.is_symlink() or (journal.exists() and not journal.is_file()):
            self.add(
                "audit journal",
                "error",
                f"'{journal}' is not a regular file (a symlink, device or pipe): every query's "
                f"audit line written there is lost",
                "--repair moves it aside, starts a new journal and writes the backup again",
            )
            return
        catalog = _ids(governance / DB_FILE)
        backup = _ids(backup_path(governance)) if backup_path(governance).is_file() else None
        records, _ = read_journal(governance)
        missing = sorted(set(records) - catalog["audit"])
        if missing:
            listed = ", ".join(str(i) for i in missing[:5]) + (" ..." if len(missing) > 5 else "")
            if missing[0] > max(catalog["audit"], default=0):
                # newer than all the catalog holds: a query stopped between its journal line
                # and its commit looks the same as the last records of a lost WAL
                self.add(
                    "catalog history",
                    "warning",
                    f"the catalog lacks the last {len(missing)} query record(s) of its audit "
                    f"journal (ids {listed}): most likely not committed (a query stopped after "
                    f"its journal line, before its commit), or lost with '{DB_FILE}-wal'",
                    "--repair adds them from the journal, so every query attempted is audited",
                )
            else:
                self.add(
                    "catalog history",
                    "error",
                    f"the catalog lacks {len(missing)} query record(s) its audit journal holds "
                    f"(ids {listed}), older than records it has: committed records were lost "
                    f"(a lost or damaged '{DB_FILE}-wal'?)",
                    "--repair adds them back from the journal",
                )
        elif backup is not None and backup["max_request"] > catalog["max_request"]:
            self.add(
                "catalog history",
                "error",
                f"the catalog is behind its backup: request {backup['max_request']} is only in "
                f"the backup",
                "--repair restores the catalog from its backup",
            )
        unjournaled = [
            i
            for i in catalog["queries"]
            if i > (backup or {}).get("max_audit", 0) and i not in records
        ]
        if unjournaled:
            self.add(
                "audit journal",
                "error",
                f"'{journal}' lacks {len(unjournaled)} query record(s) that only the catalog "
                f"holds (not in its backup either): a lost catalog would lose them",
                "--repair writes the backup again now, so they are kept there",
            )

    def _tables(self) -> None:
        from meshsim.storage.files import check_files
        from meshsim.storage.log import latest_version
        from meshsim.storage.snapshot import load_snapshot

        if self.state is None:
            return
        for ref, record in sorted(self.state.tables.items()):
            location = record.location if record.external else self._table_path(ref)
            fix = (
                "restore the table's files where it is registered; meshsim cannot regenerate "
                "a registered table"
                if record.external
                else "--repair rewrites it (a 'meshsim build' at the workspace's scale)"
            )
            try:
                # the published version is what queries read; a newer one is unpublished
                snapshot = load_snapshot(location, table=ref, version=record.version)
                latest = latest_version(location, table=ref)
            except MeshsimError as exc:
                self.add(f"table {ref}", "error", exc.message, fix)
                continue
            problems = check_files(snapshot)
            if problems:
                listed = "; ".join(str(p) for p in problems[:3])
                more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
                self.add(
                    f"table {ref}",
                    "error",
                    f"version {snapshot.version}: {len(problems)} damaged data file(s): "
                    f"{listed}{more}",
                    fix,
                )
                continue
            unpublished = ""
            if latest > snapshot.version:
                newer = (
                    f"{snapshot.version + 1}..{latest}" if latest > snapshot.version + 1 else latest
                )
                unpublished = (
                    f"; newer version(s) {newer} committed by another engine, not published "
                    f"yet (no query reads them; the next 'meshsim build' publishes the latest)"
                    if record.external
                    else f"; newer version(s) {newer} not published (an interrupted build or "
                    f"write: no query reads them, the next build or write replaces them)"
                )
            self.add(
                f"table {ref}",
                "ok",
                f"version {snapshot.version} published, {len(snapshot.files)} data file(s) "
                f"readable{unpublished}",
            )
        if self.spec is not None:
            missing = [t.ref for t in self.spec.tables() if t.ref not in self.state.tables]
            if missing:
                self.add(
                    "tables",
                    "warning",
                    f"in the mesh but not built: {', '.join(missing)}",
                    self._build_command(),
                )

    def _table_path(self, ref: str) -> str:
        domain, name = ref.split(".", 1)
        return str(self.ws.table_path(domain, name))

    def _audit_export(self) -> None:
        from meshsim.storage import delta
        from meshsim.storage.files import check_files
        from meshsim.storage.snapshot import load_snapshot
        from meshsim.system import AUDIT_TABLE

        location = self.ws.governance / "system" / "audit"
        if not location.exists():
            self.add("audit export", "ok", "not exported yet: it is when first queried")
            return
        try:
            if not delta.exists(location):
                raise MeshsimError(f"'{location}' has no Delta log")
            problems = check_files(load_snapshot(location, table=AUDIT_TABLE))
            if problems:
                raise MeshsimError("; ".join(str(p) for p in problems[:3]))
        except MeshsimError as exc:
            self.add(
                "audit export",
                "error",
                f"the Delta export of the audit log is damaged: {exc.message}",
                "--repair drops it; it is exported again from the catalog when next queried",
            )
            return
        self.add("audit export", "ok", f"'{location}'")


def _ids(db: Path) -> dict:
    """What the history checks compare: request and audit ids (query records apart)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        audit = {r[0]: r[1] for r in con.execute("SELECT id, kind FROM audit")}
        max_request = con.execute("SELECT coalesce(max(id), 0) FROM requests").fetchone()[0]
    except sqlite3.Error:
        return {"audit": set(), "queries": [], "max_audit": 0, "max_request": 0}
    finally:
        con.close()
    return {
        "audit": set(audit),
        "queries": sorted(i for i, kind in audit.items() if kind == "query"),
        "max_audit": max(audit, default=0),
        "max_request": max_request,
    }


def diagnose(workspace: str | Path | None = None) -> DoctorReport:
    """Check ``workspace`` and say what is wrong; changes nothing."""
    ws = Workspace.at(workspace)
    return DoctorReport(ws.root, tuple(_Doctor(ws).run()))


def repair(workspace: str | Path | None = None) -> DoctorReport:
    """Diagnose, fix what can be fixed, then diagnose again. The report's checks are the
    final state; each one that was repaired says how, and ``repairs`` lists every action."""
    ws = Workspace.at(workspace)
    first = _Doctor(ws).run()
    failing = {c.name for c in first if c.status != "ok"}
    repairs: dict[str, str] = {}
    if "workspace.json" in failing and ws.state_file.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        repairs["workspace.json"] = f"moved aside to '{_aside(ws.state_file, stamp)}'"
        if os.path.lexists(ws.state_folder):  # the shards it names go with it, kept whole
            repairs["workspace.json"] += f", its shards to '{_aside(ws.state_folder, stamp)}'"
    if "mesh.key" in failing:
        if os.path.lexists(ws.mesh_key_file):
            _aside(ws.mesh_key_file)
        ws.mesh_key(create=True)
        repairs["mesh.key"] = "created a new key; hashed values differ from those made before"
    if "catalog record" in failing and "workspace.json" not in repairs:
        from meshsim.pins import publishing

        now = datetime.now(UTC)
        with publishing(ws):  # read and written again: no publish lost between
            ws.write_state(ws.read_state().model_copy(update={"catalog_created_at": now}))
        repairs["catalog record"] = "recorded in workspace.json"
    if "audit journal" in failing:
        from meshsim.catalog.backup import journal_path

        journal = journal_path(ws.governance)
        if journal.is_symlink() or (journal.exists() and not journal.is_file()):
            repairs["audit journal"] = f"moved aside to '{_aside(journal)}'"
        if "catalog" not in failing and "catalog history" not in failing:
            repairs["audit journal"] = (
                repairs.get("audit journal", "") + "; backup " + _write_backup(ws)
            ).lstrip("; ")
    losses: list[Check] = []
    if "catalog" in failing or "catalog history" in failing:
        try:
            name = "catalog" if "catalog" in failing else "catalog history"
            repairs[name], losses = _repair_catalog(ws)
        except MeshsimError as exc:
            repairs[name] = f"could not be restored: {exc.message}" + (
                f" (next: {exc.hint})" if exc.hint else ""
            )
    if "catalog backup" in failing and "catalog" not in repairs:
        repairs["catalog backup"] = _write_backup(ws)
    if "catalog backup copies" in failing:
        from meshsim.catalog.backup import stale_copies

        removed = [p.name for p in stale_copies(ws.governance)]
        for path in stale_copies(ws.governance):
            path.unlink(missing_ok=True)
        repairs["catalog backup copies"] = f"removed {', '.join(removed)}"
    if "audit export" in failing:
        location = ws.governance / "system" / "audit"
        shutil.rmtree(location, ignore_errors=True)
        location.with_suffix(".exported").unlink(missing_ok=True)
        repairs["audit export"] = "dropped; it is exported again when next queried"
    damaged = sorted(
        c.name.removeprefix("table ")
        for c in first
        if c.name.startswith("table ") and c.status == "error" and "rewrites it" in c.fix
    )
    if damaged and ws.exists:
        repairs.update(_rebuild(ws, damaged))
    final = _Doctor(ws).run()
    final += losses
    checks = tuple(replace(c, repaired=repairs.get(c.name, "")) for c in final)
    return DoctorReport(ws.root, checks, tuple(f"{k}: {v}" for k, v in repairs.items()))


def _repair_catalog(ws: Workspace) -> tuple[str, list[Check]]:
    """Restore the catalog; what was done, and a failing check if revisions may be lost."""
    from meshsim.catalog.restore import restore

    restored = restore(ws.governance)
    if restored.source == "empty":  # what is lost is said in full: everything but queries
        return _restored_text(ws, restored), []
    return _restored_text(ws, restored), _lost_check(restored.lost_revisions)


def _lost_check(lost: tuple[int, int] | None) -> list[Check]:
    if lost is None:
        return []
    first, last = lost
    revisions = f"revision {first}..{last}" if last > first else f"revision {last}"
    return [
        Check(
            "catalog history",
            "error",
            f"the catalog had committed up to revision {last}, but the copy restored ends "
            f"before it: the changes of {revisions} (requests, decisions, publications, "
            f"expiries) may be lost; the audit journal keeps only query records",
            "compare 'meshsim requests' with what was decided and ask again for what is "
            "missing; the restored catalog continues after those revisions",
        )
    ]


def _restored_text(ws: Workspace, restored: Restored) -> str:
    moved = f"; the damaged files are kept as {', '.join(restored.moved_aside)}"
    journal = f", {restored.journal_records} query record(s) added from the audit journal"
    if restored.source == "catalog":
        return f"kept the catalog (it is the newest copy){journal}; its backup written again"
    if restored.source == "backup":
        return f"restored from its backup{journal}" + (moved if restored.moved_aside else "")
    republished = ""
    if ws.exists:
        from meshsim.mesh import Mesh

        try:
            with Mesh.open(ws.root) as mesh:
                mesh.catalog.publish_all()
            republished = " and the products published again from the mesh"
        except MeshsimError as exc:
            republished = f"; the products could not be published again ({exc.message})"
    return (
        f"no backup existed: started an empty catalog{republished}{journal}; requests, "
        f"subscriptions and decisions could not be recovered"
        + (moved if restored.moved_aside else "")
    )


def _write_backup(ws: Workspace) -> str:
    from meshsim.catalog.backup import backup_path, write_backup
    from meshsim.catalog.store import DB_FILE

    db = ws.governance / DB_FILE
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        write_backup(con, db, full=True)  # a repair: never onto a damaged copy
    finally:
        con.close()
    return f"written to '{backup_path(ws.governance)}'"


def _rebuild(ws: Workspace, tables: list[str]) -> dict[str, str]:
    from meshsim.mesh import Mesh

    state = ws.read_state()
    try:
        with Mesh.build(state.mesh_dir, ws.root, scale=state.scale) as mesh:
            assert mesh.last_build is not None  # build() sets it
            actions = {t.ref: t.action for t in mesh.last_build.tables}
    except MeshsimError as exc:
        return {f"table {t}": f"the rebuild failed: {exc.message}" for t in tables}
    return {
        f"table {t}": f"{actions.get(t, 'not rebuilt')} by 'meshsim build' at scale {state.scale:g}"
        for t in tables
    }
