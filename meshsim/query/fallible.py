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
that cannot fail on any value (:data:`ALLOWED`): column references and short literals,
comparisons whose operands meet in a type without a cast that can fail, ``IN`` lists,
``BETWEEN``, ``LIKE`` with a constant pattern and no ``ESCAPE``, ``IS NULL``, boolean logic,
and a few string functions with small literal counts. Everything else is fallible, constants
included: DuckDB keeps a constant it cannot fold (``9223372036854775807 + 1``, a timestamp
plus an interval past its range) and evaluates it per row, so it fails only when a row
reaches it. Whether a query is gated depends on its text and the schema only, never on data.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, ScopeType, traverse_scope

NUMBER, STRING, DATE, TIMESTAMP, BOOLEAN, NULL, UNKNOWN = (
    "number",
    "string",
    "date",
    "timestamp",
    "boolean",
    "null",
    "unknown",
)
#: Types whose values compare with each other (and with a short number literal) without a
#: cast that can fail. HUGEINT and DECIMAL wider than 18 are left out: DuckDB casts both sides
#: of a comparison with a decimal to one DECIMAL(<=38), which a HUGEINT or a wide decimal can
#: overflow. DATE and TIMESTAMP are apart: a date beyond the timestamp range fails to cast.
_FAMILIES = {
    NUMBER: {
        "TINYINT", "SMALLINT", "INTEGER", "INT", "BIGINT", "UTINYINT", "USMALLINT",
        "UINTEGER", "UBIGINT", "FLOAT", "REAL", "DOUBLE",
    },
    STRING: {"VARCHAR", "TEXT", "STRING", "CHAR"},
    DATE: {"DATE"},
    TIMESTAMP: {"TIMESTAMP", "DATETIME"},
    BOOLEAN: {"BOOLEAN", "BOOL"},
}  # fmt: skip
_NARROW_DECIMAL = re.compile(r"(DECIMAL|NUMERIC)(\(\s*(\d+)\s*(,\s*\d+\s*)?\))?")
#: a number literal DuckDB types as an integer or a DECIMAL(<=18): it meets any NUMBER column
#: in a common type it fits (no exponent: ``1e400`` would be a DOUBLE infinity elsewhere)
_SHORT_NUMBER = re.compile(r"\d+(\.\d+)?")
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?")
#: the largest literal length/count argument of ``left``/``right``/``lpad``/``rpad`` trusted
_MAX_COUNT = 4096

#: Every expression class the checker may accept as unable to fail, each justified against
#: DuckDB in tests/query/test_fallible.py (functions by a hypothesis property over extreme
#: values). A class not listed is fallible until someone proves otherwise; the test pins it.
ALLOWED = (
    "Column", "Literal", "Null", "Boolean", "Paren", "Alias", "Neg",
    "And", "Or", "Xor", "Not", "EQ", "NEQ", "GT", "GTE", "LT", "LTE", "NullSafeEQ",
    "NullSafeNEQ", "Between", "In", "Like", "ILike", "Is", "Exists",
    "Cast", "Case", "Coalesce", "DPipe", "Concat",
    "Upper", "Lower", "Length", "SHA2", "MD5", "Left", "Right", "Pad",
    "AggFunc", "Window", "Subquery", "Star",
)  # fmt: skip
#: string functions of one string argument that return for any string (sha256, md5, ...)
_STRING_FUNCTIONS = {"sha256", "md5", "upper", "lower"}


class _Fallible(Exception):
    """An expression that could fail on some value was found."""


@dataclass(frozen=True)
class _Kind:
    family: str
    #: the text of a literal (DuckDB casts it to the other side's type, which can fail)
    literal: str | None = None
    #: an aggregate's or window's result: computed from rows that passed every filter
    late: bool = False


def family_of(sql_type: str) -> str:
    """The family of a DuckDB type name (``DECIMAL(15,2)`` is a number, ``HUGEINT`` none)."""
    text = sql_type.upper().strip()
    decimal = _NARROW_DECIMAL.fullmatch(text)
    if decimal:
        width = int(decimal.group(3)) if decimal.group(3) else 18
        return NUMBER if width <= 18 else UNKNOWN
    base = text.split("(")[0].strip()
    for family, names in _FAMILIES.items():
        if base in names:
            return family
    return UNKNOWN


