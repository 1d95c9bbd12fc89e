"""Which expressions could fail, and so must never see a row a row filter hides.

DuckDB may evaluate a query's predicates before a row filter: it pushes them below the semi
join an IN-subquery filter becomes, and into the storage scan. A predicate that fails on some
values (a cast, a division, ``error()``, a string compared with a number) would then fail
only when a hidden row holds such a value: an oracle (GOVERNANCE.md, attack class 9). The
gated scan (:func:`meshsim.query.scans.governed_select`) closes it by handing every value out
as ``CASE WHEN visible THEN value END``, which also stops DuckDB from pushing any predicate
into the scan. This module decides when the gate is needed.

What DuckDB can move below a filter are predicates (WHERE, JOIN ... ON, HAVING, QUALIFY) and
the expressions a derived table, CTE or subquery selects or groups by (an outer predicate over
them is pushed down with the expression substituted). Aggregates and window functions are not
moved: they run over what their FROM returned, after its filters. The outermost projection
runs last. So a query needs no gate when every expression in those movable positions is one
that cannot fail on any value: comparisons of operands of one type family, ``LIKE`` with a
constant pattern, ``IN`` lists, ``IS NULL``, boolean logic, and a few string functions.
Everything else (arithmetic on columns, casts that can fail, any function not listed) counts
as fallible, and the query runs over gated scans. Whether a query is gated depends on its
text and the schema only, never on data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, ScopeType, traverse_scope

NUMBER, STRING, TIME, BOOLEAN, INTERVAL, NULL, UNKNOWN = (
    "number",
    "string",
    "time",
    "boolean",
    "interval",
    "null",
    "unknown",
)
_FAMILIES = {
    NUMBER: {
        "TINYINT", "SMALLINT", "INTEGER", "INT", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
        "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "REAL", "DOUBLE", "DECIMAL", "NUMERIC",
    },
    STRING: {"VARCHAR", "TEXT", "STRING", "CHAR"},
    TIME: {"DATE", "TIMESTAMP", "TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE", "DATETIME"},
    BOOLEAN: {"BOOLEAN", "BOOL"},
}  # fmt: skip
_STRING_FUNCTIONS = {"sha256", "md5", "lpad", "rpad", "right", "left", "upper", "lower"}
#: string functions that cannot fail on a string and literal arguments (parsed or built)
_STRING_NODES = (
    exp.Pad, exp.Right, exp.Left, exp.Upper, exp.Lower, exp.Length, exp.Trim, exp.SHA2, exp.MD5,
)  # fmt: skip
_AGGREGATE_KINDS = {"count": NUMBER, "sum": NUMBER, "avg": NUMBER}


class _Fallible(Exception):
    """An expression that could fail on some value was found."""


@dataclass(frozen=True)
class _Kind:
    family: str
    #: the text of a string literal (DuckDB casts it to the other side's type, which can fail)
    literal: str | None = None


def family_of(sql_type: str) -> str:
    """The family of a DuckDB type name (``DECIMAL(15,2)`` is a number)."""
    base = sql_type.upper().split("(")[0].strip()
    for family, names in _FAMILIES.items():
        if base in names:
            return family
    return UNKNOWN


def _parses_as_time(text: str) -> bool:
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _compatible(a: _Kind, b: _Kind) -> bool:
    """Whether comparing ``a`` with ``b`` cannot fail (no cast that can fail on a value)."""
    if NULL in (a.family, b.family):
        return True
    if a.literal is not None and b.literal is not None:
        return True  # two constants: the result does not depend on any row
    for one, other in ((a, b), (b, a)):
        if one.literal is not None:
            if other.family == STRING:
                return True
            return other.family == TIME and _parses_as_time(one.literal)
    return a.family == b.family and a.family != UNKNOWN


#: ``column -> family`` of a column of the query (UNKNOWN when it is not a mesh table's)
ColumnFamily = Callable[[exp.Column], str]


class _Checker:
    def __init__(self, family: ColumnFamily) -> None:
        self.family = family

    def value(self, node: exp.Expr) -> _Kind:
        """The kind of a value expression; :class:`_Fallible` if it could fail."""
        if isinstance(node, exp.Column):
            return _Kind(self.family(node))
        if isinstance(node, exp.Literal):
            return _Kind(STRING, literal=node.this) if node.is_string else _Kind(NUMBER)
        if isinstance(node, exp.Null):
            return _Kind(NULL)
        if isinstance(node, exp.Boolean):
            return _Kind(BOOLEAN)
        if isinstance(node, (exp.Paren, exp.Alias)):
            return self.value(node.this)
        if isinstance(node, (exp.AggFunc, exp.Window)):
            # runs over its FROM's output, after the filters: only its result is typed here
            name = node.key if isinstance(node, exp.AggFunc) else ""
            return _Kind(_AGGREGATE_KINDS.get(name, UNKNOWN))
        if isinstance(node, (exp.Subquery, exp.Star)):
            return _Kind(UNKNOWN)  # a subquery's own expressions are checked in its scope
        if isinstance(node, exp.TryCast):
            self.value(node.this)
            return _Kind(family_of(node.to.sql(dialect="duckdb")))
        if isinstance(node, exp.Cast):
            return self._cast(node)
        if isinstance(node, exp.Interval):
            if isinstance(node.this, exp.Literal) and str(node.this.this).strip().isdigit():
                return _Kind(INTERVAL)
        elif isinstance(node, (exp.Add, exp.Sub)):
            return self._constant_arithmetic(node)
        elif isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
            return _Kind(NUMBER)
        elif isinstance(node, (exp.DPipe, exp.Concat)):
            for child in node.iter_expressions():
                self.value(child)
            return _Kind(STRING)
        elif isinstance(node, exp.Coalesce):
            kinds = [self.value(c) for c in [node.this, *node.expressions]]
            if all(_compatible(kinds[0], k) for k in kinds[1:]):
                return _Kind(next((k.family for k in kinds if k.literal is None), STRING))
        elif isinstance(node, exp.Case):
            return self._case(node)
        elif isinstance(node, exp.Extract):
            if self.value(node.expression).family == TIME:
                return _Kind(NUMBER)
        elif isinstance(node, exp.Substring):
            if self.value(node.this).family == STRING and all(
                isinstance(node.args.get(a), (exp.Literal, type(None))) for a in ("start", "length")
            ):
                return _Kind(STRING)
        elif isinstance(node, _STRING_NODES):
            others = [c for c in node.iter_expressions() if c is not node.this]
            if self.value(node.this).family in (STRING, NULL) and all(
                isinstance(c, exp.Literal) for c in others
            ):
                return _Kind(NUMBER if isinstance(node, exp.Length) else STRING)
        elif isinstance(node, exp.Anonymous) and node.name.lower() in _STRING_FUNCTIONS:
            first, *rest = node.expressions or [exp.null()]
            literals = all(isinstance(r, exp.Literal) for r in rest)
            if self.value(first).family in (STRING, NULL) and literals:
                return _Kind(STRING)
        elif _is_predicate(node):
            self.predicate(node)
            return _Kind(BOOLEAN)
        raise _Fallible

    def _cast(self, node: exp.Cast) -> _Kind:
        source = self.value(node.this)
        target = family_of(node.to.sql(dialect="duckdb"))
        if target == STRING or source.family == NULL:
            return _Kind(STRING if target == STRING else target)
        if target == TIME and source.literal is not None and _parses_as_time(source.literal):
            return _Kind(TIME)
        raise _Fallible

    def _constant_arithmetic(self, node: exp.Binary) -> _Kind:
        if not (_is_constant(node.this) and _is_constant(node.expression)):
            raise _Fallible  # on a column, + and - can overflow
        left, right = self.value(node.this), self.value(node.expression)
        families = {left.family, right.family}
        if families == {NUMBER}:
            return _Kind(NUMBER)
        if families == {TIME, INTERVAL}:
            return _Kind(TIME)
        raise _Fallible

    def _case(self, node: exp.Case) -> _Kind:
        if node.this is not None:
            raise _Fallible  # CASE x WHEN v compares x with each v: not worth typing here
        results = []
        for branch in node.args.get("ifs") or []:
            self.predicate(branch.this)
            results.append(self.value(branch.args["true"]))
        if node.args.get("default") is not None:
            results.append(self.value(node.args["default"]))
        if all(_compatible(results[0], k) for k in results[1:]):
            return _Kind(next((k.family for k in results if k.literal is None), STRING))
        raise _Fallible

    def predicate(self, node: exp.Expr) -> None:
        """:class:`_Fallible` unless ``node`` cannot fail on any row."""
        if isinstance(node, (exp.And, exp.Or, exp.Xor)):
            self.predicate(node.this)
            self.predicate(node.expression)
        elif isinstance(node, (exp.Not, exp.Paren)):
            self.predicate(node.this)
        elif isinstance(node, _COMPARISONS):
            if not _compatible(self.value(node.this), self.value(node.expression)):
                raise _Fallible
        elif isinstance(node, exp.Between):
            this = self.value(node.this)
            for bound in (node.args["low"], node.args["high"]):
                if not _compatible(this, self.value(bound)):
                    raise _Fallible
        elif isinstance(node, exp.In):
            this = self.value(node.this)
            if node.args.get("query") is not None or node.args.get("unnest") is not None:
                items = _selected(node.args.get("query"))
            else:
                items = node.expressions
            if not items or not all(_compatible(this, self.value(i)) for i in items):
                raise _Fallible
        elif isinstance(node, (exp.Like, exp.ILike)):
            if node.args.get("escape") is not None or not isinstance(node.expression, exp.Literal):
                raise _Fallible
            if self.value(node.this).family not in (STRING, NULL):
                raise _Fallible
        elif isinstance(node, exp.Is):
            self.value(node.this)
        elif isinstance(node, exp.Exists):
            return  # its subquery is a scope of its own
        elif isinstance(node, exp.Column):
            if self.value(node).family != BOOLEAN:
                raise _Fallible  # any other type is cast to BOOLEAN, which can fail
        elif isinstance(node, (exp.Boolean, exp.Null)):
            return
        else:
            raise _Fallible


_COMPARISONS = (
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.NullSafeEQ,
    exp.NullSafeNEQ,
)


def _is_predicate(node: exp.Expr) -> bool:
    return isinstance(
        node, (*_COMPARISONS, exp.And, exp.Or, exp.Not, exp.Between, exp.In, exp.Like, exp.Is)
    )


def _is_constant(node: exp.Expr) -> bool:
    """A literal, or literals under casts, signs, parentheses and intervals."""
    return (
        isinstance(node, (exp.Literal, exp.Interval, exp.Cast, exp.Neg, exp.Paren))
        and all(
            isinstance(n, (exp.Cast, exp.DataType)) or not isinstance(n, (exp.Func, exp.Column))
            for n in node.walk()
        )
        and node.find(exp.Subquery) is None
    )


def _selected(query: exp.Expr | None) -> list[exp.Expr]:
    """The single expression an ``IN (SELECT ...)`` subquery selects (typed in its scope)."""
    if isinstance(query, exp.Subquery):
        query = query.this
    if isinstance(query, exp.Select) and len(query.expressions) == 1:
        return [query.expressions[0]]
    return []


def _outermost(scope: Scope) -> bool:
    """The query's own SELECT (or a branch of a set operation at the top): its projection
    runs after every filter below it."""
    while scope.scope_type == ScopeType.SET_OPERATION and scope.parent is not None:
        scope = scope.parent
    return scope.is_root


def _column_families(
    scopes: list[Scope], table_types: Mapping[int, Mapping[str, str]]
) -> dict[int, str]:
    """``id(column) -> family`` for every column of a mesh table read at its published
    version, found through the scope that names its table (or an enclosing one)."""
    families: dict[int, str] = {}
    for scope in scopes:
        for column in scope.columns:
            owner: Scope | None = scope
            source = None
            while owner is not None and source is None:
                source = owner.sources.get(column.table)
                owner = owner.parent
            if isinstance(source, exp.Table) and id(source) in table_types:
                sql_type = table_types[id(source)].get(column.name)
                families[id(column)] = family_of(sql_type) if sql_type else UNKNOWN
    return families


def can_fail_before_filter(tree: exp.Query, table_types: Mapping[int, Mapping[str, str]]) -> bool:
    """Whether any expression DuckDB could evaluate before a row filter could fail on a value.

    ``table_types`` maps ``id(table node)`` of each mesh table the query reads (at its published
    version) to its columns' DuckDB types; a column of any other source has no known type, so
    comparisons with it count as fallible. The tree is qualified (rule resolve).
    """
    scopes = list(traverse_scope(tree))
    families = _column_families(scopes, table_types)
    checker = _Checker(lambda column: families.get(id(column), UNKNOWN))
    try:
        for scope in scopes:
            select = scope.expression
            if not isinstance(select, exp.Select):
                continue
            for key in ("where", "having", "qualify"):
                clause = select.args.get(key)
                if clause is not None:
                    checker.predicate(clause.this)
            for join in select.args.get("joins") or []:
                if join.args.get("on") is not None:
                    checker.predicate(join.args["on"])
            for source in [select.args.get("from_") or select.args.get("from")] + list(
                select.args.get("joins") or []
            ):
                relation = source.this if source is not None else None
                if isinstance(relation, (exp.Unnest, exp.Lateral)) or (
                    isinstance(relation, exp.Table) and isinstance(relation.this, exp.Func)
                ):
                    if relation.find(exp.Column) is not None:
                        raise _Fallible  # a table function over a row's values
            if not _outermost(scope):
                for projection in select.expressions:
                    checker.value(projection)
                group = select.args.get("group")
                for key_expr in group.expressions if group is not None else []:
                    checker.value(key_expr)
    except _Fallible:
        return True
    return False


def mask_can_fail(mask: exp.Expr, column_type: str) -> bool:
    """Whether a mask over a column of ``column_type`` could fail on a value (a consumer's
    predicate over a masked column is pushed down with the mask substituted)."""
    checker = _Checker(lambda column: family_of(column_type))
    try:
        checker.value(mask)
    except _Fallible:
        return True
    return False
