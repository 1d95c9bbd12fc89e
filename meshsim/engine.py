"""The one module that imports duckdb: a hardened connection and a guarded query runner.

Hardening, in this order (setting names checked on DuckDB 2.0 with ``duckdb_settings()``):
extension autoload/autoinstall and community extensions off, Python replacement scans off,
the external file cache off, explicit threads and memory limit, then ``allowed_directories``
(the data roots), then ``enable_external_access=false`` and ``lock_configuration=true`` last.
These settings are defence in depth; the boundary is the rule pipeline of
``meshsim.query.pipeline``, which ends by checking what DuckDB bound.

Each call runs on a fresh cursor, with a timer thread that calls ``interrupt()`` when the
time left passes (DuckDB has no statement timeout). Results come back as Arrow tables, read
batch by batch under row and byte limits.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
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


#: Settings of every connection that are not the connect config's (the Parquet extension
#: they belong to is loaded by then), set GLOBAL so that every cursor has them. DuckDB's
#: Parquet footer cache stays off: it trusts a cached footer while the file's size and
#: modification time are unchanged, so a file rewritten in place at the same size with its
#: old time put back (a registered table another tool manages, a copy that keeps times) was
#: pruned by the old row-group statistics and returned wrong rows (an outside review). Its
#: gain was small (the benchmark's layout section measures it).
QUERY_SETTINGS: dict[str, bool | int | str] = {"parquet_metadata_cache": False}


#: Arrow schema metadata key of a result: DuckDB's type of each column, as JSON (Arrow alone
#: cannot tell a HUGEINT from a DECIMAL(38,0), which Python receives differently)
DUCKDB_TYPES = b"meshsim.duckdb_types"


def _duckdb():
    import duckdb

    return duckdb


@dataclass(frozen=True)
class EngineLimits:
    """Resource bounds of governed queries. ``timeout_s`` covers planning and execution;
    results larger than ``max_result_rows`` rows or ``max_result_bytes`` bytes (Arrow
    buffers) fail with an error naming the limit instead of filling memory."""

    threads: int = 2
    memory_limit: str = "1GB"
    timeout_s: float | None = 30.0
    max_result_rows: int = 10_000_000
    max_result_bytes: int = 2 * 1024**3


class ResultTooLarge(QueryError):
    """The result passed one of the engine's result limits; it was not returned."""


class QueryTimeout(QueryError):
    """The query ran longer than the engine's timeout and was interrupted."""


class QueryCancelled(QueryTimeout):
    """The query was interrupted on request (:func:`interrupt_queries`, the shell's Ctrl-C)."""


#: cursors running a governed statement now, and those :func:`interrupt_queries` interrupted
_running: set[Any] = set()
_cancelled: set[Any] = set()
_running_lock = threading.Lock()


def interrupt_queries() -> int:
    """Interrupt every governed statement running in this process (they fail with
    :class:`QueryCancelled`); returns how many. Safe to call from any thread."""
    with _running_lock:
        cursors = list(_running)
        _cancelled.update(cursors)
    for cursor in cursors:
        cursor.interrupt()
    return len(cursors)


class EngineFailure(QueryError):
    """DuckDB raised while running an already-governed query. ``kind`` is the exception class
    name only; DuckDB's message is never kept because it can echo data values, except a
    binder message of one of the shapes of :data:`BINDER_MESSAGES` (``detail``), which name
    only types or a column of the consumer's own query."""

    def __init__(
        self, kind: str, *, consumer: str | None = None, detail: str = "", file: str = ""
    ) -> None:
        self.kind = kind
        self.detail = detail
        #: the data file DuckDB could not read, when its message names one (never shown as
        #: such: the caller names the table and the file's name, see meshsim.query.pipeline)
        self.file = file
        if detail:
            message = f"the query cannot be planned ({kind}): {detail}"
        else:
            message = (
                f"the query failed while running ({kind}); details are withheld because "
                f"engine messages can contain data values"
            )
        super().__init__(
            message,
            consumer=consumer,
            hint="check types, casts and divisions in the query, then run it again",
        )


#: DuckDB's message for a data file whose contents it cannot decode (size and footer intact)
_UNREADABLE_FILE = re.compile(r'Failed to read file "([^"]+)"')

