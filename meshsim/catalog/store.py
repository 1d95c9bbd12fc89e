"""The catalog's storage: one SQLite database in WAL mode in the workspace's governance area.

Why SQLite: it is in the standard library, transactional, and safe for several processes at
once (two terminals and a notebook). WAL mode lets readers run while one writer commits; every
change runs in a ``BEGIN IMMEDIATE`` transaction, which takes the write lock *before* reading
the state it will change, so two processes deciding the same request cannot both see it
pending (no lost update), and a crash mid-transaction leaves the previous state (no half
written state). Each operation opens its own short-lived connection: nothing is shared between
threads or processes, and the busy timeout makes a second writer wait instead of failing.

The schema is versioned with ``PRAGMA user_version``; :data:`MIGRATIONS` are applied in order,
once, under the write lock, so a catalog written by an older meshsim is upgraded in place and
keeps its records.

Reads go through a read-only connection, so listings work on a read-only workspace. A store
is opened with ``create=False`` once a build has created the catalog: a missing or empty
``catalog.db`` is then a loss to repair (``meshsim doctor --repair``), never a new, empty
catalog. A catalog older than its backup (its write-ahead log was lost) is refused on
opening and before every change (:func:`meshsim.catalog.backup.check_not_behind`), so a change
never reuses lost ids nor overwrites the backup that holds them. Every SQLite failure (not a
database, corrupt, read-only, disk full, locked) becomes a :class:`CatalogError` naming the file
and what to do.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from meshsim.catalog.backup import check_not_behind, forget_copied_changes, record_revision
from meshsim.catalog.schema import MIGRATIONS, SCHEMA_VERSION
from meshsim.errors import CatalogError

DB_FILE = "catalog.db"
BUSY_TIMEOUT_MS = 30_000


class Store:
    """One read-write and one read-only connection per thread (and process), reused;
    :meth:`write` is one ``BEGIN IMMEDIATE`` transaction, :meth:`read` one consistent snapshot.

    ``synchronous = NORMAL`` in WAL mode keeps the database consistent on any crash and loses
    at most the last transactions on power loss; FULL would fsync on every audited query.
    After each committed change (but a query's audit record, see
    :mod:`meshsim.catalog.backup`) the backup is brought up to date with the rows it changed;
    a backup found lagging the catalog when the store is first used (a process stopped
    between a commit and its backup) is brought up to date then, unless ``catch_up_backup``
    is false (``meshsim doctor`` only reports it).
    """

    def __init__(
        self, governance_dir: Path, *, create: bool = True, catch_up_backup: bool = True
    ) -> None:
        self.path = Path(governance_dir) / DB_FILE
        self.create = create
        self.catch_up_backup = catch_up_backup
        self._ready = False
        self._local = threading.local()

    def _connect(self, readonly: bool = False) -> sqlite3.Connection:
        cached = getattr(self._local, "connections", None)
        if cached is None or cached[0] != os.getpid():
            cached = (os.getpid(), dict[bool, sqlite3.Connection]())
            self._local.connections = cached
        con = cached[1].get(readonly)
        if con is not None:
            return con
        with catalog_errors(self.path):
            if not self._ready:
                self._prepare()
            con = self._open_readonly() if readonly else self._open_readwrite()
        cached[1][readonly] = con
        return con

    def _prepare(self) -> None:
        """Once per store: refuse a missing, empty or foreign file; create or migrate."""
        missing = self._missing()
        if missing and not self.create:
            raise CatalogError(
                f"the catalog '{self.path}' is {missing}, but this workspace was built: its "
                f"products, subscriptions and audit history are not there",
                hint=f"run 'meshsim doctor --repair --workspace {self.path.parent.parent}' to "
                "restore it from its backup",
            )
        if missing:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = self._open_readwrite()
        else:
            con = self._open_readonly()
        try:
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version == 0 and not self.create:
                raise CatalogError(
                    f"the catalog '{self.path}' is empty (no schema), but this workspace was "
                    f"built: its products, subscriptions and audit history are not there",
                    hint=f"run 'meshsim doctor --repair --workspace {self.path.parent.parent}' to "
                    "restore it from its backup",
                )
            if version != SCHEMA_VERSION:
                if not missing:
                    con.close()
                    con = self._open_readwrite()
                self._migrate(con)
            backed_up = check_not_behind(con, self.path)
            lagging = backed_up is not None and backed_up < revision(con)
        finally:
            con.close()
        if lagging and self.catch_up_backup and os.access(self.path.parent, os.W_OK):
            self._catch_up_backup()
        self._ready = True

    def _catch_up_backup(self) -> None:
        """Bring a backup that lags the catalog up to date (a process stopped between a
        change's commit and its backup): the change log still holds the rows it lacks."""
        from meshsim.catalog.backup import write_backup

        con = self._open_readwrite()
        try:
            write_backup(con, self.path)
        finally:
            con.close()

    def _missing(self) -> str | None:
        """Why there is no catalog to open (``None`` if there is a file)."""
        if self.path.is_dir():
            raise CatalogError(
                f"the catalog '{self.path}' is a directory, not a catalog database",
                hint=f"move it away, then run 'meshsim doctor --repair --workspace "
                f"{self.path.parent.parent}'",
            )
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return "missing"
        return "empty (0 bytes)" if size == 0 else None

    def _open_readwrite(self) -> sqlite3.Connection:
        con = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        con.row_factory = sqlite3.Row
        con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = NORMAL")
        con.execute("PRAGMA foreign_keys = ON")
        return con

    def _open_readonly(self) -> sqlite3.Connection:
        """A read-only connection; on a read-only workspace whose write-ahead log is empty
        (the last writer closed cleanly) SQLite cannot create the WAL index, and the file,
        which nobody can change there, is opened as immutable."""
        uri = f"file:{quote(str(self.path))}?mode=ro"
        try:
            return self._uri_connect(uri)
        except sqlite3.OperationalError:
            wal = self.path.with_name(self.path.name + "-wal")
            if os.access(self.path.parent, os.W_OK) or (wal.exists() and wal.stat().st_size):
                raise
        return self._uri_connect(uri + "&immutable=1")

    def _uri_connect(self, uri: str) -> sqlite3.Connection:
        con = sqlite3.connect(
            uri,
            uri=True,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        con.row_factory = sqlite3.Row
        con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()  # reads the header now
        return con

    def check(self) -> None:
        """Open the catalog now (present, a database, current schema), or raise CatalogError."""
        self._connect(readonly=True)

    def close(self) -> None:
        cached = getattr(self._local, "connections", None)
        if cached is not None and cached[0] == os.getpid():
            for con in cached[1].values():
                con.close()
        self._local.connections = None

    def _migrate(self, con: sqlite3.Connection) -> None:
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise CatalogError(
                f"the catalog '{self.path}' has schema version {version}, newer than this "
                f"meshsim understands ({SCHEMA_VERSION})",
                hint="upgrade meshsim, or use another workspace",
            )
        con.execute("BEGIN IMMEDIATE")
        try:
            version = con.execute("PRAGMA user_version").fetchone()[0]  # another process won?
            for index in range(version, SCHEMA_VERSION):
                for statement in _statements(MIGRATIONS[index]):
                    con.execute(statement)
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    @contextmanager
    def write(self, *, backup: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction holding the write lock from its first statement; rolled back on
        error. A committed change is then copied to the backup, unless ``backup`` is false
        (the caller journals it instead); the change log's rows the backup already holds are
        dropped under the write lock first."""
        con = self._connect()
        with catalog_errors(self.path):
            con.execute("BEGIN IMMEDIATE")
            try:
                if backup:
                    # under the write lock: no change races it
                    forget_copied_changes(con, check_not_behind(con, self.path))
                    start = revision(con)
                before = con.total_changes
                yield con
                changed = con.total_changes != before
                if backup and changed:
                    if revision(con) == start:
                        bump_revision(con)  # every backed-up change raises the revision
                    record_revision(con, self.path.parent)
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        if backup and changed:
            from meshsim.catalog.backup import write_backup

            write_backup(con, self.path)

    def forget_backed_up(self) -> None:
        """Drop the change log's rows the backup holds now, rather than in the next change:
        after a build's publication (a row per product, version and search entry: 62,000
        at 10,000 products), which the first request would otherwise delete. The backup
        is then brought up to date (the log's start is in ``meta``)."""
        from meshsim.catalog.backup import write_backup

        con = self._connect()
        with catalog_errors(self.path):
            con.execute("BEGIN IMMEDIATE")
            try:
                forget_copied_changes(con, check_not_behind(con, self.path))
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        write_backup(con, self.path)

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several SELECTs, on the read-only connection."""
        con = self._connect(readonly=True)
        with catalog_errors(self.path):
            con.execute("BEGIN")
            try:
                yield con
            finally:
                con.execute("COMMIT")


#: SQLite result codes (``sqlite_errorname``) and what they mean for a catalog file.
_SQLITE_PROBLEMS = {
    "SQLITE_NOTADB": ("is not a catalog database (not an SQLite file)", "repair"),
    "SQLITE_CORRUPT": ("is corrupt", "repair"),
    "SQLITE_FULL": ("cannot be written: the disk is full", "space"),
    "SQLITE_READONLY": ("cannot be written: the workspace is read-only", "writable"),
    "SQLITE_CANTOPEN": ("cannot be opened", "access"),
    "SQLITE_PERM": ("cannot be opened: permission denied", "access"),
    "SQLITE_BUSY": ("is locked by another process for too long", "retry"),
    "SQLITE_LOCKED": ("is locked by another process for too long", "retry"),
    "SQLITE_IOERR": ("cannot be read or written (I/O error)", "access"),
    "SQLITE_ERROR": ("is not a meshsim catalog or is damaged", "repair"),
}


def catalog_error(path: Path, exc: sqlite3.Error) -> CatalogError:
    """The :class:`CatalogError` for an SQLite error on the catalog at ``path``."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    base = name.split("_", 2)
    family = "_".join(base[:2]) if len(base) > 1 else name
    what, action = _SQLITE_PROBLEMS.get(
        name, _SQLITE_PROBLEMS.get(family, ("cannot be used", "repair"))
    )
    if name == "SQLITE_READONLY_DBMOVED":
        what, action = "was moved or deleted while in use", "repair"
    elif family in ("SQLITE_CANTOPEN", "SQLITE_READONLY") and not os.access(path.parent, os.W_OK):
        what, action = _SQLITE_PROBLEMS["SQLITE_READONLY"]
    elif family in ("SQLITE_CANTOPEN", "SQLITE_IOERR") and _disk_full(path.parent):
        what, action = _SQLITE_PROBLEMS["SQLITE_FULL"]  # SQLite could not grow its files
    workspace = path.parent.parent
    hints = {
        "repair": f"run 'meshsim doctor --repair --workspace {workspace}' to restore it from "
        f"its backup",
        "space": "free disk space, then run the command again",
        "writable": "make the workspace writable to change the catalog or run queries "
        "(their audit records must be written); listings work read-only",
        "access": f"check the permissions of '{path.parent}', then run 'meshsim doctor "
        f"--workspace {workspace}'",
        "retry": "run the command again when the other process is done",
    }
    return CatalogError(f"the catalog '{path}' {what} ({exc})", hint=hints[action])


def _disk_full(folder: Path) -> bool:
    try:
        stats = os.statvfs(folder)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 64 * 1024


@contextmanager
def catalog_errors(path: Path) -> Iterator[None]:
    """Raise SQLite errors on the catalog as :class:`CatalogError`; programming errors
    (a bad statement, a constraint meshsim should have checked first) stay bugs."""
    try:
        yield
    except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
        raise
    except sqlite3.Error as exc:
        raise catalog_error(path, exc) from exc


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit our transaction)."""
    statements, current = [], ""
    for line in script.splitlines():
        current += line.split("--", 1)[0] + "\n"
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return [s for s in statements if s.strip(" ;\n")]


def bump_revision(con: sqlite3.Connection) -> int:
    con.execute("UPDATE meta SET value = value + 1 WHERE key = 'revision'")
    return int(con.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()[0])


def revision(con: sqlite3.Connection) -> int:
    return int(con.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()[0])
