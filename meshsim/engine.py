"""The one module that imports duckdb: a hardened connection and a guarded query runner.

Hardening follows ``GOVERNANCE.md`` ("DuckDB hardening, in this order", checked on DuckDB 2.0
with ``duckdb_settings()``): extension autoload/autoinstall and community extensions off,
Python replacement scans off, the external file cache off, explicit threads and memory limit,
then ``allowed_directories`` (the data roots), then ``enable_external_access=false`` and
``lock_configuration=true``
last. These settings are defence in depth; the query validator is the real boundary.

Each query runs on a fresh cursor, with a timer thread that calls ``interrupt()`` when the
timeout passes (DuckDB has no statement timeout). Results come back as Arrow tables.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meshsim.errors import QueryError

if TYPE_CHECKING:
    import pyarrow as pa

#: Settings applied at connect, before any path setting. Names verified in duckdb_settings().
CONNECT_SETTINGS: dict[str, Any] = {
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "python_enable_replacements": False,
    "enable_external_file_cache": False,
    "allow_persistent_secrets": False,
}


def _duckdb():
    import duckdb

    return duckdb


@dataclass(frozen=True)
class EngineLimits:
    threads: int = 2
    memory_limit: str = "1GB"
    timeout_s: float | None = 30.0


class QueryTimeout(QueryError):
    """The query ran longer than the engine's timeout and was interrupted."""


class EngineFailure(QueryError):
    """DuckDB raised while running an already-governed query. ``kind`` is the exception class
    name only; DuckDB's message is never kept because it can echo data values."""

    def __init__(self, kind: str, *, consumer: str | None = None) -> None:
        self.kind = kind
        super().__init__(
            f"the query failed while running ({kind}); details are withheld because engine "
            f"messages can contain data values",
            consumer=consumer,
            hint="check types, casts and divisions in the query, then run it again",
        )


def connect(
    allowed_paths: Sequence[str], *, threads: int | None = None, memory_limit: str | None = None
):
    """An in-memory DuckDB connection that can read only under ``allowed_paths``, locked."""
    duckdb = _duckdb()
    limits = EngineLimits()
    config = dict(CONNECT_SETTINGS)
    config["threads"] = threads or limits.threads
    config["memory_limit"] = memory_limit or limits.memory_limit
    con = duckdb.connect(":memory:", config=config)
    # allowed_paths lists single files; allowed_directories lists directory prefixes. Data roots
    # are directories, so they go to the latter, with a trailing separator so that '/data'
    # does not also allow '/data2'.
    roots = sorted({os.path.join(os.path.realpath(str(p)), "") for p in allowed_paths})
    con.execute("SET allowed_directories = ?", [roots])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def run_arrow(con, sql: str, *, timeout_s: float | None, consumer: str | None = None) -> pa.Table:
    """Run governed ``sql`` on a fresh cursor and read the whole Arrow result.

    Engine errors become :class:`EngineFailure` (class name only) or :class:`QueryTimeout`.
    """
    duckdb = _duckdb()
    cursor = con.cursor()
    timer = None
    fired = threading.Event()
    if timeout_s:

        def _interrupt() -> None:
            fired.set()
            cursor.interrupt()

        timer = threading.Timer(timeout_s, _interrupt)
        timer.daemon = True
        timer.start()
    try:
        return cursor.sql(sql).to_arrow_table()
    except duckdb.Error as exc:
        if fired.is_set() or isinstance(exc, duckdb.InterruptException):
            raise QueryTimeout(
                f"the query ran longer than {timeout_s:g} s and was interrupted",
                consumer=consumer,
                hint="add filters or a LIMIT, or ask for a longer timeout",
            ) from None
        raise EngineFailure(type(exc).__name__, consumer=consumer) from None
    finally:
        if timer is not None:
            timer.cancel()
        cursor.close()


def serialize_sql(con, sql: str) -> str:
    """DuckDB's own parse of ``sql`` as JSON (``json_serialize_sql``), for cross-checks."""
    cursor = con.cursor()
    try:
        row = cursor.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    finally:
        cursor.close()
    assert row is not None
    return str(row[0])


def bind_errors(
    setup: Sequence[str], statements: Sequence[str], *, timeout_s: float = 10.0
) -> list[str | None]:
    """Run ``statements`` one by one on a new locked-down connection, after ``setup`` (which
    creates empty tables): DuckDB's message for each one that fails, None for each that runs.

    For checking policy SQL against declared schemas before any data exists. The connection
    reads no file and its tables are empty, so unlike :class:`EngineFailure` the messages are
    kept: they cannot contain data values.
    """
    duckdb = _duckdb()
    con = connect([])
    try:
        try:
            for sql in setup:
                con.execute(sql)
        except duckdb.Error as exc:
            return [f"the declared tables cannot be created: {exc}"] * len(statements)
        errors: list[str | None] = []
        for sql in statements:
            cursor = con.cursor()
            timer = threading.Timer(timeout_s, cursor.interrupt)
            timer.daemon = True
            timer.start()
            try:
                cursor.execute(sql).fetchall()
                errors.append(None)
            except duckdb.InterruptException:
                errors.append(f"it ran longer than {timeout_s:g} s on empty tables")
            except duckdb.Error as exc:
                errors.append(str(exc))
            finally:
                timer.cancel()
                cursor.close()
        return errors
    finally:
        con.close()