#: Binder messages shown to the consumer: their first line, when it has one of these shapes
#: (names only types, or a plain column name of the consumer's query); any other message is
#: withheld. The column shape refuses meshsim's internal names, in any part of the name.
BINDER_MESSAGES = (
    re.compile(
        r'column "(?:(?!__meshsim)\w+\.)*(?!__meshsim)(\w+)" must appear in the GROUP BY clause '
        r"or must be part of an aggregate function\."
    ),
    re.compile(
        r"No function matches the given name and argument types '[\w+\-*/%|&~!<>=]+"
        r"\([A-Z0-9_, ()\[\]]*\)'\."
    ),
    re.compile(r"aggregate function calls cannot be nested"),
    re.compile(
        r"(WHERE|GROUP BY|JOIN|HAVING) clause cannot contain (aggregates|window functions)!"
    ),
)


def binder_detail(message: str) -> str:
    """The part of a DuckDB binder message a consumer may see ('' if none)."""
    first = message.split("\n", 1)[0].removeprefix("Binder Error: ")
    for shape in BINDER_MESSAGES:
        match = shape.match(first)
        if match:
            return match.group(0)
    return ""


def connect(
    allowed_paths: Sequence[str],
    *,
    threads: int | None = None,
    memory_limit: str | None = None,
    settings: Mapping[str, bool | int | str] | None = None,
):
    """An in-memory DuckDB connection that can read only under ``allowed_paths``, locked;
    ``settings`` (``parquet_metadata_cache``...) are set before the lock (the benchmark's
    layout section compares them)."""
    con = _open(threads, memory_limit)
    for name, value in (settings or {}).items():
        if not re.fullmatch(r"[a-z_]+", name):
            raise QueryError(f"not a DuckDB setting name: {name!r}")
        con.execute(f"SET GLOBAL {name} = ?", [value])
    return _harden(con, allowed_paths)


def regex_error(pattern: str) -> str | None:
    """Why DuckDB's RE2 refuses ``pattern`` (None: it compiles), as a quality rule runs it
    (``regexp_full_match``): RE2 has no lookaround and no backreferences."""
    from sqlglot import exp

    duckdb = _duckdb()
    query = exp.select(
        exp.Anonymous(
            this="regexp_full_match",
            expressions=[exp.Literal.string(""), exp.Literal.string(pattern)],
        )
    )
    con = duckdb.connect(":memory:")
    try:
        con.execute(query.sql(dialect="duckdb")).fetchall()
    except duckdb.Error as exc:
        return str(exc).split("\n", 1)[0].split(": ", 1)[-1]
    finally:
        con.close()
    return None


#: DuckDB's reader of each input file format: table sources and producers' writes
FILE_READERS = {"csv": "read_csv", "parquet": "read_parquet", "json": "read_json"}


class SourceReadError(ValueError):
    """DuckDB could not read a file; ``message`` is DuckDB's, shortened to what says why. Kept,
    unlike :class:`EngineFailure`'s: the data is the caller's own (a producer's files)."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


def read_files(
    paths: Sequence[str],
    kind: str,
    options: dict[str, Any] | None = None,
    *,
    limit: int | None = None,
) -> pa.Table:
    """Read local ``paths`` (all of one ``kind`` of :data:`FILE_READERS`) into one Arrow table
    with DuckDB's reader and its named ``options`` (bound as parameters), on a connection that
    may read only the folders holding them. ``limit=0`` reads the schema only (DuckDB's type
    detection). A file DuckDB cannot read raises :class:`SourceReadError`.

    A CSV file is read with ``skip=0`` unless ``options`` say otherwise: DuckDB's sniffer
    otherwise detects rows to skip and drops every line above the most regular block without
    a word (a stray first line vanished; a ragged last row was loaded alone).

    >>> read_files(["a.xml"], "xml")
    Traceback (most recent call last):
    ...
    ValueError: unknown file kind 'xml' (kinds: csv, parquet, json)
    """
    sql, options = _file_query(paths, kind, options, limit)
    return _run_reader(paths, sql, options, lambda result: result.to_arrow_table())


def file_columns(
    paths: Sequence[str], kind: str, options: dict[str, Any] | None = None
) -> list[tuple[str, str]]:
    """The columns DuckDB's reader detects in ``paths``: (name, DuckDB type) in file order."""
    sql, options = _file_query(paths, kind, options, 0)
    rows = _run_reader(paths, f"DESCRIBE {sql}", options, lambda result: result.fetchall())
    return [(str(row[0]), str(row[1])) for row in rows]


