"""A rule bound to its table: its report name, its kind and the columns it reads.

Column rules imply their column; table rules name theirs. The lint (:mod:`meshsim.spec.lint`)
and the runner read rules only through :func:`bound_rules`, so both see the same names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

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
    rule_kind,
)

if TYPE_CHECKING:
    from meshsim.spec.loader import KeyPath, TableSpec
    from meshsim.spec.quality import QualityRule

#: kinds that take one column (implied on a column, ``column:`` on a table)
ONE_COLUMN = (AcceptedValues, Range, Regex)


@dataclass(frozen=True)
class BoundRule:
    """One rule of one table. ``columns`` are the table's columns it reads (empty for a
    row count, a commit-time freshness or custom SQL); ``path`` is its key path in the
    product file (``tables[i].quality[j]`` or ``tables[i].columns[k].quality[j]``)."""

    table: str
    name: str
    kind: str
    rule: QualityRule
    columns: tuple[str, ...]
    path: KeyPath
    on_column: str | None = None

    @property
    def severity(self) -> str:
        return self.rule.severity

    @property
    def label(self) -> str:
        return f"rule '{self.name}' of table '{self.table}'"


def rule_columns(rule: QualityRule, implied: str | None) -> tuple[str, ...]:
    """The columns ``rule`` reads, ``implied`` being the column it is written on (if any)."""
    if isinstance(rule, NotNull | Unique):
        value = rule.not_null if isinstance(rule, NotNull) else rule.unique
        if isinstance(value, list):
            return tuple(value)
        return (implied,) if implied and value else ()
    if isinstance(rule, (*ONE_COLUMN, Freshness)):
        column = rule.column or implied
        return (column,) if column else ()
    if isinstance(rule, References):
        if rule.columns:
            return tuple(rule.columns)
        return (implied,) if implied else ()
    return ()


def _default_name(rule: QualityRule, columns: tuple[str, ...], index: int) -> str:
    kind = rule_kind(rule)
    if isinstance(rule, RowCount):
        return kind
    if isinstance(rule, CustomSql):
        return f"sql_{index + 1}"
    if isinstance(rule, References):
        return "references_" + rule.references.split(".", 1)[1]
    return "_".join((kind, *columns))


def bound_rules(table: TableSpec, table_index: int = 0) -> list[BoundRule]:
    """Every rule of ``table``, table rules first, then each column's, in file order."""
    rules: list[BoundRule] = []
    for index, rule in enumerate(table.table.quality):
        columns = rule_columns(rule, None)
        name = rule.name or _default_name(rule, columns, index)
        at: KeyPath = ("tables", table_index, "quality", index)
        rules.append(BoundRule(table.ref, name, rule_kind(rule), rule, columns, at))
    for position, column in enumerate(table.table.columns):
        for index, rule in enumerate(column.quality):
            columns = rule_columns(rule, column.name)
            name = rule.name or _default_name(rule, columns, index)
            at = ("tables", table_index, "columns", position, "quality", index)
            rules.append(
                BoundRule(table.ref, name, rule_kind(rule), rule, columns, at, column.name)
            )
    return rules


def governed(rule: BoundRule) -> bool:
    """Whether the rule reads through the governed layer with its domain's rights: custom SQL,
    and a reference to another domain's table (a domain reads its own tables directly)."""
    if isinstance(rule.rule, References):
        return rule.rule.references.split(".", 1)[0] != rule.table.split(".", 1)[0]
    return isinstance(rule.rule, CustomSql)
