"""The one module that imports pyspark: run a verified governed plan on Apache Spark.

The plan is the one the rules built and verified for DuckDB; :mod:`meshsim.engines.spark_sql`
writes it as Spark SQL with every storage read bound to a view over a DataFrame of exactly
the snapshot's files (Spark's Parquet reader with the Delta schema given, not Spark's Delta
reader: meshsim resolves the Delta log, column mapping, partition values and deletion
vectors itself, as for DuckDB). Before anything runs, Spark's *analysed* plan is checked the
way :mod:`meshsim.query.verify` checks DuckDB's: every leaf is a Parquet relation, a local
relation meshsim made, a CTE reference or a constant row (a range only when the consumer's
query asks for one), and the files its relations read are among the files bound for the
query. A catalog table, another data source or another file refuses the query.

The session is local (``local[2]``, UI off, few shuffle partitions, UTC) and reused across
queries in a process; ``SPARK_REMOTE`` (Spark Connect) or ``MESHSIM_SPARK_MASTER`` point it at
a cluster, which must see the workspace's files at the same paths.
"""

from __future__ import annotations

import atexit
import functools
import itertools
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from meshsim.errors import QueryError
from meshsim.query.verify import PlanRefused

if TYPE_CHECKING:
    import pyarrow as pa

    from meshsim.engines.spark_sql import ParquetRead
    from meshsim.query.rewrite import Plan
    from meshsim.storage.snapshot import DataFile, Snapshot

#: settings of the local session (names as in Spark 4's configuration docs)
LOCAL_SETTINGS: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.caseSensitive": "true",  # names are matched exactly, as meshsim resolved them
    "spark.sql.ansi.enabled": "true",
    "spark.driver.memory": "1g",
    "spark.sql.files.ignoreCorruptFiles": "false",
    "spark.sql.files.ignoreMissingFiles": "false",
}
#: settings of every session, local or remote: ``${env:HOME}``, ``${system:...}`` in a
#: literal would otherwise be replaced by the environment's and the JVM's values
SAFE_SETTINGS: dict[str, str] = {"spark.sql.variable.substitute": "false"}
#: Spark's JVM logs failing tasks with the governed SQL and data values (``== SQL ==``,
#: Executor errors) on stderr; meshsim withholds engine details, so the JVM logs nothing
#: (to a Null appender: Spark replaces a configuration without appenders with its own)
LOG4J2_PROPERTIES = """\
status = off
appender.null.type = Null
appender.null.name = discard
rootLogger.level = off
rootLogger.appenderRef.discard.ref = discard
logger.shell.name = org.apache.spark.repl.Main
logger.shell.level = off
"""
#: pyspark's own loggers of a failing query's message and SQL fragment (to stderr)
PYTHON_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger", "py4j")
MASTER_VARIABLE = "MESHSIM_SPARK_MASTER"
#: leaves of an analysed plan that read nothing outside the query (Range: with series only)
INTERNAL_LEAVES = frozenset({"LocalRelation", "OneRowRelation", "CTERelationRef"})
#: characters Hadoop's path globbing expands (meshsim's scans refuse ``*?[`` already)
HADOOP_GLOB = frozenset("*?[]{}\\")
#: the name Spark's Parquet reader gives the row index behind ``_metadata.row_index``
ROW_INDEX_COLUMN = "_tmp_metadata_row_index"
_views = itertools.count()


class SparkUnavailable(QueryError):
    """Spark cannot start here (no pyspark, no Java)."""


def _pyspark():
    try:
        import pyspark
    except ImportError:
        raise SparkUnavailable(
            "the Spark engine needs pyspark, which is not installed",
            hint="pip install 'meshsim[spark]' (Spark also needs Java 17 or newer)",
        ) from None
    return pyspark


def java_missing() -> str | None:
    """Why Spark cannot start a local JVM here, or None (a remote session needs none)."""
    if os.environ.get("SPARK_REMOTE"):
        return None
    home = os.environ.get("JAVA_HOME")
    if home and os.access(os.path.join(home, "bin", "java"), os.X_OK):
        return None
    if shutil.which("java"):
        return None
    return "Spark needs Java 17 or newer, and no 'java' was found (PATH, JAVA_HOME)"


@functools.cache
def spark_session() -> Any:
    """The process's Spark session, started on first use."""
    _pyspark()
    missing = java_missing()
    if missing:
        raise SparkUnavailable(missing, hint="install a JDK 17+, or run with --engine duckdb")
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("meshsim")
    remote = os.environ.get("SPARK_REMOTE")
    if remote:
        builder = builder.remote(remote)
        for name, value in SAFE_SETTINGS.items():
            builder = builder.config(name, value)
        session = builder.getOrCreate()
    else:
        builder = builder.master(os.environ.get(MASTER_VARIABLE, "local[2]"))
        settings = {**LOCAL_SETTINGS, **SAFE_SETTINGS, **_quiet_jvm()}
        for name, value in settings.items():
            builder = builder.config(name, value)
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("OFF")
    for logger in PYTHON_LOGGERS:
        logging.getLogger(logger).disabled = True
    for name, value in SAFE_SETTINGS.items():  # a session that existed already, too
        session.conf.set(name, value)
    return session


