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
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from meshsim.errors import CatalogError

DB_FILE = "catalog.db"
BUSY_TIMEOUT_MS = 30_000

MIGRATIONS: tuple[str, ...] = (
    # 1: products, versions, requests, the audit log, the search index
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO meta VALUES ('revision', 0);

    CREATE TABLE products (
        ref TEXT PRIMARY KEY,
        domain TEXT NOT NULL,
        name TEXT NOT NULL,
        owner TEXT,
        description TEXT NOT NULL,
        latest_version INTEGER NOT NULL,
        published_at TEXT NOT NULL
    );
    CREATE TABLE product_versions (
        product TEXT NOT NULL REFERENCES products(ref),
        version INTEGER NOT NULL,
        published_at TEXT NOT NULL,
        spec_fingerprint TEXT NOT NULL,
        tables TEXT NOT NULL,      -- JSON: table ref -> Delta version
        rows TEXT NOT NULL,        -- JSON: table ref -> row count (or null)
        schema TEXT NOT NULL,      -- JSON: the product spec as published
        PRIMARY KEY (product, version)
    );
    CREATE TABLE spec_grants (
        name TEXT PRIMARY KEY,
        consumers TEXT NOT NULL,   -- JSON list of consumer names or '*'
        scope TEXT NOT NULL,       -- JSON: the grant as declared in mesh.yaml
        published_at TEXT NOT NULL
    );
    CREATE TABLE requests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        consumer TEXT NOT NULL,
        product TEXT NOT NULL REFERENCES products(ref),
        reason TEXT NOT NULL,
        tables TEXT NOT NULL,            -- JSON list of table refs asked for
        columns TEXT NOT NULL,           -- JSON list of column refs asked for ([] = whole tables)
        expires_at TEXT,
        state TEXT NOT NULL
            CHECK (state IN ('pending', 'approved', 'rejected', 'revoked', 'expired')),
        created_at TEXT NOT NULL,
        decided_by TEXT,
        decided_at TEXT,
        comment TEXT,
        granted_tables TEXT,             -- JSON, set on approval (may be narrower than asked)
        granted_columns TEXT,
        row_filter TEXT,
        auto_approved INTEGER NOT NULL DEFAULT 0,
        ended_by TEXT,
        ended_at TEXT
    );
    CREATE INDEX requests_state ON requests (state, expires_at);
    CREATE INDEX requests_consumer ON requests (consumer);

    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('query', 'decision', 'publish')),
        consumer TEXT,
        principal TEXT,             -- who decided or published
        request_id INTEGER,
        product TEXT,
        transition TEXT,            -- e.g. pending->approved
        sql TEXT,
        decision TEXT NOT NULL,     -- allowed|refused|error for queries; the new state otherwise
        reason TEXT,
        tables TEXT,
        columns TEXT,
        policies TEXT,
        rows INTEGER,
        duration_ms REAL
    );
    CREATE INDEX audit_consumer ON audit (consumer);
    CREATE INDEX audit_request ON audit (request_id);

    CREATE VIRTUAL TABLE search_index USING fts5(
        ref UNINDEXED, product UNINDEXED, kind UNINDEXED,
        name, description, tags, owner,
        tokenize = 'unicode61'
    );
    """,
    # 2: the OS user behind each audit record, next to the principal (identity); the records
    # written before have none
    """
    ALTER TABLE audit ADD COLUMN os_user TEXT;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class Store:
    """One connection per thread (and process), reused; :meth:`write` is one ``BEGIN
    IMMEDIATE`` transaction, :meth:`read` one consistent snapshot.

    ``synchronous = NORMAL`` in WAL mode keeps the database consistent on any crash and loses
    at most the last transactions on power loss; FULL would fsync on every audited query.
    """

    def __init__(self, governance_dir: Path) -> None:
        self.path = Path(governance_dir) / DB_FILE
        self._ready = False
        self._local = threading.local()

    def _connect(self) -> sqlite3.Connection:
        cached = getattr(self._local, "connection", None)
        if cached is not None and cached[0] == os.getpid():
            return cached[1]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        con.row_factory = sqlite3.Row
        con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = NORMAL")
        con.execute("PRAGMA foreign_keys = ON")
        if not self._ready:
            self._migrate(con)
            self._ready = True
        self._local.connection = (os.getpid(), con)
        return con

    def close(self) -> None:
        cached = getattr(self._local, "connection", None)
        if cached is not None and cached[0] == os.getpid():
            cached[1].close()
        self._local.connection = None

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
    def write(self) -> Iterator[sqlite3.Connection]:
        """One transaction holding the write lock from its first statement; rolled back on error."""
        con = self._connect()
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several SELECTs."""
        con = self._connect()
        con.execute("BEGIN")
        try:
            yield con
        finally:
            con.execute("COMMIT")


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
