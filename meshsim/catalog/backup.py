"""The catalog's backup, and rebuilding the catalog from it.

Two files in the governance account, beside ``catalog.db``:

- ``catalog-backup.db``: a copy of the catalog (an SQLite database, which SQLite checks like
  the original; an export to another format would need its own reader and schema upgrades),
  brought up to date after every committed change but a query's audit record: publications,
  requests, decisions, expiries. A full copy grows with the catalog (310 ms of a 580 ms
  request at 100,000 requests), so after the first one only the rows changed since the
  backup's revision are copied: the catalog's triggers log the rowid of every changed row
  (``backup_changes``, :mod:`meshsim.catalog.schema`), and one transaction on the backup
  replaces those rows and the revision. SQLite's rollback journal makes that transaction
  atomic: a crash in the middle leaves a hot journal that the next reader of the backup rolls
  back (:func:`open_backup`), never half a copy. A full copy is taken (to a temporary file,
  then renamed over the backup) when there is no backup yet, when its schema differs, when
  the log no longer holds every change since its revision, or when it is damaged. Copies are
  taken one at a time under a lock, each of the state at the moment it starts, so the last
  one written is of the newest state.
- ``audit-journal.jsonl``: every query's audit record as one JSON line, appended in the
  transaction that inserts it. Copying on every query would add a write per query; a line
  costs the same on the first query and the millionth. (The next backed-up change copies
  the query records too.)

``meshsim doctor --repair`` (:func:`restore`) keeps the newest of the catalog and its backup
(by ``meta.revision``, raised by every backed-up change): a damaged catalog, or one behind its
backup (its write-ahead log was lost), is moved aside (never deleted) and the backup copied in
its place; then the journal's records the catalog lacks are added. Without a backup it starts
an empty catalog and replays the journal, and says what could not be recovered.

A catalog behind its backup must not change: a change would reuse the lost ids and its backup
would overwrite the only copy of the lost work. So opening it is refused
(:func:`check_not_behind`) and :func:`write_backup` never replaces a newer backup.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from meshsim.errors import CatalogError
from meshsim.locks import exclusive

BACKUP_FILE = "catalog-backup.db"
JOURNAL_FILE = "audit-journal.jsonl"
_LOCK_FILE = "catalog-backup.lock"


def backup_path(governance: Path) -> Path:
    return governance / BACKUP_FILE


def journal_path(governance: Path) -> Path:
    return governance / JOURNAL_FILE


def repair_hint(governance: Path) -> str:
    return (
        f"run 'meshsim doctor --repair --workspace {governance.parent}' to restore the newer "
        f"state from the backup and the audit journal"
    )


def behind_error(db_path: Path, revision: int, backup_revision: int) -> CatalogError:
    return CatalogError(
        f"the catalog '{db_path}' is older than its backup (revision {revision}, backup "
        f"{backup_revision}): committed changes are missing from it (a lost or damaged "
        f"'{db_path.name}-wal'?); refusing to use it, since a change would lose them for good",
        hint=repair_hint(db_path.parent),
    )


def open_backup(path: Path) -> sqlite3.Connection:
    """A connection to the backup (or any copy) at ``path`` that reads only committed state:
    read-only, waiting for a copy being written; a hot journal left by a copy cut short is
    rolled back first (which needs write access: a read-only connection cannot)."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BACKUP_TIMEOUT_S)
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return con
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorname", "") != "SQLITE_READONLY_ROLLBACK":
            raise
    con = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=BACKUP_TIMEOUT_S)
    con.execute("SELECT count(*) FROM sqlite_master").fetchone()  # rolls the journal back
    return con


BACKUP_TIMEOUT_S = 30.0


def stored_revision(path: Path) -> int | None:
    """``meta.revision`` of the SQLite file at ``path``, or ``None`` if it has none or cannot
    be read (the doctor reports why)."""
    if not path.is_file():
        return None
    try:
        con = open_backup(path)
        try:
            row = con.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    return int(row[0]) if row else None