def _quiet_jvm() -> dict[str, str]:
    """The driver JVM's option to read :data:`LOG4J2_PROPERTIES` (a file of this process)."""
    handle, path = tempfile.mkstemp(prefix="meshsim-log4j2-", suffix=".properties")
    with os.fdopen(handle, "w") as file:
        file.write(LOG4J2_PROPERTIES)
    atexit.register(os.unlink, path)
    option = f"-Dlog4j2.configurationFile=file:{path}"
    return {"spark.driver.extraJavaOptions": option, "spark.executor.extraJavaOptions": option}


def _spark_type(dtype: pa.DataType) -> Any:
    """The Spark type of a Delta column's Arrow type (views read as their plain types)."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import from_arrow_type

    plain = {pa.string_view(): pa.string(), pa.binary_view(): pa.binary()}
    return from_arrow_type(plain.get(dtype, dtype), prefer_timestamp_ntz=True)


def _dataframe(spark: Any, read: ParquetRead, files: Mapping[str, tuple[Snapshot, DataFile]]):
    """A DataFrame over exactly ``read.paths``: the stored columns with their Delta types
    (Spark's reader matches by name, nested fields included, and fills a column a file lacks
    with NULL, as DuckDB's ``union_by_name`` does), deleted rows removed by row index."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructField, StructType

    snapshot, first = files[read.paths[0]]
    for path in read.paths:
        if HADOOP_GLOB.intersection(path) or "://" in path:
            raise PlanRefused(
                f"table '{snapshot.table}': file '{os.path.basename(path)}' (or its folder) "
                f"has a character Spark expands as a path pattern; refusing rather than "
                f"reading other files",
                hint="run this query with --engine duckdb",
            )
    fields = [
        StructField(stored, _spark_type(snapshot.column(name).type))
        for stored, name in read.columns
    ]
    frame = spark.read.schema(StructType(fields)).parquet(*read.paths)
    if not read.deletion_vector:
        return frame
    if ROW_INDEX_COLUMN in {stored for stored, _ in read.columns}:
        raise PlanRefused(
            f"table '{snapshot.table}': a file with a deletion vector stores a column named "
            f"'{ROW_INDEX_COLUMN}', the name Spark reserves for the row index that removes "
            f"the deleted rows; meshsim does not read it on Spark",
            hint="run this query with --engine duckdb",
        )
    deleted = first.deleted_rows
    assert deleted is not None and len(read.paths) == 1
    # the metadata column itself, not a data column of that name (which would shadow it)
    index = frame.metadataColumn("_metadata").getField("row_index")
    kept = frame.where(~_deleted_rows(index, sorted(int(i) for i in deleted)))
    return kept.select(*(F.col(f"`{stored}`") for stored, _ in read.columns))


def _deleted_rows(index: Any, rows: list[int]) -> Any:
    """``index`` is one of ``rows`` (sorted): runs of consecutive rows as ranges, the rest as
    one IN set. Built from expressions, not a DataFrame of rows: Spark binds a local
    DataFrame as an RDD, which the plan check (rightly) does not accept."""
    from pyspark.sql import functions as F

    singles: list[int] = []
    ranges = []
    start = 0
    for i in range(1, len(rows) + 1):
        if i < len(rows) and rows[i] == rows[i - 1] + 1:
            continue
        run = rows[start:i]
        if len(run) >= 3:
            ranges.append(index.between(run[0], run[-1]))
        else:
            singles.extend(run)
        start = i
    condition = index.isin(singles) if singles else F.lit(False)
    for between in ranges:
        condition = condition | between
    return condition


def plan_leaves(tree: str) -> list[str]:
    """The leaf operators of a Spark plan's tree string (subquery plans included)."""
    lines = [line for line in tree.splitlines() if line.strip()]
    depths, names = [], []
    for line in lines:
        node = re.sub(r"^[\s:|+\-]*", "", line)
        depths.append(len(line) - len(node))
        names.append(node)
    return [
        names[i] for i in range(len(lines)) if i + 1 == len(lines) or depths[i + 1] <= depths[i]
    ]


def _analysed(frame: Any) -> str:
    jdf = getattr(frame, "_jdf", None)
    if jdf is not None:
        return str(jdf.queryExecution().analyzed().treeString())
    text = frame._explain_string(extended=True)  # Spark Connect
    section = text.split("== Analyzed Logical Plan ==", 1)[-1]
    return section.split("== Optimized Logical Plan ==", 1)[0]


def _local_path(uri: str) -> str:
    parsed = urlparse(uri)
    return os.path.normpath(unquote(parsed.path) if parsed.scheme == "file" else uri)


def verify_spark_plan(
    frame: Any, bound: frozenset[str], *, series: bool, consumer: str | None
) -> None:
    """Refuse unless Spark's analysed plan reads only what was bound (see the module doc)."""

    def refuse(reason: str) -> PlanRefused:
        return PlanRefused(
            f"the query was refused by meshsim's plan check on Spark: {reason}; nothing was run",
            consumer=consumer,
            hint="name mesh tables as domain.table; relation names may not look like file paths",
        )

    for leaf in plan_leaves(_analysed(frame)):
        kind = leaf.split(" ", 1)[0]
        if kind == "Relation" and leaf.rstrip().endswith(" parquet"):
            continue
        if kind in INTERNAL_LEAVES or (kind == "Range" and series):
            continue
        raise refuse(f"Spark bound a source meshsim did not bind ({kind})")
    allowed = {os.path.normpath(p) for p in bound}
    for uri in frame.inputFiles():
        if _local_path(uri) not in allowed:
            raise refuse("Spark would read a file that is not in the query's snapshots")


def _failure(exc: BaseException, consumer: str | None) -> QueryError:
    """A Spark error as meshsim's: the error class only (Spark's text can echo values)."""
    from meshsim.engine import EngineFailure

    condition = getattr(exc, "getCondition", lambda: None)() or type(exc).__name__
    return EngineFailure(f"Spark {condition}", consumer=consumer)


def bind_views(spark: Any, tree: Any, snapshots: list[Snapshot]) -> tuple[str, list[ParquetRead]]:
    """Spark SQL of ``tree`` (a private copy, rewritten in place), its storage reads bound to
    temporary views over the snapshots' files; the caller drops the views."""
    from meshsim.engines.spark_sql import bind_reads, spark_sql
    from meshsim.query.rewrite import SCAN_MARK

    files = {f.path: (s, f) for s in snapshots for f in s.files}
    # the reserved marker: consumer text may not contain it, so no CTE of the consumer's can
    # take a view's name (Spark resolves a CTE before a view, in subqueries too)
    reads = bind_reads(tree, f"{SCAN_MARK}spark_{next(_views)}_")
    text = spark_sql(tree)
    bound = []
    try:
        for read in reads:
            _dataframe(spark, read, files).createOrReplaceTempView(read.view)
            bound.append(read)
    except BaseException:
        for read in bound:
            spark.catalog.dropTempView(read.view)
        raise
    return text, reads


def run_plan(
    plan: Plan,
    snapshots: list[Snapshot],
    *,
    consumer: str,
    timeout_s: float | None,
    max_rows: int,
    max_bytes: int,
) -> pa.Table:
    """Run ``plan`` on Spark under the engine's limits; see the module docstring."""
    from meshsim.engine import QueryTimeout, ResultTooLarge
    from meshsim.engines.spark_sql import assemble

    spark = spark_session()
    text, reads = _catching(lambda: bind_views(spark, assemble(plan), snapshots), consumer)
    tag = f"meshsim-{reads[0].view if reads else next(_views)}"
    expired = threading.Event()

    def interrupt() -> None:
        expired.set()
        spark.interruptTag(tag)

    timer = threading.Timer(timeout_s or 0.0, interrupt)
    timer.daemon = True
    try:
        frame = _catching(lambda: spark.sql(text), consumer)
        verify_spark_plan(frame, plan.files, series=plan.series, consumer=consumer)
        if timeout_s is not None:
            timer.start()
        spark.addTag(tag)
        try:
            table = _catching(lambda: frame.limit(max_rows + 1).toArrow(), consumer)
        except QueryError:
            if expired.is_set():
                raise QueryTimeout(
                    "the query ran longer than its time limit on Spark and was interrupted",
                    consumer=consumer,
                    hint="add filters or a LIMIT, or ask for a longer timeout",
                ) from None
            raise
        finally:
            spark.removeTag(tag)
    finally:
        timer.cancel()
        for read in reads:
            spark.catalog.dropTempView(read.view)
    if table.num_rows > max_rows or table.nbytes > max_bytes:
        raise ResultTooLarge(
            f"the result has more than {max_rows:,} rows or {max_bytes:,} bytes (limits "
            f"max_result_rows, max_result_bytes); nothing was returned",
            consumer=consumer,
        )
    return table


def _catching(call: Any, consumer: str | None) -> Any:
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    try:
        return call()
    except (PySparkException, Py4JError) as exc:
        raise _failure(exc, consumer) from None
