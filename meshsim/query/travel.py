"""Time travel in rule resolve: which version a table reference reads, and the columns that
version had.

Policies name the published version's columns, and an old version is read under those names
(:mod:`meshsim.storage.published_names`); the columns it had are not the published ones when
a column was added, renamed or dropped since. So while sqlglot qualifies the query, each such
table reference gets a stand-in name whose schema holds the visible columns its version had:
``*`` expands to them, and a column it lacked is an error naming the column and the version.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlglot import exp

from meshsim.errors import QueryError


@dataclass(frozen=True)
class VersionColumns:
    """The columns a time travel's version has, under the published names."""

    version: int  # the version read
    types: dict[str, Any]  # published name -> Arrow type, in the published order
    renamed: dict[str, str]  # the name a column had then -> its published name


#: ``(ref, version, timestamp) -> VersionColumns`` (None: it reads the published version)
ColumnsAt = Callable[[str, int | None, datetime | None], VersionColumns | None]
#: Marks a time-travelled table's stand-in name while sqlglot qualifies the query.
_TRAVEL_MARK = "__meshsim_at_"


@dataclass(frozen=True)
class Travel:
    """A time-travelled table reference, qualified under a stand-in name whose schema holds
    the columns its version had."""

    name: str  # the table's own name, put back after qualify
    ref: str
    version: int
    columns: tuple[str, ...]  # the visible columns the version has
    missing: frozenset[str]  # the visible columns it did not have (lower case)
    renamed: dict[str, str]  # lower-case name then -> published name, of visible columns


def time_travel(node: exp.Table, consumer: str | None) -> tuple[int | None, datetime | None]:
    """The version or the timestamp a table reference's AT clause names ((None, None)
    without one)."""
    when = node.args.get("when")
    if when is None:
        return None, None
    if not isinstance(when, exp.HistoricalData) or str(when.this).upper() != "AT":
        raise QueryError(
            "time travel is written AT (VERSION => n) or AT (TIMESTAMP => ...)", consumer=consumer
        )
    kind = str(when.args.get("kind")).upper()
    value = when.expression
    if kind == "VERSION" and isinstance(value, exp.Literal) and value.is_int:
        return int(value.this), None
    if kind == "VERSION" and isinstance(value, exp.Neg) and isinstance(value.this, exp.Literal):
        raise QueryError(
            f"time travel to version {value.sql(dialect='duckdb')}: versions are 0 or more "
            f"(AT (VERSION => 3)); 'meshsim history TABLE' lists them",
            consumer=consumer,
        )
    if kind == "TIMESTAMP":
        text = value.this if isinstance(value, exp.Cast) else value
        if isinstance(text, exp.Literal) and text.is_string:
            try:
                return None, datetime.fromisoformat(text.this)
            except ValueError:
                pass
    raise QueryError(
        f"time travel needs a literal: AT (VERSION => 3) or AT (TIMESTAMP => TIMESTAMP "
        f"'2024-01-01 00:00:00'), got {when.sql(dialect='duckdb')}",
        consumer=consumer,
    )


def travelled_schema(
    tree: exp.Query, schema: Any, columns_at: ColumnsAt, consumer: str | None
) -> tuple[Any, dict[str, Travel]]:
    """Give each time-travelled mesh table that reads another version than the published
    one a stand-in name (aliased as the table, as qualify would alias it) and,
    in a copy of ``schema``, the visible columns of its version, so that stars expand to
    them and a column it lacked does not resolve."""
    from meshsim.storage.scan import arrow_to_sql_type

    travels: dict[str, Travel] = {}
    copied = None
    for node in list(tree.find_all(exp.Table)):
        if not node.db or node.args.get("when") is None or isinstance(node.this, exp.Func):
            continue
        ref = f"{node.db}.{node.name}"
        version, timestamp = time_travel(node, consumer)
        at = columns_at(ref, version, timestamp)
        if at is None:
            continue
        read, types = at.version, at.types
        visible = {n.lower() for n in schema.column_names(exp.table_(node.name, db=node.db))}
        columns = {n: t for n, t in types.items() if n.lower() in visible}
        if not columns:
            raise QueryError(
                f"table '{ref}' at version {read} has none of the columns you may read of it "
                f"now: an old version's columns are matched to the published version's by "
                f"physical identity (docs/COLUMNS.md), and none of them matches",
                consumer=consumer,
                hint=f"read '{ref}' at a later version, or without AT (...)",
            )
        stand_in = f"{_TRAVEL_MARK}{len(travels)}"
        travels[stand_in] = Travel(
            node.name,
            ref,
            read,
            tuple(columns),
            frozenset(visible - {n.lower() for n in columns}),
            {old.lower(): new for old, new in at.renamed.items() if new in columns},
        )
        if not node.alias:
            node.set("alias", exp.TableAlias(this=exp.to_identifier(node.name)))
        node.set("this", exp.to_identifier(stand_in))
        copied = copied or schema.copy()
        copied.add_table(
            exp.table_(stand_in, db=node.db),
            {n: arrow_to_sql_type(t).sql(dialect="duckdb") for n, t in columns.items()},
            dialect="duckdb",
        )
    return (copied if copied is not None else schema), travels


def restore_travelled(tree: exp.Query, travels: dict[str, Travel]) -> None:
    for node in tree.find_all(exp.Table):
        travel = travels.get(node.name) if node.db else None
        if travel is not None:
            node.set("this", exp.to_identifier(travel.name, quoted=True))


def not_at_version(
    name: str, travels: dict[str, Travel], consumer: str | None
) -> QueryError | None:
    """The error for a column a time-travelled version did not have, or for the name a
    column had then; None if neither."""
    for travel in travels.values():
        now = travel.renamed.get(name.lower())
        if now is not None and name.lower() not in {c.lower() for c in travel.columns}:
            return QueryError(
                f"column '{name}' of '{travel.ref}' is called '{now}' now: time travel reads "
                f"version {travel.version} under the published column names (docs/COLUMNS.md)",
                consumer=consumer,
                hint=f"write '{now}'",
            )
    for travel in travels.values():
        if name.lower() in travel.missing:
            return QueryError(
                f"column '{name}' of '{travel.ref}' did not exist at version {travel.version} "
                f"(its columns then: {', '.join(travel.columns) or 'none you may read'})",
                consumer=consumer,
                hint=f"read '{travel.ref}' at a later version, or without AT (...)",
            )
    return None


def declared_not_published(
    ref: str, product: str, columns: set[str], present: Iterable[str], version: int, consumer: str
) -> QueryError | None:
    """The error for a column of ``columns`` that the product declares but the version
    consumers read (``version``, with columns ``present``) does not have: a product file
    edited without a build (``meshsim validate`` names it); None if there is none."""
    have = {name.lower() for name in present}
    missing = sorted(name for name in columns if name.lower() not in have)
    if not missing:
        return None
    return QueryError(
        f"column '{missing[0]}' is declared for table '{ref}' in product '{product}', but the "
        f"version consumers read ({version}) has no such column: the product's files were "
        f"edited since it was built",
        consumer=consumer,
        hint="its owner runs 'meshsim validate', then 'meshsim build' to publish it",
    )
