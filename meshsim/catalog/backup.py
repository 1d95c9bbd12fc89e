"""The catalog's backup, and rebuilding the catalog from it.

Two files in the governance account, beside ``catalog.db``:

- ``catalog-backup.db``: a full copy (SQLite's online backup), rewritten after every committed
  change but a query's audit record: publications, requests, decisions, expiries. They are
  rare and human-paced, so a full copy is cheap, and a copy is a database SQLite checks like
  the original (an export to another format would need its own reader and schema upgrades).
  Copies are taken one at a time under a lock, each of the state at the moment it starts, so
  the last one written is of the newest state.
- ``audit-journal.jsonl``: every query's audit record as one JSON line, appended in the
  transaction that inserts it. Copying the whole catalog on every query would cost time
  growing with the audit log; a line costs the same on the first query and the millionth.

``meshsim doctor --repair`` (:func:`restore`) moves a damaged catalog aside (never deletes
it), copies the backup in its place and adds the journal's records the backup lacks. Without
a backup it starts an empty catalog and replays the journal, and says what could not be
recovered.
"""

from __future__ import annotations

import json
import os
import sqlite3
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


def write_backup(con: sqlite3.Connection, db_path: Path) -> None:
    """Copy the committed catalog that ``con`` is connected to into its backup."""
    from meshsim.catalog.store import catalog_errors

    governance = db_path.parent
    target = backup_path(governance)
    try:
        with exclusive(governance / _LOCK_FILE):
            tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
            with catalog_errors(db_path):
                dest = sqlite3.connect(tmp)
                try:
                    con.backup(dest)
                    # one self-contained file, readable even where no WAL index can be made
                    dest.execute("PRAGMA journal_mode = DELETE")
                finally:
                    dest.close()
            os.replace(tmp, target)
    except (OSError, CatalogError) as exc:
        why = exc.message if isinstance(exc, CatalogError) else exc.strerror
        raise CatalogError(
            f"the change was saved in '{db_path}', but its backup '{target}' could not be "
            f"written ({why})",
            hint="free disk space or fix permissions; the next change writes the backup again",
        ) from exc


def journal_audit(con: sqlite3.Connection, governance: Path, record_id: int) -> None:
    """Append the audit record ``record_id`` to the journal (inside its write transaction,
    so a record that cannot be journaled is not stored either)."""
    row = con.execute("SELECT * FROM audit WHERE id = ?", (record_id,)).fetchone()
    line = json.dumps(dict(row), ensure_ascii=True) + "\n"
    path = journal_path(governance)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("ascii"))
        finally:
            os.close(fd)
    except OSError as exc:
        raise CatalogError(
            f"the audit record cannot be written to '{path}' ({exc.strerror}); refusing the "
            f"query, since every query must be audited",
            hint="free disk space or make the workspace writable, then run it again",
        ) from exc


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

    source: str  # "backup" or "empty"
    moved_aside: tuple[str, ...]
    journal_records: int
    unreadable_journal_lines: int


def restore(governance: Path) -> Restored:
    """Rebuild ``catalog.db`` from the backup and the journal (see the module docstring).

    The caller republishes the products when ``source`` is ``"empty"``.
    """
    from meshsim.catalog.store import DB_FILE, Store, catalog_errors

    db = governance / DB_FILE
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    moved = []
    for suffix in ("", "-wal", "-shm"):
        path = db.with_name(db.name + suffix)
        if path.exists() or path.is_symlink():
            aside = path.with_name(f"{DB_FILE}.damaged-{stamp}{suffix}")
            os.replace(path, aside)
            moved.append(str(aside))
    backup = backup_path(governance)
    source = "empty"
    if backup.is_file():
        tmp = db.with_name(db.name + ".restoring")
        with catalog_errors(backup):
            src = sqlite3.connect(f"file:{backup}?mode=ro&immutable=1", uri=True)
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