def check_not_behind(con: sqlite3.Connection, db_path: Path) -> int | None:
    """Refuse a catalog older than its backup (cheap: two revision numbers); returns the
    backup's revision (``None`` without a readable backup)."""
    from meshsim.catalog.store import revision

    newer = stored_revision(backup_path(db_path.parent))
    current = revision(con)
    if newer is not None and newer > current:
        raise behind_error(db_path, current, newer)
    return newer


def forget_copied_changes(con: sqlite3.Connection, backup_revision: int | None) -> None:
    """Drop the change log's rows the backup at ``backup_revision`` holds (in a write
    transaction): the log keeps every change after ``changes_since``."""
    if backup_revision is None:
        return
    con.execute("DELETE FROM backup_changes WHERE revision <= ?", (backup_revision,))
    con.execute(
        "UPDATE meta SET value = max(value, ?) WHERE key = 'changes_since'", (backup_revision,)
    )


def write_backup(con: sqlite3.Connection, db_path: Path, *, full: bool = False) -> None:
    """Bring the backup up to the committed catalog that ``con`` is connected to: its changed
    rows, or a full copy (see the module docstring; always with ``full``), unless the backup
    is newer (then the catalog lost changes, and the backup is their only copy)."""
    from meshsim.catalog.store import catalog_errors

    governance = db_path.parent
    target = backup_path(governance)
    try:
        with exclusive(governance / _LOCK_FILE):
            with catalog_errors(db_path):
                outcome = None if full else _copy_changes(con, target)
                if outcome is None:
                    outcome = _copy_all(con, target)
            copied, existing = outcome
    except (OSError, CatalogError) as exc:
        why = exc.message if isinstance(exc, CatalogError) else exc.strerror
        raise CatalogError(
            f"the change was saved in '{db_path}', but its backup '{target}' could not be "
            f"written ({why})",
            hint="free disk space or fix permissions; the next change writes the backup again",
        ) from exc
    if existing is not None and copied is not None and existing > copied:
        raise CatalogError(
            f"the catalog backup '{target}' (revision {existing}) is newer than the catalog "
            f"'{db_path}' (revision {copied}), so it was not overwritten: the catalog lost "
            f"committed changes",
            hint=repair_hint(governance),
        )


Revisions = tuple[int | None, int | None]  # (the catalog's copied, the backup's before)


def _copy_all(con: sqlite3.Connection, target: Path) -> Revisions:
    """A full copy to a temporary file, renamed over the backup unless that is newer."""
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    dest = sqlite3.connect(tmp)
    try:
        con.backup(dest)
        # one self-contained file, readable even where no WAL index can be made
        dest.execute("PRAGMA journal_mode = DELETE")
        if dest.execute("SELECT 1 FROM sqlite_master WHERE name = 'backup_changes'").fetchone():
            dest.execute("DELETE FROM backup_changes")  # the catalog's log, not the copy's
            dest.commit()
    finally:
        dest.close()
    # reading the backup rolls back a copy of it cut short, if any
    copied, existing = stored_revision(tmp), stored_revision(target)
    if copied is not None and existing is not None and existing > copied:
        tmp.unlink()
    else:
        # a journal left beside a backup that could not be rolled back would be played back
        # onto the new file
        target.with_name(target.name + "-journal").unlink(missing_ok=True)
        os.replace(tmp, target)
    return copied, existing


def _copy_changes(con: sqlite3.Connection, target: Path) -> Revisions | None:
    """Copy the rows changed since the backup's revision into it, in one transaction on it;
    ``None`` when only a full copy will do (no backup, another schema, changes no longer
    logged, a damaged backup). A newer backup is left as it is."""
    if not target.is_file():
        return None
    try:
        # attached read-write: a hot journal of a copy cut short is rolled back on first read
        con.execute("ATTACH DATABASE ? AS backup", (str(target),))
    except sqlite3.DatabaseError:
        return None
    try:
        # one sync of its journal, not two: a copy cut short is still rolled back whole (the
        # catalog itself runs at NORMAL); a commit's fsyncs are most of a change's cost
        con.execute("PRAGMA backup.synchronous = NORMAL")
        con.execute("BEGIN")  # deferred: it writes the backup only, never the catalog
        try:
            revisions = _revisions(con)
            if revisions is not None and revisions[1] <= revisions[0]:
                _apply_changes(con, revisions[1])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorname", "") not in _DAMAGED:
            raise
        revisions = None  # a damaged backup: written again in full
    finally:
        con.execute("DETACH DATABASE backup")
    return revisions


_DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_ERROR")


def _revisions(con: sqlite3.Connection) -> tuple[int, int] | None:
    """(the catalog's revision, the attached backup's), or ``None`` when the change log cannot
    bring the backup up to date: another schema, or changes older than the log."""

    def value(schema: str, key: str) -> int | None:
        row = con.execute(f"SELECT value FROM {schema}.meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else None

    version = con.execute("PRAGMA main.user_version").fetchone()[0]
    if con.execute("PRAGMA backup.user_version").fetchone()[0] != version:
        return None
    current, before = value("main", "revision"), value("backup", "revision")
    logged_from = value("main", "changes_since")
    if current is None or before is None or logged_from is None or before < logged_from:
        return None
    return current, before


def _apply_changes(con: sqlite3.Connection, before: int) -> None:
    """Replace each row of the backup changed after revision ``before`` by the catalog's (or
    delete it), then copy ``meta`` and the id counters. Deleting and inserting (never
    REPLACE) fires the backup's own triggers, which keep its full-text index in step."""
    from meshsim.catalog.schema import TRACKED_TABLES

    con.execute("PRAGMA defer_foreign_keys = ON")  # a product's rows are replaced in turn
    changed = "SELECT row FROM main.backup_changes WHERE name = ? AND revision > ?"
    for table in TRACKED_TABLES:
        names = ", ".join(r[1] for r in con.execute(f"PRAGMA main.table_info({table})"))
        con.execute(f"DELETE FROM backup.{table} WHERE rowid IN ({changed})", (table, before))
        con.execute(
            f"INSERT INTO backup.{table} (rowid, {names}) SELECT rowid, {names}"
            f" FROM main.{table} WHERE rowid IN ({changed})",
            (table, before),
        )
    for table in ("meta", "sqlite_sequence"):
        con.execute(f"DELETE FROM backup.{table}")
        con.execute(f"INSERT INTO backup.{table} SELECT * FROM main.{table}")
    con.execute("DELETE FROM backup.backup_changes")  # its own triggers logged the copy


def journal_audit(con: sqlite3.Connection, governance: Path, record_id: int) -> None:
    """Append the audit record ``record_id`` to the journal (inside its write transaction,
    so a record that cannot be journaled is not stored either). The journal must be a regular
    file: through a symlink to ``/dev/null`` or a pipe every line would be thrown away."""
    row = con.execute("SELECT * FROM audit WHERE id = ?", (record_id,)).fetchone()
    line = json.dumps(dict(row), ensure_ascii=True) + "\n"
    path = journal_path(governance)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, 0o600)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise _journal_not_a_file(path)
            os.write(fd, line.encode("ascii"))
        finally:
            os.close(fd)
    except OSError as exc:
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise _journal_not_a_file(path) from None
        raise CatalogError(
            f"the audit record cannot be written to '{path}' ({exc.strerror}); refusing the "
            f"query, since every query must be audited",
            hint="free disk space or make the workspace writable, then run it again",
        ) from exc


def _journal_not_a_file(path: Path) -> CatalogError:
    return CatalogError(
        f"the audit journal '{path}' is not a regular file (a symlink, device, pipe or "
        f"folder); refusing the query, since its audit record would be thrown away",
        hint=f"move '{path}' away, then run 'meshsim doctor --repair --workspace "
        f"{path.parent.parent}'",
    )


