"""The catalog's schema: :data:`MIGRATIONS`, applied in order by
:class:`meshsim.catalog.store.Store` (``PRAGMA user_version`` counts those applied)."""

from __future__ import annotations

#: The tables whose changed rows the backup copies (:mod:`meshsim.catalog.backup`): every
#: table but ``meta`` (copied whole, two rows) and the change log itself. The full-text index
#: follows ``search_rows`` through its own triggers, in the catalog and in the backup.
TRACKED_TABLES = (
    "products",
    "product_versions",
    "spec_grants",
    "requests",
    "audit",
    "quality_results",
    "search_rows",
)


#: The audit kinds written to the audit journal, whose inserts the change log does not record
#: (migration 7; :func:`meshsim.catalog.backup._apply_changes` copies them by id).
JOURNALED_KINDS = "('query', 'write')"


def _change_log() -> str:
    """Migration 6's change log: a trigger per table and statement kind records the rowid of
    each row changed, with the revision the change belongs to (the next one: a transaction
    raises the revision when it ends, see :meth:`meshsim.catalog.store.Store.write`)."""
    revision = "(SELECT value FROM meta WHERE key = 'revision') + 1"
    statements = [
        "CREATE TABLE backup_changes (revision INTEGER NOT NULL, name TEXT NOT NULL,"
        " row INTEGER NOT NULL);",
        "CREATE INDEX backup_changes_name ON backup_changes (name, revision);",
        "CREATE INDEX backup_changes_revision ON backup_changes (revision);",
        # every change after the current revision is logged from now on
        "INSERT INTO meta (key, value) SELECT 'changes_since', value FROM meta"
        " WHERE key = 'revision';",
    ]
    for table in TRACKED_TABLES:
        log = f"INSERT INTO backup_changes VALUES ({revision}, '{table}',"
        statements += [
            f"CREATE TRIGGER {table}_logged_insert AFTER INSERT ON {table} BEGIN"
            f" {log} new.rowid); END;",
            f"CREATE TRIGGER {table}_logged_delete AFTER DELETE ON {table} BEGIN"
            f" {log} old.rowid); END;",
            f"CREATE TRIGGER {table}_logged_update AFTER UPDATE ON {table} BEGIN"
            f" {log} new.rowid); {log} old.rowid); END;",
        ]
    return "\n".join(statements)