def _file_query(
    paths: Sequence[str], kind: str, options: dict[str, Any] | None, limit: int | None
) -> tuple[str, dict[str, Any]]:
    from sqlglot import exp

    if kind not in FILE_READERS:
        raise ValueError(f"unknown file kind '{kind}' (kinds: {', '.join(FILE_READERS)})")
    options = dict(options or {})
    if kind == "csv":
        options.setdefault("skip", 0)
    arguments: list[exp.Expr] = [exp.Array(expressions=[exp.Literal.string(str(p)) for p in paths])]
    for name in options:  # names from the source models' fields; values bound as $name
        arguments.append(exp.EQ(this=exp.column(name), expression=exp.Placeholder(this=name)))
    reader = exp.Anonymous(this=FILE_READERS[kind], expressions=arguments)
    query = exp.select(exp.Star()).from_(exp.Table(this=reader))
    if limit is not None:
        query = query.limit(limit)
    sql = query.sql(dialect="duckdb")
    columns = options.get("columns") if kind == "json" else None
    texts = [n for n, t in columns.items() if t == "JSON"] if isinstance(columns, dict) else []
    if texts:
        sql = f"SELECT * REPLACE ({', '.join(_json_text(n) for n in texts)}) FROM ({sql})"
    return sql, options


def _json_text(name: str) -> str:
    """A text column read as JSON: its strings unquoted, NULL for null, anything else (a
    number, a bool, an object) an error naming the column: never printed anew as text."""
    from sqlglot import exp

    column = exp.column(name, quoted=True).sql(dialect="duckdb")
    label = exp.Literal.string(f"column '{name}' holds a JSON ").sql(dialect="duckdb")
    return (
        f"CASE WHEN {column} IS NULL OR json_type({column}) IN ('VARCHAR', 'NULL') "
        f"THEN {column} ->> '$' ELSE error({label} || lower(json_type({column})) || "
        f"', not a string: quote the value') END AS {column}"
    )


def _run_reader(
    paths: Sequence[str], sql: str, options: dict[str, Any], fetch: Callable[[Any], Any]
) -> Any:
    duckdb = _duckdb()
    con = connect(sorted({os.path.dirname(os.path.realpath(p)) for p in paths}))
    try:
        return fetch(con.sql(sql, params=options or None))
    except duckdb.Error as exc:
        raise SourceReadError(_reader_message(str(exc))) from None
    finally:
        con.close()


#: parsed statements one engine keeps (a scan-heavy TPC-H statement's parse is small next to
#: the data it reads; 128 covers a notebook's working set of queries)
MAX_PARSED = 128


class ParsedStatements:
    """DuckDB's parse of each governed statement, made once per text, least recently used
    dropped first. DuckDB's relation API parses a text when the relation is made and again
    when it runs; a governed statement names every column and data file of each scan, so its
    parse costs 1 to 2 ms where the consumer's text costs 0.1 to 0.3 ms. A relation made from
    the kept parse skips the first one; the same text always parses the same, so nothing that
    was checked is skipped."""

    def __init__(self, size: int = MAX_PARSED) -> None:
        self.size = size
        self._statements: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, cursor: Any, sql: str) -> Any:
        """The parsed statement of ``sql`` (parsed on ``cursor`` the first time), or ``sql``
        itself when it is not exactly one statement (the relation API then says why)."""
        with self._lock:
            statement = self._statements.get(sql)
            if statement is not None:
                self._statements.move_to_end(sql)
                return statement
        statements = cursor.extract_statements(sql)
        if len(statements) != 1:
            return sql
        with self._lock:
            self._statements[sql] = statements[0]
            while len(self._statements) > self.size:
                self._statements.popitem(last=False)
        return statements[0]

    def __len__(self) -> int:
        return len(self._statements)