def short_number(text: str) -> bool:
    return bool(_SHORT_NUMBER.fullmatch(text)) and sum(ch.isdigit() for ch in text) <= 18


#: the families a string literal is checked to cast to without failing (:func:`_parses_as`)
_PARSED_FAMILIES = {DATE: _DATE_TEXT, TIMESTAMP: _TIMESTAMP_TEXT}


def string_class(text: str) -> tuple[bool, ...]:
    """All this module decides on the text of a string literal: which of
    :data:`_PARSED_FAMILIES` it casts to without failing. Two strings of one class are
    judged alike everywhere (the plan templates of :mod:`meshsim.query.templates` rely on
    it: a rule that reads more of a string's text must be reflected here)."""
    return tuple(_parses_as(family, text) for family in _PARSED_FAMILIES)


def _parses_as(family: str, text: str) -> bool:
    """Whether DuckDB casts the string literal ``text`` to ``family`` without failing: only
    the plain ISO spelling, checked by Python's calendar (years 1-9999, inside DuckDB's)."""
    pattern = _PARSED_FAMILIES.get(family)
    if pattern is None or not pattern.fullmatch(text):
        return False
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _compatible(a: _Kind, b: _Kind) -> bool:
    """Whether comparing ``a`` with ``b`` cannot fail (no cast that can fail on a value)."""
    if NULL in (a.family, b.family):
        return True  # NULL casts to anything
    if a.late or b.late:
        # an aggregate's result against another or a constant runs after the filters (HAVING);
        # against a column it may not: ``x IN (SELECT sum(...))`` casts a hidden row's x
        return all(k.late or k.literal is not None for k in (a, b))
    for one, other in ((a, b), (b, a)):
        if one.literal is not None and one.family == STRING:
            return other.family == STRING or _parses_as(other.family, one.literal)
    return a.family == b.family and a.family != UNKNOWN


#: ``column -> family`` of a column of the query (UNKNOWN when it is not a mesh table's)
ColumnFamily = Callable[[exp.Column], str]


def _small_count(node: exp.Expr | None) -> bool:
    return (
        isinstance(node, exp.Literal)
        and not node.is_string
        and node.this.isdigit()
        and int(node.this) <= _MAX_COUNT
    )


