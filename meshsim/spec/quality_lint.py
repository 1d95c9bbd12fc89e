"""Cross-file checks of quality rules (:mod:`meshsim.spec.quality`), run by the lint.

Each rule is checked against its table: the columns it names exist; a table rule that needs a
column names one; values and bounds fit the column's type; a freshness column holds dates or
timestamps; a reference names an existing table and columns of comparable types; custom SQL
is one query over mesh tables. A rule that reads through the governed layer (custom SQL, a
reference to another domain) needs the consumer named after its domain, with a grant on
what it reads. Every problem names the product file and the rule's key path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime
from typing import TYPE_CHECKING

from meshsim.errors import PolicyError
from meshsim.quality.bound import BoundRule, bound_rules, governed
from meshsim.spec.lint import Problem, _suggest
from meshsim.spec.loader import MeshSpec, ProductSpec, TableSpec, format_path, line_of
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

if TYPE_CHECKING:
    from sqlglot import exp

_INTEGERS = ("tinyint", "byte", "smallint", "short", "integer", "int", "bigint", "long")
_NUMBERS = (*_INTEGERS, "float", "real", "double")


def type_family(spec_type: str) -> str:
    """``integer``, ``number``, ``string``, ``boolean``, ``date``, ``timestamp`` or ``other``
    (binary, nested): which values a rule may compare a column with.

    >>> type_family("decimal(15,2)"), type_family("timestamp_ntz"), type_family("varchar")
    ('number', 'timestamp', 'string')
    """
    if spec_type in _INTEGERS:
        return "integer"
    if spec_type in _NUMBERS or spec_type.startswith("decimal("):
        return "number"
    if spec_type in ("varchar", "string", "text"):
        return "string"
    if spec_type == "boolean":
        return "boolean"
    if spec_type == "date":
        return "date"
    if spec_type.startswith("timestamp"):
        return "timestamp"
    return "other"


def _function_name(node: exp.Expression) -> str:
    """The name of a table function a FROM reads (``read_csv``), '' for a table."""
    from sqlglot import exp

    if isinstance(node, exp.Func):
        return (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
    return ""


def _fits(value: object, family: str) -> bool:
    """Whether a literal from the spec compares with a column of ``family``."""
    if family in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return family == "number" or float(value).is_integer()
    if family == "string":
        return isinstance(value, str)
    if family == "boolean":
        return isinstance(value, bool)
    if family in ("date", "timestamp") and isinstance(value, str):
        try:
            (date if family == "date" else datetime).fromisoformat(value)
        except ValueError:
            return False
        return True
    return False


def _comparable(left: str, right: str) -> bool:
    """Whether keys of these two types can be compared for a reference."""
    families = {type_family(left), type_family(right)}
    if "other" in families:
        return False
    return len(families) == 1 or families == {"integer", "number"}


class _RuleLint:
    def __init__(self, spec: MeshSpec, product: ProductSpec, table: TableSpec, rule: BoundRule):
        self.spec = spec
        self.table = table
        self.rule = rule
        self.where = line_of(spec, product.path, rule.path)
        self.key = format_path(rule.path)

    def error(self, message: str) -> Problem:
        return Problem("error", self.where, f"{self.rule.label} ({self.key}): {message}")

    def problems(self) -> Iterator[Problem]:
        rule, spec = self.rule, self.rule.rule
        names = [c.name for c in self.table.columns]
        if rule.on_column is not None:
            yield from self._on_column()
        elif not rule.columns and not isinstance(spec, RowCount | Freshness | CustomSql):
            needs = "'columns'" if isinstance(spec, References) else "'column'"
            if isinstance(spec, NotNull | Unique):
                needs = "a list of columns"
            yield self.error(f"a table rule of kind '{rule.kind}' needs {needs}")
            return
        known = bool(names)  # a registered table whose schema could not be read has none
        missing = [c for c in rule.columns if known and c not in names]
        for column in missing:
            yield self.error(
                f"'{column}' is not a column of '{self.table.ref}'{_suggest(column, names)}"
            )
        if missing or not known:
            return
        if isinstance(spec, AcceptedValues | Range):
            yield from self._values()
        elif isinstance(spec, Freshness) and rule.columns:
            found = self.table.column(rule.columns[0])
            assert found is not None
            if type_family(found.type) not in ("date", "timestamp"):
                yield self.error(
                    f"freshness column '{found.name}' is {found.type}; it needs a date or "
                    f"timestamp column (or no column: the table's last commit)"
                )
        elif isinstance(spec, Regex):
            found = self.table.column(rule.columns[0])
            assert found is not None
            if type_family(found.type) != "string":
                yield self.error(f"regex needs a text column; '{found.name}' is {found.type}")
            yield from self._regex(spec.regex)
        elif isinstance(spec, RowCount):
            yield from self._row_count(spec)
        elif isinstance(spec, References):
            yield from self._references(spec)
        if isinstance(spec, CustomSql):
            yield from self._custom(spec)
        if governed(rule):
            yield from self._governed()

    def _on_column(self) -> Iterator[Problem]:
        rule, spec = self.rule, self.rule.rule
        named: list[str] = []
        if isinstance(spec, NotNull | Unique):
            value = spec.not_null if isinstance(spec, NotNull) else spec.unique
            named = value if isinstance(value, list) else []
            if value is False:
                yield self.error(f"'{rule.kind}: false' checks nothing; remove the rule")
        elif isinstance(spec, AcceptedValues | Range | Regex | Freshness) and spec.column:
            named = [spec.column]
        elif isinstance(spec, References) and spec.columns:
            named = spec.columns
        if named and named != [rule.on_column]:
            yield self.error(
                f"on column '{rule.on_column}' the column is implied; it names "
                f"{', '.join(named)}: move the rule to the table's 'quality' or drop the names"
            )

    def _values(self) -> Iterator[Problem]:
        spec = self.rule.rule
        column = self.table.column(self.rule.columns[0])
        assert column is not None and isinstance(spec, AcceptedValues | Range)
        family = type_family(column.type)
        if isinstance(spec, AcceptedValues):
            values: list[object] = list(spec.accepted_values)
        else:
            values = [v for v in (spec.range.min, spec.range.max) if v is not None]
        wrong = [repr(v) for v in values if not _fits(v, family)]
        if wrong:
            kind = "dates (YYYY-MM-DD)" if family == "date" else family + " values"
            if family == "timestamp":
                kind = "timestamps (ISO 8601)"
            yield self.error(
                f"{', '.join(wrong)} cannot be compared with column '{column.name}' "
                f"({column.type}); give {kind}"
            )
        elif isinstance(spec, Range) and spec.range.min is not None and spec.range.max is not None:
            if spec.range.min > spec.range.max:  # type: ignore[operator]
                yield self.error(f"min {spec.range.min!r} is above max {spec.range.max!r}")

    def _row_count(self, spec: RowCount) -> Iterator[Problem]:
        bounds = [v for v in (spec.row_count.min, spec.row_count.max) if v is not None]
        wrong = [repr(v) for v in bounds if isinstance(v, bool) or not isinstance(v, int) or v < 0]
        if wrong:
            yield self.error(
                f"row count bounds must be whole numbers, 0 or more: {', '.join(wrong)}"
            )
        elif len(bounds) == 2 and bounds[0] > bounds[1]:  # type: ignore[operator]
            yield self.error(f"min {bounds[0]} is above max {bounds[1]}")

    def _references(self, spec: References) -> Iterator[Problem]:
        tables = [t.ref for t in self.spec.tables()]
        target = self.spec.table(spec.references)
        if target is None:
            yield self.error(
                f"table '{spec.references}' is not defined{_suggest(spec.references, tables)}"
            )
            return
        to = list(spec.to or self.rule.columns)
        if len(to) != len(self.rule.columns):
            yield self.error(
                f"'to' lists {len(to)} column(s) for {len(self.rule.columns)} column(s); give "
                f"one referenced column for each"
            )
            return
        if not target.columns:
            return
        names = [c.name for c in target.columns]
        for mine, theirs in zip(self.rule.columns, to, strict=True):
            other = target.column(theirs)
            if other is None:
                yield self.error(
                    f"'{spec.references}' has no column '{theirs}'{_suggest(theirs, names)}"
                )
                continue
            column = self.table.column(mine)
            assert column is not None
            if not _comparable(column.type, other.type):
                yield self.error(
                    f"'{mine}' ({column.type}) cannot be compared with "
                    f"'{spec.references}.{theirs}' ({other.type})"
                )

    def _regex(self, pattern: str) -> Iterator[Problem]:
        from meshsim.engine import regex_error

        problem = regex_error(pattern)
        if problem is not None:
            yield self.error(
                f"regex '{pattern}' does not compile with RE2, the engine that runs it "
                f"(DuckDB's regexp_full_match): {problem}; RE2 has no lookaround (?=...) "
                f"and no backreferences \\1"
            )

    def _custom(self, spec: CustomSql) -> Iterator[Problem]:
        from meshsim.quality.compile import parse_custom
        from meshsim.sources.derived import referenced_tables

        try:
            tree = parse_custom(spec.sql)
            read = referenced_tables(spec.sql)
        except ValueError as exc:
            yield self.error(f"the custom query is not usable: {exc}")
            return
        from sqlglot import exp

        functions = sorted({_function_name(t.this) for t in tree.find_all(exp.Table)} - {""})
        for name in functions:
            yield self.error(
                f"the custom query reads the table function {name}(...), not a mesh table: "
                f"a rule reads mesh tables only (name them as domain.table)"
            )
        tables = [t.ref for t in self.spec.tables()]
        for ref in read:
            if not ref:  # a table function's, reported above
                continue
            if ref not in tables:
                yield self.error(
                    "the custom query reads "
                    + (f"'{ref}', which is not a mesh table{_suggest(ref, tables)}")
                    + " (name tables as domain.table)"
                )

    def _governed(self) -> Iterator[Problem]:
        from meshsim.policy.access import resolve_access
        from meshsim.sources.derived import referenced_tables

        spec = self.rule.rule
        consumer = self.table.domain
        if self.spec.consumer(consumer) is None:
            yield self.error(
                f"it reads through the governed layer as the consumer '{consumer}' (named "
                f"after the domain), which mesh.yaml does not define; add it with grants on "
                f"what the rule reads"
            )
            return
        if isinstance(spec, References):
            reads: dict[str, list[str]] = {spec.references: list(spec.to or self.rule.columns)}
        else:
            assert isinstance(spec, CustomSql)
            try:
                reads = {ref: [] for ref in referenced_tables(spec.sql)}
            except ValueError:
                return
        for ref, keys in reads.items():
            if self.spec.table(ref) is None:
                continue
            try:
                access = resolve_access(self.spec, consumer, ref)
            except PolicyError:  # a 'when' that does not parse: the lint reports it, with its line
                return
            if not access.granted:
                yield self.error(
                    f"the domain's consumer '{consumer}' has no grant on '{ref}'; grant it in "
                    f"mesh.yaml"
                )
                continue
            for key in keys:
                state = access.column(key)
                if state is not None and state.state != "full":
                    yield self.error(
                        f"the domain's consumer '{consumer}' reads '{ref}.{key}' "
                        f"{'masked' if state.visible else 'not at all'}, so keys cannot be "
                        f"compared; grant it unmasked"
                    )


def check_quality(spec: MeshSpec) -> Iterator[Problem]:
    """Every problem of every quality rule of the mesh, and rule names used twice in a
    table (a report could not tell them apart)."""
    for product in spec.products():
        for index, declared in enumerate(product.product.tables):
            table = spec.table(f"{product.domain}.{declared.name}")
            if table is None:
                continue
            rules = bound_rules(table, index)
            for rule in rules:
                yield from _RuleLint(spec, product, table, rule).problems()
            for name, count in Counter(r.name for r in rules).items():
                if count > 1:
                    again = [r for r in rules if r.name == name][1]
                    yield Problem(
                        "error",
                        line_of(spec, product.path, again.path),
                        f"table '{table.ref}': {count} quality rules are named '{name}'; give "
                        f"them different 'name:'s",
                    )