@dataclass
class GovernedDuckDB:
    """The governed engine's DuckDB: ``con`` runs queries; ``verifier`` is a cursor whose
    optimizer is off, so ``EXPLAIN`` on it shows the plan exactly as DuckDB *bound* it (the
    optimizer may replace a scan by what it learnt from the file, e.g. ``count(*)`` from
    Parquet metadata, and hide it from an optimized plan). One verifier, used under a lock:
    its setting can only be made before the configuration is locked."""

    con: Any
    verifier: Any
    lock: threading.Lock
    #: scan SQL -> name of its empty stand-in table on the verifier, least recently used first
    stand_ins: OrderedDict[str, str] = field(default_factory=OrderedDict)
    #: shapes of statements the verifier bound and its caller accepted (:func:`accept_shape`)
    accepted_shapes: OrderedDict[str, None] = field(default_factory=OrderedDict)
    #: governed statements as DuckDB parsed them, for :func:`run_arrow`
    parsed: ParsedStatements = field(default_factory=ParsedStatements)

    def close(self) -> None:
        with self.lock:
            self.verifier.close()
            self.stand_ins.clear()
            self.accepted_shapes.clear()
        self.con.close()


#: stand-in tables one verifier keeps (each an empty table: a few KB of catalog)
MAX_STAND_INS = 512
#: accepted statement shapes one verifier keeps (each a digest)
MAX_ACCEPTED_SHAPES = 4096
_STAND_IN_NAME = re.compile(r"^[a-z0-9_]+$")


def open_governed(
    allowed_paths: Sequence[str], *, threads: int | None = None, memory_limit: str | None = None
) -> GovernedDuckDB:
    con = _open(threads, memory_limit)
    verifier = con.cursor()
    verifier.execute("PRAGMA disable_optimizer")
    return GovernedDuckDB(_harden(con, allowed_paths), verifier, threading.Lock())


def _open(threads: int | None, memory_limit: str | None):
    duckdb = _duckdb()
    limits = EngineLimits()
    config = dict(CONNECT_SETTINGS)
    config["threads"] = threads or limits.threads
    config["memory_limit"] = memory_limit or limits.memory_limit
    con = duckdb.connect(":memory:", config=config)
    for name, value in QUERY_SETTINGS.items():
        con.execute(f"SET GLOBAL {name} = ?", [value])
    # Delta timestamps are instants in UTC; a Parquet timestamp Spark wrote as INT96 or not
    # marked UTC-adjusted is cast in the session's zone, which must not be the machine's (a
    # setting of the built-in ICU extension, so it cannot go in the connect config)
    con.execute("SET TimeZone = 'UTC'")
    return con


def _harden(con, allowed_paths: Sequence[str]):
    # allowed_paths lists single files; allowed_directories lists directory prefixes. Data roots
    # are directories, so they go to the latter, with a trailing separator so that '/data'
    # does not also allow '/data2'. DuckDB resolves symbolic links in these and in every path
    # it opens itself, so they are made absolute only: resolving them here too stat'ed every
    # component of every registered table's location, each time an engine opened.
    roots = sorted({os.path.join(os.path.abspath(str(p)), "") for p in allowed_paths})
    con.execute("SET allowed_directories = ?", [roots])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def run_arrow(
    con,
    sql: str,
    *,
    timeout_s: float | None,
    consumer: str | None = None,
    max_rows: int | None = None,
    max_bytes: int | None = None,
    limit_s: float | None = None,
    parsed: ParsedStatements | None = None,
) -> pa.Table:
    """Run governed ``sql`` on a fresh cursor and read the Arrow result, batch by batch, up
    to ``max_rows`` rows and ``max_bytes`` bytes (:class:`ResultTooLarge` past either). The
    result's schema metadata holds DuckDB's column types under :data:`DUCKDB_TYPES`. With
    ``parsed``, the statement is parsed once per text (:class:`ParsedStatements`).

    Engine errors become :class:`EngineFailure` (class name only) or :class:`QueryTimeout`.
    """
    import pyarrow as pa

    def read(cursor) -> pa.Table:
        relation = cursor.sql(parsed.of(cursor, sql) if parsed is not None else sql)
        types = [str(t) for t in relation.types]
        reader = relation.arrow()
        batches, rows, size = [], 0, 0
        for batch in reader:
            rows += batch.num_rows
            size += batch.nbytes
            if max_rows is not None and rows > max_rows:
                raise ResultTooLarge(
                    f"the result has more than {max_rows:,} rows (limit max_result_rows); "
                    f"nothing was returned",
                    consumer=consumer,
                    hint="add a LIMIT or aggregate, or raise the limit",
                )
            if max_bytes is not None and size > max_bytes:
                raise ResultTooLarge(
                    f"the result is larger than {max_bytes:,} bytes (limit max_result_bytes); "
                    f"nothing was returned",
                    consumer=consumer,
                    hint="select fewer columns, add a LIMIT, or raise the limit",
                )
            batches.append(batch)
        table = pa.Table.from_batches(batches, schema=reader.schema)
        return table.replace_schema_metadata({DUCKDB_TYPES: json.dumps(types)})

    return _guarded(con, read, timeout_s=timeout_s, consumer=consumer, limit_s=limit_s)