def journal_last_id(governance: Path) -> int | None:
    """The id of the journal's last readable line, reading only its end (cheap on every
    query); ``None`` if there is none."""
    path = journal_path(governance)
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - _TAIL_BYTES))
        lines = handle.read().splitlines()
    for raw in reversed(lines):
        try:
            return int(json.loads(raw)["id"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a crash, or the start of the tail cut mid-line
    return None


_TAIL_BYTES = 256 * 1024


def reserve_audit_ids(con: sqlite3.Connection, governance: Path) -> None:
    """Make the next audit id higher than every id in the journal (inside the write
    transaction): after a lost write-ahead log the catalog would reuse the ids of the lost
    records, and the journal's later line for an id replaces the earlier one."""
    last = journal_last_id(governance)
    if last is None:
        return
    updated = con.execute(
        "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'audit'", (last,)
    ).rowcount
    if not updated:
        con.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('audit', ?)", (last,))


def read_journal(governance: Path) -> tuple[dict[int, dict[str, object]], int]:
    """The journal's records by id (a later line for an id wins: the earlier one belonged to
    a transaction that did not commit) and how many lines could not be read."""
    records: dict[int, dict[str, object]] = {}
    bad = 0
    path = journal_path(governance)
    if not path.is_file():
        return records, bad
    with path.open("rb") as handle:
        for raw in handle:
            try:
                record = json.loads(raw)
                records[int(record["id"])] = record
            except (ValueError, KeyError, TypeError):
                bad += 1  # a line cut short by a crash or a full disk
    return records, bad


@dataclass(frozen=True)
class Restored:
    """What :func:`restore` did."""

    source: str  # "catalog" (it was the newest), "backup" or "empty"
    moved_aside: tuple[str, ...]
    journal_records: int
    unreadable_journal_lines: int


def restore(governance: Path) -> Restored:
    """Rebuild ``catalog.db`` from the newest of itself and its backup, and the journal (see
    the module docstring). One repair at a time: concurrent ones wait, then find it repaired.

    The caller republishes the products when ``source`` is ``"empty"``.
    """
    with exclusive(governance / _REPAIR_LOCK_FILE):
        return _restore(governance)


_REPAIR_LOCK_FILE = "catalog-repair.lock"


def healthy_revision(db: Path) -> int | None:
    """The revision of the catalog at ``db`` if it opens and passes SQLite's quick check."""
    if not db.is_file():
        return None
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            if con.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                return None
            row = con.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    return int(row[0]) if row else None


def _restore(governance: Path) -> Restored:
    from meshsim.catalog.store import DB_FILE, Store, catalog_errors

    db = governance / DB_FILE
    backup = backup_path(governance)
    current, newer = healthy_revision(db), stored_revision(backup)
    moved = []
    source = "catalog"
    if current is None or (newer is not None and newer > current):
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        for suffix in ("", "-wal", "-shm"):
            path = db.with_name(db.name + suffix)
            if path.exists() or path.is_symlink():
                aside = path.with_name(f"{DB_FILE}.damaged-{stamp}{suffix}")
                os.replace(path, aside)
                moved.append(str(aside))
        source = "empty"
    if source == "empty" and backup.is_file():
        tmp = db.with_name(db.name + ".restoring")
        with catalog_errors(backup):
            src = open_backup(backup)
            dest = sqlite3.connect(tmp)
            try:
                check = src.execute("PRAGMA integrity_check").fetchone()[0]
                if check != "ok":
                    raise CatalogError(
                        f"the catalog backup '{backup}' is damaged too ({check})",
                        hint=f"move it away and run 'meshsim doctor --repair' again to start "
                        f"an empty catalog from '{journal_path(governance)}'",
                    )
                src.backup(dest)
            finally:
                src.close()
                dest.close()
        os.replace(tmp, db)
        source = "backup"
    store = Store(governance, create=True)
    records, bad = read_journal(governance)
    added = 0
    with store.write(backup=False) as con:
        columns = [r[1] for r in con.execute("PRAGMA table_info(audit)")]
        present = {r[0] for r in con.execute("SELECT id FROM audit")}
        for record_id, record in sorted(records.items()):
            if record_id in present:
                continue
            names = [c for c in columns if c in record]
            con.execute(
                f"INSERT INTO audit ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                [record[c] for c in names],
            )
            added += 1
    with store.write() as con:
        con.execute("UPDATE meta SET value = value + 1 WHERE key = 'revision'")
    store.close()
    return Restored(source, tuple(moved), added, bad)
