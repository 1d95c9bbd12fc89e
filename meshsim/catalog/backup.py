"""The catalog's backup and its audit journal (the catalog is rebuilt from them by
:mod:`meshsim.catalog.restore`).

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
  the query records too: those above the backup's highest audit id, since the change log
  does not record journaled records, which would grow it by a row per query.)

``meshsim doctor --repair`` (:mod:`meshsim.catalog.restore`) keeps the newest healthy copy
of the catalog and its backup (by ``meta.revision``, raised by every backed-up change), then
adds the journal's records the catalog lacks. A process stopped between a change's commit and
its backup leaves the backup behind the catalog: the doctor reports it, and the next command
or ``--repair`` brings it up to date (the change log still holds what it lacks). The revision
each change commits is also noted in ``catalog-revision`` (:func:`record_revision`), so that a
restore from a backup older than it says which revisions may be lost. The backup lock is
waited for a bounded time (a stopped process holds it until it is killed): after that the
change stays saved and the error says the backup will be brought up to date.

A catalog behind its backup must not change: a change would reuse the lost ids and its backup
would overwrite the only copy of the lost work. So opening it is refused
(:func:`check_not_behind`) and :func:`write_backup` never replaces a newer backup.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from meshsim.errors import CatalogError
from meshsim.files import create_temporary
from meshsim.locks import LockTimeout, exclusive

BACKUP_FILE = "catalog-backup.db"
JOURNAL_FILE = "audit-journal.jsonl"
_LOCK_FILE = "catalog-backup.lock"


def backup_path(governance: Path) -> Path:
    return governance / BACKUP_FILE


def backup_lock(governance: Path) -> Path:
    """The lock every copy to the backup is written under."""
    return governance / _LOCK_FILE


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
        with exclusive(backup_lock(governance), bounded=True):
            with catalog_errors(db_path):
                outcome = None if full else _copy_changes(con, target)
                if outcome is None:
                    outcome = _copy_all(con, target)
            copied, existing = outcome
    except LockTimeout as exc:
        raise CatalogError(
            f"the change was saved in '{db_path}', but its backup '{target}' was not brought "
            f"up to date: {exc} (a stopped or hung meshsim?)",
            hint=f"let that process finish or end it; the next command brings the backup up "
            f"to date (or run 'meshsim doctor --repair --workspace {governance.parent}')",
        ) from exc
    except (OSError, CatalogError) as exc:
        why = exc.message if isinstance(exc, CatalogError) else exc.strerror
        raise CatalogError(
            f"the change was saved in '{db_path}', but its backup '{target}' could not be "
            f"written ({why})",
            hint="free disk space or fix permissions; the next command writes the backup again",
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
    fd, tmp = create_temporary(target)  # sqlite3 would write through a planted link
    os.close(fd)
    dest = sqlite3.connect(tmp)
    try:
        con.backup(dest)
        # one self-contained file, readable even where no WAL index can be made
        dest.execute("PRAGMA journal_mode = DELETE")
        if dest.execute("SELECT 1 FROM sqlite_master WHERE name = 'backup_changes'").fetchone():
            dest.execute("DELETE FROM backup_changes")  # the catalog's log, not the copy's
            dest.commit()
    except BaseException:
        dest.close()
        tmp.unlink(missing_ok=True)  # a kill leaves it: see stale_copies
        raise
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
        # catalog itself runs at NORMAL); a commit's fsyncs are most of a change's cost. The
        # journal is kept between copies (its header zeroed at each commit, so it is never
        # hot then): creating and deleting it made each fsync a file-system journal commit
        # (15 ms of a 25 ms request at 10,000 products, 2 ms with the file kept)
        con.execute("PRAGMA backup.journal_mode = PERSIST")
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
    from meshsim.catalog.schema import JOURNALED_KINDS, TRACKED_TABLES

    con.execute("PRAGMA defer_foreign_keys = ON")  # a product's rows are replaced in turn
    # journaled records are not logged: each is inserted once, above every id before it
    con.execute(
        f"INSERT INTO backup.audit SELECT * FROM main.audit WHERE kind IN {JOURNALED_KINDS}"
        " AND id > (SELECT coalesce(max(id), 0) FROM backup.audit)"
    )
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
        for tail in _TAIL_BYTES:
            start = max(0, size - tail)
            handle.seek(start)
            lines = handle.read().splitlines()
            last = start == 0 or tail == _TAIL_BYTES[-1]
            # a shorter tail's first line may be cut mid-line: only the lines after it count
            found = _last_id(lines if last else lines[1:])
            if found is not None or last:
                return found
    return None


def _last_id(lines: list[bytes]) -> int | None:
    for raw in reversed(lines):
        try:
            return int(json.loads(raw)["id"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a crash, or the start of the tail cut mid-line
    return None


#: how much of the journal's end is read, the first first: most queries' last line is whole
#: in 8 KB (reading 256 KB and splitting it cost every query a quarter of a millisecond)
_TAIL_BYTES = (8 * 1024, 256 * 1024)


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


REVISION_FILE = "catalog-revision"


class RevisionMark(BaseModel):
    """``catalog-revision``: the revision the catalog's last change committed, and its id
    counters (``sqlite_sequence``) then."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    revision: int
    sequences: dict[str, int]


def record_revision(con: sqlite3.Connection, governance: Path) -> None:
    """Note the revision and id counters a change is about to commit, outside the catalog
    (inside its write transaction, before the commit): a restore from a backup that lags them
    then says which revisions may be lost, even when the catalog cannot be read any more, and
    never reuses a lost request's or record's id. A crash before the commit leaves it one
    ahead, which only makes that warning cautious."""
    from meshsim.catalog.store import revision

    mark = RevisionMark(
        revision=revision(con),
        sequences={r[0]: int(r[1]) for r in con.execute("SELECT name, seq FROM sqlite_sequence")},
    )
    path = governance / REVISION_FILE
    data = (mark.model_dump_json() + "\n").encode("ascii")
    try:
        # rewritten in place, not truncated first: a file truncated to nothing and written
        # again is written out to disk on close by ext4 (auto_da_alloc), in every change
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        finally:
            os.close(fd)
    except OSError as exc:
        raise CatalogError(
            f"the change cannot be noted in '{path}' ({exc.strerror}); it was not saved",
            hint="free disk space or make the workspace writable, then run it again",
        ) from exc


def recorded_revision(governance: Path) -> RevisionMark | None:
    """What :func:`record_revision` last noted, ``None`` if nothing can be read."""
    try:
        return RevisionMark.model_validate_json((governance / REVISION_FILE).read_bytes())
    except (OSError, ValidationError):
        return None


def stale_copies(governance: Path) -> list[Path]:
    """Temporary full copies of the backup left by a process killed while writing one (each
    is named after its writer's pid; a live writer's copy is not stale)."""
    stale = []
    for path in sorted(governance.glob(f"{BACKUP_FILE}.*.tmp")):
        pid = path.name.removeprefix(f"{BACKUP_FILE}.").split(".")[0]
        if not pid.isdigit() or not _alive(int(pid)):
            stale.append(path)
    return stale


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
