"""The verified plan as Spark SQL: a sqlglot syntax tree rewritten, never a string edited.

The governed statement is the one the rules built for DuckDB (:mod:`meshsim.query.pipeline`);
only what Spark spells or means differently is rewritten here, like a sqlglot dialect that
overrides what differs:

* every storage read (``read_parquet([files], ...)``) becomes a view bound to a DataFrame
  over exactly those files (:class:`ParquetRead`; :mod:`meshsim.engines.spark` builds it);
  a deletion vector's row predicate is dropped because that DataFrame removes the rows;
* the masks' DuckDB functions become their exact Spark equivalents (:data:`REWRITES`);
* anything else sqlglot cannot generate for Spark, and every function sqlglot does not model
  but a Spark one of its name with checked identical meaning (:data:`SPARK_FUNCTIONS`), is
  refused with one error naming it: a function that means something else on Spark would
  return wrong values, not fail.

>>> print(spark_sql(exp.select(_fn("sha256", exp.Literal.string("a")))))
SELECT SHA2('a', 256)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError

from meshsim.engines.spark_semantics import SparkRefused, check_node
from meshsim.query.masks import MASK_META
from meshsim.storage.nested import REMAP_FUNCTION
from meshsim.storage.scan import FILE_ROW_NUMBER

if TYPE_CHECKING:
    from meshsim.query.rewrite import Plan

#: functions sqlglot does not model that Spark has with the meaning DuckDB gives them, for the
#: arguments meshsim's rewrites pass (checked value by value in tests/engines/test_spark.py)
SPARK_FUNCTIONS = frozenset({"conv", "lpad", "make_date", "timestamp_seconds"})
#: column types whose text (the keyed hash hashes ``CAST(value AS VARCHAR)``) is the same on
#: both engines; floats (``1e+20`` / ``1.0E20``) and timestamps (``+00`` offsets) are not
KEYED_HASH_TYPES = frozenset(
    {
        *exp.DataType.TEXT_TYPES,
        *exp.DataType.INTEGER_TYPES,
        exp.DataType.Type.DECIMAL,
        exp.DataType.Type.DATE,
        exp.DataType.Type.BOOLEAN,
    }
)


@dataclass(frozen=True)
class ParquetRead:
    """One storage read of a governed scan, to bind to a DataFrame named ``view``."""

    view: str
    paths: tuple[str, ...]
    #: (name stored in the files, logical column name) of every column read from the files
    columns: tuple[tuple[str, str], ...]
    #: the read is one file with a deletion vector: its rows are filtered by row index
    deletion_vector: bool


def _fn(name: str, *args: exp.Expr) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def assemble(plan: Plan) -> exp.Query:
    """The whole governed statement as one tree (a private copy): the consumer's query with
    each placeholder table replaced by its governed scan, as ``plan.sql`` splices it."""
    tree = plan.query_tree().copy()
    for table in list(tree.find_all(exp.Table)):
        scan = plan.scans.get(table.name) if not table.db else None
        if scan is None:
            continue
        if table.args.get("sample") is not None or table.args.get("pivots"):
            raise SparkRefused(
                "TABLESAMPLE and PIVOT on a mesh table are not run on Spark (sampling and "
                "pivoting differ there)",
                hint="run this query with --engine duckdb",
            )
        alias = exp.TableAlias(this=exp.to_identifier(table.alias_or_name, quoted=True))
        table.replace(exp.Subquery(this=scan.select.copy(), alias=alias))
    return tree


def bind_reads(tree: exp.Query, view_prefix: str) -> list[ParquetRead]:
    """Replace, in place, every ``read_parquet`` of ``tree`` with a view name; the reads."""
    reads: list[ParquetRead] = []
    for table in list(tree.find_all(exp.Table)):
        call = table.this
        if not isinstance(call, exp.ReadParquet):
            continue
        branch = table.find_ancestor(exp.Select)
        if branch is None or branch.args.get("from_") is not table.parent:
            raise SparkRefused("internal error: a storage read outside a governed scan")
        paths, options = call.expressions[0], call.expressions[1:]
        flags = {o.name.lower(): o.expression for o in options if isinstance(o, exp.PropertyEQ)}
        deletion_vector = bool(flags.get(FILE_ROW_NUMBER) == exp.true())
        columns = []
        for projection in branch.selects:
            if projection.find(exp.Anonymous) and any(
                f.name.lower() == REMAP_FUNCTION for f in projection.find_all(exp.Anonymous)
            ):
                raise SparkRefused(
                    f"column '{projection.alias_or_name}' is a struct whose fields the table "
                    f"stores under column mapping's physical names; Spark's CAST of a struct "
                    f"renames by position, not by name, so meshsim does not read it on Spark",
                    hint="run this query with --engine duckdb",
                )
            stored = projection.unalias()
            if isinstance(stored, exp.Cast):
                stored = stored.this
            if isinstance(stored, exp.Column):
                columns.append((stored.name, projection.alias_or_name))
        view = f"{view_prefix}{len(reads)}"
        reads.append(
            ParquetRead(
                view,
                tuple(p.name for p in paths.expressions),
                tuple(columns),
                deletion_vector,
            )
        )
        table.replace(exp.Table(this=exp.to_identifier(view, quoted=True)))
        if deletion_vector:  # the DataFrame drops the deleted rows; the predicate is DuckDB's
            branch.set("where", None)
    return reads


def _sha256(node: exp.Anonymous) -> exp.Expr:
    return exp.SHA2(this=node.expressions[0], length=exp.Literal.number(256))


def _hex_to_bigint(node: exp.Cast) -> exp.Expr:
    """``CAST('0x' || digits AS BIGINT)`` (DuckDB reads hex) as ``CAST(conv(digits, 16, 10)
    AS BIGINT)``; the digits are at most 15, so the value always fits."""
    digits = node.this.expression
    ten, sixteen = exp.Literal.number(10), exp.Literal.number(16)
    return exp.cast(_fn("conv", digits, sixteen, ten), node.to)


def _is_hex_cast(node: exp.Expr) -> bool:
    return (
        isinstance(node, exp.Cast)
        and isinstance(node.this, exp.DPipe)
        and node.this.this == exp.Literal.string("0x")
    )


def _seconds_to_timestamp(node: exp.Anonymous) -> exp.Expr:
    return _fn("timestamp_seconds", *node.expressions)


#: DuckDB spellings in meshsim's masks -> their Spark equivalents (Anonymous by name)
REWRITES: dict[str, Callable[[exp.Anonymous], exp.Expr]] = {
    "sha256": _sha256,
    "to_timestamp": _seconds_to_timestamp,
}


def _check_keyed_hash(node: exp.Cast) -> None:
    dtype = node.to
    if node.meta.get(MASK_META) == "keyed_hash" and dtype.this not in KEYED_HASH_TYPES:
        raise SparkRefused(
            f"the keyed hash of a {dtype.sql(dialect='duckdb')} column hashes the value's text, "
            f"which Spark writes differently from DuckDB; refusing rather than returning "
            f"other hashes",
            hint="run this query with --engine duckdb",
        )


def rewrite_functions(tree: exp.Expr) -> exp.Expr:
    """The masks' DuckDB functions as Spark's, in place; refuse unmodelled functions."""

    def replace(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Anonymous):
            check_node(node)  # refuse or rewrite what means something else on Spark
        if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.TIMESTAMP:
            # DuckDB's TIMESTAMP has no time zone: Spark's TIMESTAMP_NTZ (Spark's TIMESTAMP is
            # DuckDB's TIMESTAMPTZ, and meshsim's Spark session runs in UTC like its DuckDB)
            return exp.DataType.build("TIMESTAMPNTZ")
        if isinstance(node, exp.Avg) and not node.meta.get("meshsim_double"):
            # DuckDB's avg is a DOUBLE for integers and decimals alike; Spark's keeps a
            # decimal's type, rounded to its scale + 4 digits
            double = exp.cast(node.this, exp.DataType.build("double"))
            node.set("this", double)
            node.meta["meshsim_double"] = True
        if isinstance(node, exp.Cast):
            _check_keyed_hash(node)
            if _is_hex_cast(node):
                return _hex_to_bigint(node)
        if isinstance(node, exp.Anonymous):
            name = node.name.lower()
            if name in REWRITES:
                return REWRITES[name](node)
            if name not in SPARK_FUNCTIONS:
                raise SparkRefused(
                    f"function '{node.name}' has no checked Spark equivalent in meshsim; "
                    f"refusing rather than running Spark's function of that name",
                    hint="run this query with --engine duckdb",
                )
        return node

    # children first: a rewrite (the hex cast) keeps the nodes below it, rewritten already
    for node in reversed(list(tree.dfs())):
        new = replace(node)
        if new is not node:
            if node is tree:
                return new
            node.replace(new)
    return tree


def spark_sql(tree: exp.Expr) -> str:
    """Spark SQL of ``tree`` (rewritten in place), or SparkRefused naming what Spark lacks."""
    for node in tree.find_all(exp.Table):
        if node.args.get("sample") is not None:
            raise SparkRefused(
                "TABLESAMPLE samples differently on Spark, so meshsim does not run it there",
                hint="run this query with --engine duckdb",
            )
    tree = rewrite_functions(tree)
    try:
        text = tree.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        raise SparkRefused(
            f"the query uses something sqlglot cannot write as Spark SQL ({exc})",
            hint="run this query with --engine duckdb",
        ) from None
    if "${" in text:  # defence in depth: the session also turns variable substitution off
        raise SparkRefused(
            "'${' in a literal or name: Spark would substitute a variable there (environment, "
            "JVM properties, settings); meshsim does not run it on Spark",
            hint="run this query with --engine duckdb, or avoid '${' in the text",
        )
    return text
