"""``meshsim delete --where``: one boolean SQL expression over a table's own columns.

Parsed with sqlglot (DuckDB dialect) and checked against an allowlist: columns of the table,
literals, comparisons, ``AND``/``OR``/``NOT``, ``IS [NOT] NULL``, ``IN`` over a list,
``BETWEEN``, ``LIKE``, arithmetic, ``CAST`` and a few pure scalar functions. Anything else
(a subquery, a table, a function that reads files, a second statement) is refused, with
every problem reported at once. The predicate is then bound on an empty DuckDB table of the
declared schema, so a type error is found before anything is deleted, and regenerated (every
name quoted) for deltalake's delete, which evaluates it with DataFusion.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from meshsim.errors import PolicyError, WriteError, unknown_name_message

if TYPE_CHECKING:
    from sqlglot import exp

    from meshsim.produce.inputs import TargetColumn

MAX_WHERE_CHARS = 10_000


def _allowed() -> tuple[type, ...]:
    from sqlglot import exp

    return (
        exp.Column,
        exp.Identifier,
        exp.Literal,
        exp.Boolean,
        exp.Null,
        exp.Paren,
        exp.And,
        exp.Or,
        exp.Not,
        exp.EQ,
        exp.NEQ,
        exp.GT,
        exp.GTE,
        exp.LT,
        exp.LTE,
        exp.Is,
        exp.In,
        exp.Between,
        exp.Like,
        exp.ILike,
        exp.Add,
        exp.Sub,
        exp.Mul,
        exp.Div,
        exp.Mod,
        exp.Neg,
        exp.Cast,
        exp.DataType,
        exp.DataTypeParam,
        exp.Lower,
        exp.Upper,
        exp.Abs,
        exp.Coalesce,
        exp.Length,
    )


def parse_where(text: str, columns: list[TargetColumn], *, table: str) -> str:
    """The predicate ``text`` as SQL for deltalake's delete; a WriteError naming every problem
    (and the valid columns) when it is not one boolean expression over ``columns``."""
    from sqlglot import exp

    from meshsim.policy.fragments import parse_fragment

    what = f"the --where predicate for '{table}'"
    hint = 'write one condition over the table\'s columns, e.g. --where "o_orderkey < 100"'
    if not isinstance(text, str) or not text.strip():
        raise WriteError([f"{what} is empty"], table=table, hint=hint)
    if len(text) > MAX_WHERE_CHARS:
        raise WriteError([f"{what} is longer than {MAX_WHERE_CHARS} characters"], table=table)
    try:
        tree = parse_fragment(text, what=what)
    except PolicyError as exc:
        raise WriteError([exc.message], table=table, hint=hint) from None
    known = {c.name for c in columns}
    allowed = _allowed()
    problems: list[str] = []
    for node in _walk(tree, allowed):
        if not isinstance(node, allowed):
            problems.append(
                f"{what} may not contain {_construct(node)} ('{node.sql(dialect='duckdb')[:60]}')"
            )
        elif isinstance(node, exp.Literal) and not node.is_string and not _finite(node.this):
            problems.append(f"{what}: the number {node.this} is out of range")
        elif isinstance(node, exp.Column):
            if node.table:
                problems.append(
                    f"{what} names '{node.sql(dialect='duckdb')}': name columns of '{table}' "
                    f"only, without a table"
                )
            elif node.name not in known:
                problems.append(unknown_name_message("column", node.name, known))
    core = tree.unnest() if isinstance(tree, exp.Paren) else tree
    if not isinstance(core, exp.Connector | exp.Not | exp.Predicate | exp.Boolean):
        problems.append(f"{what} is not a condition (true or false for each row): '{text}'")
    elif not problems and tree.find(exp.Column) is None:
        problems.append(
            f"{what} names no column of '{table}' ('{text}'): it holds for every row or none; "
            f"to delete every row, pass --all-rows without --where"
        )
    if problems:
        raise WriteError(list(dict.fromkeys(problems)), table=table, hint=hint)
    for identifier in tree.find_all(exp.Identifier):
        identifier.set("quoted", True)
    _check_binds(tree, columns, table=table, what=what, hint=hint)
    return tree.sql(dialect="postgres")


def _construct(node: exp.Expr) -> str:
    """A refused node as the user wrote it: ``the function now()``, ``a subquery``."""
    from sqlglot import exp

    if isinstance(node, exp.Exists | exp.Subquery | exp.Query):
        return "a subquery"
    if isinstance(node, exp.Anonymous):
        return f"the function {node.name.lower()}()"
    if isinstance(node, exp.Func):  # sqlglot's own name may differ (REGEXP_LIKE): DuckDB's
        return f"the function {node.sql(dialect='duckdb').split('(', 1)[0].lower()}()"
    return f"{type(node).__name__} syntax"


def _finite(number: str) -> bool:
    import math

    try:
        return math.isfinite(float(number))
    except ValueError:
        return True  # not a float spelling: DuckDB's binding judges it


def _walk(tree: exp.Expr, allowed: tuple[type, ...]) -> Iterator[exp.Expr]:
    """Every node, but not inside a refused one (one problem per refused construct)."""
    yield tree
    if isinstance(tree, allowed):
        for child in tree.iter_expressions():
            yield from _walk(child, allowed)


def _check_binds(
    tree: exp.Expr, columns: list[TargetColumn], *, table: str, what: str, hint: str
) -> None:
    """Bind the predicate on an empty table of the declared schema (types, operators)."""
    from sqlglot import exp

    from meshsim import engine
    from meshsim.storage.scan import arrow_to_sql_type

    name = exp.to_identifier("t", quoted=True)
    create = exp.Create(
        kind="TABLE",
        this=exp.Schema(
            this=exp.Table(this=name),
            expressions=[
                exp.ColumnDef(
                    this=exp.to_identifier(c.name, quoted=True), kind=arrow_to_sql_type(c.type)
                )
                for c in columns
            ],
        ),
    )
    query = exp.select(exp.Literal.number(1)).from_(exp.Table(this=name)).where(tree.copy())
    # one all-NULL row, so that constants are cast and operators run, not only bound
    insert = exp.insert(
        exp.Values(expressions=[exp.Tuple(expressions=[exp.null() for _ in columns])]),
        exp.Table(this=name),
    )
    setup = [create.sql(dialect="duckdb"), insert.sql(dialect="duckdb")]
    [error] = engine.bind_errors(setup, [query.sql(dialect="duckdb")])
    if error is not None:
        first = error.strip().splitlines()[0]
        raise WriteError([f"{what} does not run on its columns: {first}"], table=table, hint=hint)
