"""Each rule kind as the syntax tree of a query (sqlglot nodes, never formatted text).

Row rules compile to the query of their failing rows over the relation ``checked`` (the table
at the version checked); a reference also reads ``referenced`` (the keys of the table it
references). The runner counts those rows and takes a few sample keys from them. A row count
and a freshness rule compile to the query of one measured value instead.

>>> from meshsim.spec.quality import Range, Bounds
>>> rule = BoundRule("sales.lineitem", "range_l_discount", "range",
...                  Range(range=Bounds(min=0, max=0.1)), ("l_discount",), ())
>>> failing_rows(rule).sql(dialect="duckdb")
'SELECT * FROM checked WHERE "l_discount" < 0 OR "l_discount" > 0.1'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlglot import exp

from meshsim.quality.bound import BoundRule
from meshsim.spec.quality import (
    AcceptedValues,
    CustomSql,
    Freshness,
    NotNull,
    Range,
    References,
    Regex,
    RowCount,
    Unique,
)

CHECKED = "checked"
REFERENCED = "referenced"
#: how many rows of a key combination a unique rule found (a name no table column may have)
COPIES = "__meshsim_copies"


def _column(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def _literal(value: Any) -> exp.Expr:
    return exp.convert(value)


def _any(conditions: Sequence[exp.Expr]) -> exp.Expr:
    return exp.or_(*conditions) if len(conditions) > 1 else conditions[0]


def _all(conditions: Sequence[exp.Expr]) -> exp.Expr:
    return exp.and_(*conditions) if len(conditions) > 1 else conditions[0]


def _not_null(columns: Sequence[str], table: str | None = None) -> exp.Expr:
    return _all([exp.not_(_column(c, table).is_(exp.null())) for c in columns])


def is_measure(rule: BoundRule) -> bool:
    """Whether the rule measures one value (row count, freshness) instead of failing rows."""
    return isinstance(rule.rule, RowCount | Freshness)


def failing_rows(rule: BoundRule) -> exp.Query:
    """The rows of ``checked`` that break a row rule (a custom rule's own query)."""
    spec = rule.rule
    columns = list(rule.columns)
    select = exp.select("*").from_(CHECKED)
    if isinstance(spec, NotNull):
        return select.where(_any([_column(c).is_(exp.null()) for c in columns]))
    if isinstance(spec, Unique):
        partition = [_column(c) for c in columns]
        copies = exp.Window(this=exp.Count(this=exp.Star()), partition_by=partition)
        counted = (
            exp.select("*", exp.alias_(copies, COPIES, quoted=True))
            .from_(CHECKED)
            .where(_not_null(columns))
        )
        return (
            exp.select("*")
            .from_(counted.subquery("keyed"))
            .where(exp.GT(this=_column(COPIES), expression=_literal(1)))
        )
    if isinstance(spec, AcceptedValues):
        column = _column(columns[0])
        accepted = exp.In(this=column, expressions=[_literal(v) for v in spec.accepted_values])
        return select.where(exp.not_(accepted))
    if isinstance(spec, Range):
        column = _column(columns[0])
        outside: list[exp.Expr] = []
        if spec.range.min is not None:
            outside.append(exp.LT(this=column, expression=_literal(spec.range.min)))
        if spec.range.max is not None:
            outside.append(exp.GT(this=column.copy(), expression=_literal(spec.range.max)))
        return select.where(_any(outside))
    if isinstance(spec, Regex):
        text = exp.cast(_column(columns[0]), exp.DataType.build("varchar"))
        matches = exp.Anonymous(this="regexp_full_match", expressions=[text, _literal(spec.regex)])
        return select.where(exp.not_(matches))
    if isinstance(spec, References):
        to = list(spec.to or columns)
        match = _all(
            [
                exp.EQ(this=_column(t, REFERENCED), expression=_column(c, CHECKED))
                for c, t in zip(columns, to, strict=True)
            ]
        )
        found = exp.Exists(this=exp.select(_literal(1)).from_(REFERENCED).where(match))
        return select.where(_all([_not_null(columns, CHECKED), exp.not_(found)]))
    if isinstance(spec, CustomSql):
        return parse_custom(spec.sql)
    raise ValueError(f"{rule.label} measures a value; it has no failing rows")


def referenced_keys(rule: BoundRule) -> exp.Select:
    """The distinct keys of the table a reference names (read with the domain's rights when
    it belongs to another domain)."""
    spec = rule.rule
    assert isinstance(spec, References)
    to = list(spec.to or rule.columns)
    domain, name = spec.references.split(".", 1)
    table = exp.table_(name, db=domain, quoted=True)
    return exp.select(*(_column(c) for c in to)).distinct().from_(table)


def measure(rule: BoundRule) -> exp.Select:
    """The one value a row count (rows) or a column freshness (the newest value) measures."""
    spec = rule.rule
    if isinstance(spec, RowCount):
        return exp.select(exp.Count(this=exp.Star())).from_(CHECKED)
    if isinstance(spec, Freshness) and rule.columns:
        return exp.select(exp.Max(this=_column(rule.columns[0]))).from_(CHECKED)
    raise ValueError(f"{rule.label} measures nothing with SQL")


def count_of(failing: exp.Query) -> exp.Select:
    """How many rows ``failing`` returns."""
    return exp.select(exp.Count(this=exp.Star())).from_(failing.subquery("failing"))


def samples_of(failing: exp.Query, keys: Sequence[str], limit: int) -> exp.Select:
    """The first ``limit`` distinct ``keys`` of the failing rows, in key order."""
    columns = [_column(k) for k in keys]
    return (
        exp.select(*columns)
        .distinct()
        .from_(failing.subquery("failing"))
        .order_by(*(c.copy() for c in columns))
        .limit(limit)
    )


def parse_custom(sql: str) -> exp.Query:
    """A custom rule's query; raises ValueError unless it is one read-only query."""
    import sqlglot
    from sqlglot.errors import ParseError

    try:
        statements = [s for s in sqlglot.parse(sql, dialect="duckdb") if s is not None]
    except ParseError as exc:
        first = next((line for line in str(exc).splitlines() if line.strip()), "")
        raise ValueError(f"the query does not parse: {first}") from None
    if len(statements) != 1:
        raise ValueError(f"it holds {len(statements)} statements; write one query")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise ValueError(
            f"it is a {tree.key.upper()} statement, not a query of the failing rows (a SELECT)"
        )
    return tree