def run_statement(
    con,
    sql: str,
    *,
    timeout_s: float | None,
    consumer: str | None = None,
    limit_s: float | None = None,
) -> None:
    """Run meshsim's own statement ``sql`` (a ``CREATE TABLE ... AS``) on a fresh cursor,
    under a time limit; engine errors as in :func:`run_arrow`."""
    _guarded(
        con,
        lambda cursor: cursor.execute(sql),
        timeout_s=timeout_s,
        consumer=consumer,
        limit_s=limit_s,
    )


def load_arrow(con, name: str, data: pa.Table) -> None:
    """Store ``data`` as the table ``name`` of ``con``'s database, visible to every cursor
    (an Arrow object registered on a connection is seen by that connection only)."""
    from sqlglot import exp

    staged = f"{name}_arrow"
    con.register(staged, data)
    try:
        create = exp.Create(
            kind="TABLE",
            this=exp.to_table(name, quoted=True),
            expression=exp.select("*").from_(exp.to_table(staged, quoted=True)),
            replace=True,
        )
        con.execute(create.sql(dialect="duckdb"))
    finally:
        con.unregister(staged)


#: rows per batch of :func:`sorted_rows`'s stream
SORTED_BATCH_ROWS = 256 * 1024


def sorted_rows(
    data: pa.Table | pa.RecordBatchReader, columns: Sequence[str], *, spill_dir: str
) -> pa.RecordBatchReader:
    """``data``'s rows in order of ``columns`` (ascending, nulls last), as a stream of its own
    schema. DuckDB sorts within the engine's memory limit and spills the rest under
    ``spill_dir`` (a table larger than memory sorts too); the stream closes its connection
    when read to the end."""
    import pyarrow as pa
    from sqlglot import exp

    con = _open(None, None)
    con.execute("SET temp_directory = ?", [spill_dir])
    con.execute("SET preserve_insertion_order = false")
    con.register("meshsim_rows", data)
    keys = [exp.Ordered(this=exp.column(c, quoted=True), nulls_first=False) for c in columns]
    query = exp.select("*").from_(exp.to_table("meshsim_rows", quoted=True)).order_by(*keys)
    schema = data.schema

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            for batch in con.sql(query.sql(dialect="duckdb")).to_arrow_reader(SORTED_BATCH_ROWS):
                # DuckDB's own Arrow types (a string for a large_string...) back to the input's
                yield batch.cast(schema)
        finally:
            con.close()

    return pa.RecordBatchReader.from_batches(schema, batches())


def explain_bound(
    db: GovernedDuckDB,
    sql: str,
    *,
    timeout_s: float | None,
    consumer: str | None = None,
    limit_s: float | None = None,
) -> str:
    """DuckDB's plan of ``sql`` as bound, unoptimized, as JSON (``EXPLAIN (FORMAT JSON)`` on
    the verifier), for :func:`meshsim.query.verify.verify_bound_plan`. Nothing is executed."""

    def explain(cursor) -> str:
        rows = cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}").fetchall()
        return str(rows[0][1]) if rows else "[]"

    with db.lock:
        return _guarded(
            db.con,
            explain,
            timeout_s=timeout_s,
            consumer=consumer,
            limit_s=limit_s,
            cursor=db.verifier,
        )