class _Checker:
    def __init__(self, family: ColumnFamily) -> None:
        self.family = family

    def value(self, node: exp.Expr) -> _Kind:
        """The kind of a value expression; :class:`_Fallible` if it could fail."""
        if isinstance(node, exp.Column):
            return _Kind(self.family(node))
        if isinstance(node, exp.Literal):
            if node.is_string:
                return _Kind(STRING, literal=node.this)
            if short_number(node.this):
                return _Kind(NUMBER, literal=node.this)
            raise _Fallible  # a long or exponent literal: its cast to a column's type can fail
        if isinstance(node, exp.Null):
            return _Kind(NULL)
        if isinstance(node, exp.Boolean):
            return _Kind(BOOLEAN)
        if isinstance(node, (exp.Paren, exp.Alias)):
            return self.value(node.this)
        if isinstance(node, (exp.AggFunc, exp.Window)):
            # runs over its FROM's output, after the filters: only its result is typed here
            return _Kind(UNKNOWN, late=True)  # sum(BIGINT) is a HUGEINT: no family
        if isinstance(node, (exp.Subquery, exp.Star)):
            return _Kind(UNKNOWN)  # a subquery's own expressions are checked in its scope
        if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
            if not node.this.is_string and short_number(node.this.this):
                return _Kind(NUMBER, literal=f"-{node.this.this}")  # cannot overflow
        elif isinstance(node, exp.Cast):
            return self._cast(node)
        elif isinstance(node, (exp.DPipe, exp.Concat)):
            for child in node.iter_expressions():
                if self.value(child).family == UNKNOWN:
                    raise _Fallible  # || of lists or of an unknown type
            return _Kind(STRING)
        elif isinstance(node, exp.Coalesce):
            kinds = [self.value(c) for c in [node.this, *node.expressions]]
            if all(_compatible(kinds[0], k) for k in kinds[1:]):
                return _Kind(next((k.family for k in kinds if k.literal is None), kinds[0].family))
        elif isinstance(node, exp.Case):
            return self._case(node)
        elif isinstance(node, (exp.Upper, exp.Lower, exp.Length, exp.MD5)):
            if self.value(node.this).family in (STRING, NULL):
                return _Kind(NUMBER if isinstance(node, exp.Length) else STRING)
        elif isinstance(node, exp.SHA2):
            length = node.args.get("length")
            if self.value(node.this).family in (STRING, NULL) and (
                length is None or (isinstance(length, exp.Literal) and length.this == "256")
            ):
                return _Kind(STRING)
        elif isinstance(node, (exp.Left, exp.Right)):
            if self.value(node.this).family in (STRING, NULL) and _small_count(node.expression):
                return _Kind(STRING)
        elif isinstance(node, exp.Pad):
            fill = node.args.get("fill_pattern")
            if (
                self.value(node.this).family in (STRING, NULL)
                and _small_count(node.expression)
                and isinstance(fill, exp.Literal)
                and fill.is_string
                and fill.this != ""  # an empty pad fails on any shorter string
            ):
                return _Kind(STRING)
        elif isinstance(node, exp.Anonymous) and node.name.lower() in _STRING_FUNCTIONS:
            if len(node.expressions) == 1 and self.value(node.expressions[0]).family in (
                STRING,
                NULL,
            ):
                return _Kind(STRING)
        elif isinstance(node, exp.Anonymous) and node.name.lower() in ("lpad", "rpad"):
            args = node.expressions
            if len(args) == 3:
                return self.value(exp.Pad(this=args[0], expression=args[1], fill_pattern=args[2]))
        elif _is_predicate(node):
            self.predicate(node)
            return _Kind(BOOLEAN)
        raise _Fallible

    def _cast(self, node: exp.Cast) -> _Kind:
        source = self.value(node.this)
        target = family_of(node.to.sql(dialect="duckdb"))
        if source.family == NULL:
            return _Kind(target)
        if target == STRING and source.family != UNKNOWN:
            return _Kind(STRING)  # every value of a known scalar type has a text form
        if source.literal is not None and source.family == STRING:
            if _parses_as(target, source.literal):
                return _Kind(target)
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
            return _Kind(next((k.family for k in results if k.literal is None), results[0].family))
        raise _Fallible

    def predicate(self, node: exp.Expr) -> None:
        """:class:`_Fallible` unless ``node`` cannot fail on any row."""
        if isinstance(node, (exp.And, exp.Or, exp.Xor)):
            self.predicate(node.this)
            self.predicate(node.expression)
        elif isinstance(node, (exp.Not, exp.Paren)):
            self.predicate(node.this)
        elif isinstance(node, COMPARISONS):
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
            pattern = node.expression
            if node.args.get("escape") is not None or not (
                isinstance(pattern, exp.Literal) and pattern.is_string
            ):
                raise _Fallible  # an ESCAPE clause fails on a pattern ending in its character
            if self.value(node.this).family not in (STRING, NULL):
                raise _Fallible
        elif isinstance(node, exp.Is):
            value = self.value(node.this)
            if not isinstance(node.expression, exp.Null) and value.family not in (BOOLEAN, NULL):
                raise _Fallible  # IS [NOT] TRUE/FALSE casts its operand to BOOLEAN
        elif isinstance(node, exp.Exists):
            return  # its subquery is a scope of its own
        elif isinstance(node, exp.Column):
            if self.value(node).family != BOOLEAN:
                raise _Fallible  # any other type is cast to BOOLEAN, which can fail
        elif isinstance(node, (exp.Boolean, exp.Null)):
            return
        else:
            raise _Fallible


#: the comparison operators (also where a template's value may stand)
COMPARISONS = (
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
        node,
        (*COMPARISONS, exp.And, exp.Or, exp.Not, exp.Between, exp.In, exp.Like, exp.ILike, exp.Is),
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


def can_fail_before_filter(
    tree: exp.Query,
    table_types: Mapping[int, Mapping[str, str]],
    scopes: list[Scope] | None = None,
) -> bool:
    """Whether any expression DuckDB could evaluate before a row filter could fail on a value.

    ``table_types`` maps ``id(table node)`` of each mesh table the query reads (at its published
    version) to its columns' DuckDB types; a column of any other source has no known type, so
    comparisons with it count as fallible. The tree is qualified (rule resolve); ``scopes``
    are its scopes if known (:attr:`meshsim.query.names.Resolved.scopes`).
    """
    if scopes is None:
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