_SEARCH_COLUMNS = "ref, product, kind, name, description, tags, owner"
_OLD_VALUES = ", ".join(f"old.{c}" for c in _SEARCH_COLUMNS.split(", "))
_NEW_VALUES = ", ".join(f"new.{c}" for c in _SEARCH_COLUMNS.split(", "))

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
    # 3: producers' write attempts (kind 'write'), allowed or refused; SQLite cannot change
    # a CHECK constraint in place, so the table is rebuilt with the same rows and ids
    """
    CREATE TABLE audit_v3 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('query', 'decision', 'publish', 'write')),
        consumer TEXT,
        principal TEXT,
        request_id INTEGER,
        product TEXT,
        transition TEXT,
        sql TEXT,
        decision TEXT NOT NULL,
        reason TEXT,
        tables TEXT,
        columns TEXT,
        policies TEXT,
        rows INTEGER,
        duration_ms REAL,
        os_user TEXT
    );
    INSERT INTO audit_v3 SELECT id, time, kind, consumer, principal, request_id, product,
        transition, sql, decision, reason, tables, columns, policies, rows, duration_ms, os_user
        FROM audit;
    DROP TABLE audit;
    ALTER TABLE audit_v3 RENAME TO audit;
    CREATE INDEX audit_consumer ON audit (consumer);
    CREATE INDEX audit_request ON audit (request_id);
    """,
    # 4: quality rule results, each with the table version it checked (meshsim.quality);
    # sample keys are data values, recomputed for each viewer by 'meshsim check', never stored
    """
    CREATE TABLE quality_results (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        checked_at TEXT NOT NULL,
        trigger TEXT NOT NULL CHECK (trigger IN ('check', 'build', 'write', 'publish')),
        product TEXT NOT NULL,
        table_ref TEXT NOT NULL,
        version INTEGER NOT NULL,
        rule TEXT NOT NULL,
        kind TEXT NOT NULL,
        severity TEXT NOT NULL CHECK (severity IN ('error', 'warn')),
        status TEXT NOT NULL CHECK (status IN ('passed', 'failed', 'error')),
        failing_rows INTEGER,
        observed TEXT,
        message TEXT NOT NULL
    );
    CREATE INDEX quality_results_rule ON quality_results (product, table_ref, rule, id);
    """,
    # 5 (issue 17, meshes at enterprise size): the lookups of show, the request workflow
    # and the listings by product, consumer and state use an index at 100,000 requests
    """
    CREATE INDEX IF NOT EXISTS requests_product_state ON requests (product, state);
    CREATE INDEX IF NOT EXISTS requests_consumer_state ON requests (consumer, state, id);
    CREATE INDEX IF NOT EXISTS audit_product ON audit (product, id);
    CREATE INDEX IF NOT EXISTS audit_kind ON audit (kind, id);
    """,
    # 6 (issue 17): the backup copies only the rows changed since it was written, which the
    # change log records; the search index becomes an external-content index over the table
    # search_rows (a trigger cannot watch a virtual table, and a product's rows are found
    # through an index instead of a scan of the whole full-text table)
    f"""
    CREATE TABLE search_rows (
        id INTEGER PRIMARY KEY,
        ref TEXT NOT NULL,
        product TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT,
        description TEXT,
        tags TEXT,
        owner TEXT
    );
    INSERT INTO search_rows (id, {_SEARCH_COLUMNS}) SELECT rowid, {_SEARCH_COLUMNS}
        FROM search_index;
    CREATE INDEX search_rows_product ON search_rows (product);
    DROP TABLE search_index;
    CREATE VIRTUAL TABLE search_index USING fts5(
        ref UNINDEXED, product UNINDEXED, kind UNINDEXED,
        name, description, tags, owner,
        content = 'search_rows', content_rowid = 'id',
        tokenize = 'unicode61'
    );
    INSERT INTO search_index (search_index) VALUES ('rebuild');
    CREATE TRIGGER search_rows_indexed AFTER INSERT ON search_rows BEGIN
        INSERT INTO search_index (rowid, {_SEARCH_COLUMNS}) VALUES (new.id, {_NEW_VALUES});
    END;
    CREATE TRIGGER search_rows_unindexed AFTER DELETE ON search_rows BEGIN
        INSERT INTO search_index (search_index, rowid, {_SEARCH_COLUMNS})
            VALUES ('delete', old.id, {_OLD_VALUES});
    END;
    CREATE TRIGGER search_rows_reindexed AFTER UPDATE ON search_rows BEGIN
        INSERT INTO search_index (search_index, rowid, {_SEARCH_COLUMNS})
            VALUES ('delete', old.id, {_OLD_VALUES});
        INSERT INTO search_index (rowid, {_SEARCH_COLUMNS}) VALUES (new.id, {_NEW_VALUES});
    END;
    """
    + _change_log(),
    # 7: the journaled audit records (queries' and producers' writes) are not logged one row
    # each (the log grew by a row per query until the next change): they are only ever
    # inserted, with rising ids, so the backup copies those above its highest id
    f"""
    DROP TRIGGER audit_logged_insert;
    CREATE TRIGGER audit_logged_insert AFTER INSERT ON audit
        WHEN new.kind NOT IN {JOURNALED_KINDS} BEGIN
        INSERT INTO backup_changes VALUES ((SELECT value FROM meta WHERE key = 'revision') + 1,
            'audit', new.rowid);
    END;
    DELETE FROM backup_changes WHERE name = 'audit' AND row IN
        (SELECT id FROM audit WHERE kind IN {JOURNALED_KINDS});
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