def explain_with_stand_ins(
    db: GovernedDuckDB,
    sql: str,
    stand_ins: dict[str, str],
    *,
    timeout_s: float | None,
    consumer: str | None = None,
    limit_s: float | None = None,
    check: Callable[[str], str] | None = None,
) -> str:
    """:func:`explain_bound` of ``sql``, which names each ``stand_ins`` key (a table name) in
    place of the value (a SELECT): an empty table of the SELECT's columns and types, created
    on the verifier the first time (binding the SELECT, nothing run) and kept, so that the
    plan of a short statement is checked without binding the SELECTs again. With ``sql``
    empty, only the stand-ins are made (an engine's warm-up).

    With ``check``, DuckDB's parse of ``sql`` (``json_serialize_sql``) is passed to it first,
    in the same call: it raises to refuse, and then nothing is bound; else it returns the
    statement's shape. A shape this verifier bound before and the caller then accepted
    (:func:`accept_shape`) is not bound again: '' is returned. The EXPLAIN is parsed once
    and its one statement bound as parsed (binding from the text parses it again, which
    cost as much as the binding itself); text that is not exactly one statement is refused."""

    def explain(cursor) -> str:
        _make_stand_ins(db, cursor, stand_ins)
        if not sql:
            return "[]"
        if check is not None:
            row = cursor.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
            shape = check(str(row[0]) if row else "{}")
            if shape in db.accepted_shapes:
                db.accepted_shapes.move_to_end(shape)
                return ""
        statements = cursor.extract_statements(f"EXPLAIN (FORMAT JSON) {sql}")
        if len(statements) != 1:
            raise QueryError(
                "the rewritten query failed meshsim's final safety check (not exactly one "
                "statement); nothing was run",
                consumer=consumer,
            )
        rows = cursor.execute(statements[0]).fetchall()
        return str(rows[0][1]) if rows else "[]"

    with db.lock:
        return _guarded(
            db.con,
            explain,
            timeout_s=timeout_s,
            consumer=consumer,
            limit_s=limit_s,
            cursor=db.verifier,
        )


def accept_shape(db: GovernedDuckDB, shape: str) -> None:
    """The plan of a statement of this shape (a ``check`` result of
    :func:`explain_with_stand_ins`) was bound on ``db``'s verifier and accepted."""
    with db.lock:
        db.accepted_shapes[shape] = None
        db.accepted_shapes.move_to_end(shape)
        while len(db.accepted_shapes) > MAX_ACCEPTED_SHAPES:
            db.accepted_shapes.popitem(last=False)


def _make_stand_ins(db: GovernedDuckDB, cursor: Any, stand_ins: dict[str, str]) -> None:
    bad = [name for name in stand_ins if not _STAND_IN_NAME.match(name)]
    if bad:
        raise ValueError(f"stand-in table names are lower-case words, not {bad[0]!r}")
    for name, select in stand_ins.items():
        if db.stand_ins.get(select) == name:
            db.stand_ins.move_to_end(select)
            continue
        cursor.execute(f'CREATE OR REPLACE TEMP TABLE "{name}" AS {select} WITH NO DATA')
        db.stand_ins[select] = name
    while len(db.stand_ins) > max(MAX_STAND_INS, len(stand_ins)):
        _, old = db.stand_ins.popitem(last=False)
        cursor.execute(f'DROP TABLE IF EXISTS temp."{old}"')


def _guarded(
    con,
    call,
    *,
    timeout_s: float | None,
    consumer: str | None,
    limit_s: float | None = None,
    cursor=None,
):
    """``call(cursor)`` on a fresh cursor, interrupted after ``timeout_s`` seconds (the time
    left of the query's ``limit_s``). DuckDB's optimizer does not look at interrupts, so a
    call that returns late still times out; query size limits bound how late."""
    duckdb = _duckdb()
    if timeout_s is not None and timeout_s <= 0:
        raise _timeout(limit_s or timeout_s, consumer)
    from meshsim.watchdog import WATCHDOG

    own_cursor = cursor is None
    cursor = con.cursor() if cursor is None else cursor
    watched, fired = WATCHDOG.watch(cursor, timeout_s) if timeout_s else (None, threading.Event())
    with _running_lock:
        _running.add(cursor)
    try:
        result = call(cursor)
    except duckdb.Error as exc:
        if cursor in _cancelled:
            raise QueryCancelled(
                "the query was cancelled", consumer=consumer, hint="run it again when ready"
            ) from None
        if fired.is_set() or isinstance(exc, duckdb.InterruptException):
            raise _timeout(limit_s or timeout_s, consumer) from None
        detail = binder_detail(str(exc)) if isinstance(exc, duckdb.BinderException) else ""
        unreadable = _UNREADABLE_FILE.search(str(exc))
        raise EngineFailure(
            type(exc).__name__,
            consumer=consumer,
            detail=detail,
            file=unreadable.group(1) if unreadable else "",
        ) from None
    finally:
        with _running_lock:
            _running.discard(cursor)
            _cancelled.discard(cursor)
        if watched is not None:
            WATCHDOG.release(watched)  # before the cursor is closed: it is never interrupted after
        if own_cursor:
            cursor.close()
    if fired.is_set():
        raise _timeout(limit_s or timeout_s, consumer)
    return result


