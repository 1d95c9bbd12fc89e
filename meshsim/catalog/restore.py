"""``meshsim doctor --repair``'s rebuild of ``catalog.db`` from the newest healthy copy of
itself and its backup (:mod:`meshsim.catalog.backup`), then the audit journal.

One check decides which copy is healthy: SQLite's ``integrity_check``, the one ``meshsim
doctor`` reports (``quick_check`` misses an index out of step with its table, so a catalog
the doctor calls damaged would be kept as "the newest copy"). The backup is copied to a
temporary file and checked there before anything is moved: a damaged backup leaves the
catalog where it is, and the error names the backup. A restore from a backup older than the
last revision the catalog committed (:func:`meshsim.catalog.backup.recorded_revision`) says
which revisions may be lost, and the restored catalog continues after them, so their
numbers are never reused.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from meshsim.catalog.backup import (
    backup_path,
    journal_path,
    open_backup,
    read_journal,
    record_revision,
    recorded_revision,
    stored_revision,
    write_backup,
)
from meshsim.catalog.store import DB_FILE, Store
from meshsim.errors import CatalogError
from meshsim.locks import exclusive

_REPAIR_LOCK_FILE = "catalog-repair.lock"


@dataclass(frozen=True)
class Restored:
    """What :func:`restore` did."""

    source: str  # "catalog" (it was the newest), "backup" or "empty"
    moved_aside: tuple[str, ...]
    journal_records: int
    unreadable_journal_lines: int
    #: the revisions the catalog had committed that the restored copy lacks (first, last)
    lost_revisions: tuple[int, int] | None = None


def restore(governance: Path) -> Restored:
    """Rebuild ``catalog.db`` from the newest healthy copy and the journal (see the module
    docstring). One repair at a time: concurrent ones wait, then find it repaired.

    The caller republishes the products when ``source`` is ``"empty"``.
    """
    with exclusive(governance / _REPAIR_LOCK_FILE):
        return _restore(governance)


def integrity_problem(con: sqlite3.Connection) -> str | None:
    """What SQLite's integrity check finds wrong with the database of ``con`` (``None``:
    nothing)."""
    found = [r[0] for r in con.execute("PRAGMA integrity_check(5)")]
    return None if found == ["ok"] else "; ".join(found)


def healthy_revision(db: Path) -> int | None:
    """The revision of the catalog at ``db`` if it opens and passes the integrity check."""
    if not db.is_file():
        return None
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            if integrity_problem(con) is not None:
                return None
            row = con.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    return int(row[0]) if row else None


def _restore(governance: Path) -> Restored:
    db = governance / DB_FILE
    backup = backup_path(governance)
    current, newer = healthy_revision(db), stored_revision(backup)
    mark = recorded_revision(governance)
    noted = mark.revision if mark is not None else None
    reached = max(
        (r for r in (noted, stored_revision(db), current) if r is not None),
        default=0,
    )
    moved: tuple[str, ...] = ()
    source, kept = "catalog", current
    if current is None or (newer is not None and newer > current):
        if backup.is_file():
            tmp = _checked_copy(backup, db, catalog_damaged=current is None)
            moved = _move_aside(db)
            os.replace(tmp, db)
            source, kept = "backup", newer
        else:
            moved = _move_aside(db)
            source, kept = "empty", 0
    kept = kept or 0
    store = Store(governance, create=True)
    try:
        added, bad = _add_journal_records(store, governance)
        if source != "catalog" or added or reached > kept:
            with store.write(backup=False) as con:
                # past every revision the catalog reached: a lost one's number is never reused
                con.execute(
                    "UPDATE meta SET value = max(value, ?) + 1 WHERE key = 'revision'", (reached,)
                )
                _reserve_ids(con, mark.sequences if mark is not None else {})
                record_revision(con, governance)
        # in full: the journal's records may lie below the ids the backup holds, which a copy
        # of the changes would miss (it copies journaled records above the backup's highest)
    finally:
        store.close()
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        write_backup(con, db, full=True)
    finally:
        con.close()
    lost = (kept + 1, reached) if reached > kept else None
    return Restored(source, moved, added, bad, lost)


def _reserve_ids(con: sqlite3.Connection, sequences: dict[str, int]) -> None:
    """Raise the id counters to those the catalog had reached: the ids of lost requests and
    records are never given to new ones (an audit record naming a lost request's id would
    then name another)."""
    for name, seq in sequences.items():
        updated = con.execute(
            "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (seq, name)
        ).rowcount
        if not updated:
            con.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (name, seq))


def _checked_copy(backup: Path, db: Path, *, catalog_damaged: bool) -> Path:
    """A copy of the backup beside ``db`` that passes the integrity check, or CatalogError
    naming the backup (nothing moved, no copy left)."""
    tmp = db.with_name(db.name + ".restoring")
    problem = None
    try:
        src = open_backup(backup)
        try:
            problem = integrity_problem(src)
            if problem is None:
                dest = sqlite3.connect(tmp)
                try:
                    src.backup(dest)
                    problem = integrity_problem(dest)
                finally:
                    dest.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        problem = str(exc)
    if problem is None:
        return tmp
    tmp.unlink(missing_ok=True)
    workspace = db.parent.parent
    state = "is damaged too" if catalog_damaged else "is newer than the catalog but damaged"
    raise CatalogError(
        f"the catalog backup '{backup}' {state} ({problem}); nothing was restored and the "
        f"catalog '{db}' was left where it is",
        hint=f"move the backup away ('mv {backup} {backup}.damaged'), then run 'meshsim "
        f"doctor --repair --workspace {workspace}' again: it keeps a healthy catalog, or "
        f"starts an empty one from '{journal_path(db.parent)}' (requests and decisions would "
        f"be lost)",
    )


def _move_aside(db: Path) -> tuple[str, ...]:
    """Move the catalog and its WAL files aside (never deleted)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    moved = []
    for suffix in ("", "-wal", "-shm"):
        path = db.with_name(db.name + suffix)
        if path.exists() or path.is_symlink():
            aside = path.with_name(f"{db.name}.damaged-{stamp}{suffix}")
            os.replace(path, aside)
            moved.append(str(aside))
    return tuple(moved)


def _add_journal_records(store: Store, governance: Path) -> tuple[int, int]:
    """Add the journal's query records the catalog lacks; (added, unreadable lines)."""
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
    return added, bad