def _timeout(limit_s: float | None, consumer: str | None) -> QueryTimeout:
    return QueryTimeout(
        f"the query ran longer than {limit_s or 0:g} s (planning and execution) and was "
        f"interrupted",
        consumer=consumer,
        hint="add filters or a LIMIT, or ask for a longer timeout",
    )


_TYPE_NAMES: dict[str, str] = {}


def type_name(con, sql_type: str) -> str:
    """DuckDB's own name of ``sql_type`` (``TEXT`` is ``VARCHAR``), as DESCRIBE shows it.
    ``sql_type`` is meshsim's generated type text, never a consumer's."""
    if sql_type not in _TYPE_NAMES:
        cursor = con.cursor()
        try:
            row = cursor.execute(f"SELECT typeof(CAST(NULL AS {sql_type}))").fetchone()
        finally:
            cursor.close()
        assert row is not None
        _TYPE_NAMES[sql_type] = str(row[0])
    return _TYPE_NAMES[sql_type]


def serialize_sql(con, sql: str) -> str:
    """DuckDB's own parse of ``sql`` as JSON (``json_serialize_sql``), for cross-checks."""
    cursor = con.cursor()
    try:
        row = cursor.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    finally:
        cursor.close()
    assert row is not None
    return str(row[0])


def deserialize_sql(con, serialized: Sequence[str]) -> list[str] | None:
    """DuckDB's own printing of each parse tree (``json_deserialize_sql``), in one call;
    None if it cannot print one of them."""
    duckdb = _duckdb()
    if not serialized:
        return []
    calls = ", ".join("json_deserialize_sql(?::JSON)" for _ in serialized)
    cursor = con.cursor()
    try:
        row = cursor.execute(f"SELECT {calls}", list(serialized)).fetchone()
    except duckdb.Error:
        return None
    finally:
        cursor.close()
    return None if row is None else [str(v) for v in row]


def _each(con, statements: Sequence[str], timeout_s: float) -> Iterator[tuple[Any, Any]]:
    """Run ``statements`` one by one, each interrupted after ``timeout_s``: (first row or None,
    None) for one that runs, (None, the duckdb.Error) for one that fails."""
    duckdb = _duckdb()
    for sql in statements:
        cursor = con.cursor()
        timer = threading.Timer(timeout_s, cursor.interrupt)
        timer.daemon = True
        timer.start()
        try:
            outcome: tuple[Any, Any] = (cursor.execute(sql).fetchone(), None)
        except duckdb.Error as exc:
            outcome = (None, exc)
        finally:
            timer.cancel()
            timer.join()  # see _guarded
            cursor.close()
        yield outcome


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
        for _, error in _each(con, statements, timeout_s):
            if isinstance(error, duckdb.InterruptException):
                errors.append(f"it ran longer than {timeout_s:g} s on empty tables")
            else:
                errors.append(None if error is None else str(error))
        return errors
    finally:
        con.close()


def scalar_answers(statements: Sequence[str], *, timeout_s: float = 10.0) -> list[Any]:
    """Run each of ``statements`` (queries over literals only) on a new locked-down connection
    that reads no file: the first value of each one's first row, None for one that fails.

    For judging policy SQL on probe values (e.g. whether a mask returns its input)."""
    con = connect([])
    try:
        return [row[0] if row else None for row, _ in _each(con, statements, timeout_s)]
    finally:
        con.close()


def _reader_message(text: str) -> str:
    """DuckDB's reader error in one line: its first line, and for a CSV error the line of the
    file and the conversion that failed (the rest is the sniffer's settings)."""
    import re

    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "unreadable"
    line = re.search(r"CSV Error on Line: (\d+)", text)
    conversion = re.search(r"Could not convert (.*)$", text, re.MULTILINE)
    if line and conversion:
        return f"line {line.group(1)}: could not convert {conversion.group(1).strip()}"
    first = lines[0]
    detail = next((line for line in lines[1:] if line.startswith("Error when")), None)
    if detail is None and len(lines) > 1 and lines[1].startswith("Original Line"):
        detail = lines[2] if len(lines) > 2 else None
    return f"{first}: {detail}" if detail else first
