"""Resolve what one consumer may see of one table, and why.

Deny by default: a column is visible only if a grant (direct or by tag) covers it. A visible
column is masked by the first mask that selects both the consumer and the column. Every row
filter that selects the consumer applies (they are ANDed). Each decision names the rule that
made it, so ``explain``, ``access`` and refusals can say why.

This module is pure: it reads a :class:`MeshSpec` and a :class:`Policies` and returns data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from meshsim.errors import MeshsimError, unknown_name_message
from meshsim.policy.conditions import evaluate_when, tags_match
from meshsim.spec.loader import MeshSpec, TableSpec
from meshsim.spec.models import (
    Consumer,
    ConsumerSelector,
    Grant,
    Mask,
    Policies,
    RowFilter,
    column_ref,
    split_column_ref,
)

ColumnState = Literal["full", "masked", "denied"]


@dataclass(frozen=True)
class ColumnAccess:
    column: str
    state: ColumnState
    rule: str
    mask: Mask | None = None

    @property
    def visible(self) -> bool:
        return self.state != "denied"


@dataclass(frozen=True)
class TableAccess:
    consumer: str
    table: str
    columns: tuple[ColumnAccess, ...]
    grants: tuple[str, ...]
    row_filters: tuple[RowFilter, ...] = field(default=())

    @property
    def granted(self) -> bool:
        return any(c.visible for c in self.columns)

    @property
    def visible_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.visible]

    def column(self, name: str) -> ColumnAccess | None:
        return next((c for c in self.columns if c.column == name), None)

    @property
    def filtered(self) -> bool:
        return bool(self.row_filters)


def selects(selector: ConsumerSelector, consumer: Consumer) -> bool:
    """Whether a policy's consumer selector matches a consumer."""
    if consumer.name in selector.except_:
        return False
    if "*" not in selector.consumers and consumer.name not in selector.consumers:
        return False
    return selector.when is None or evaluate_when(selector.when, consumer.attributes)


def rule_name(policy: Grant | Mask | RowFilter | object, kind: str, index: int) -> str:
    name = getattr(policy, "name", None)
    return name or f"{kind}[{index}]"


def _grant_columns(grant: Grant, table: TableSpec) -> set[str]:
    names = {c.name for c in table.columns}
    product = f"{table.domain}.{table.product}"
    if grant.all or grant.product == product or table.ref in grant.tables:
        covered = set(names)
    else:
        covered = _columns_of(grant.columns, table)
    return covered - _columns_of(grant.exclude_columns, table)


def _columns_of(refs: Iterable[str], table: TableSpec) -> set[str]:
    """The column names of ``table`` among column references."""
    pairs = (split_column_ref(ref) for ref in refs)
    return {column for table_ref, column in pairs if table_ref == table.ref}


def excluded_columns(spec: MeshSpec, consumer_name: str, table: TableSpec) -> set[str]:
    """Columns of ``table`` that a spec grant selecting the consumer explicitly withholds
    (``exclude_columns``): a decision of governance that self-service must not undo."""
    consumer = require_consumer(spec, consumer_name)
    excluding = spec.memo.get("excluding_grants")
    if excluding is None:  # once per spec: few grants exclude columns, every request asks
        excluding = spec.memo["excluding_grants"] = [
            g for g in spec.policies.grants if g.exclude_columns
        ]
    withheld: set[str] = set()
    for grant in excluding:
        if selects(grant, consumer):
            withheld |= _columns_of(grant.exclude_columns, table)
    return withheld


def mask_selects_column(mask: Mask, table: TableSpec, column: str) -> bool:
    spec_column = table.column(column)
    if spec_column is None:
        return False
    if column_ref(table.ref, column) in mask.columns:
        return True
    if mask.classification and spec_column.classification == mask.classification:
        return True
    if mask.tags:
        tags = table.column_tags(spec_column)
        return all(tags.get(k) == v for k, v in mask.tags.items())
    return False


def require_consumer(spec: MeshSpec, name: str) -> Consumer:
    consumer = spec.consumer(name)
    if consumer is None:
        raise MeshsimError(
            unknown_name_message("consumer", name, spec.consumer_names()),
            hint="consumers are defined in mesh.yaml; 'meshsim access' lists who sees what",
        )
    return consumer


def resolve_access(
    spec: MeshSpec, consumer_name: str, table_ref: str, policies: Policies | None = None
) -> TableAccess:
    """Who sees what of ``table_ref``: per column full, masked or denied, plus row filters.
    Only the policies that can apply to the pair are looked at (:mod:`meshsim.policy.index`)."""
    from meshsim.policy.index import policy_index

    policies = policies if policies is not None else spec.policies
    consumer = require_consumer(spec, consumer_name)
    table = spec.table(table_ref)
    if table is None:
        raise MeshsimError(
            unknown_name_message("table", table_ref, [t.ref for t in spec.tables()]),
            hint="run 'meshsim tables' to list them",
        )
    index = policy_index(spec, policies)
    granted: dict[str, str] = {}
    grant_rules: list[str] = []
    for position in index.grants_for(consumer, table):
        grant = policies.grants[position]
        covered = _grant_columns(grant, table)
        if covered:
            name = rule_name(grant, "grant", position)
            grant_rules.append(name)
            for column in covered:
                granted.setdefault(column, f"grant {name}")
    for position in index.selected("tag grant", consumer):
        tag_grant = policies.tag_grants[position]
        name = rule_name(tag_grant, "tag_grant", position)
        covered = {
            c.name for c in table.columns if tags_match(tag_grant.expression, table.column_tags(c))
        }
        if covered:
            grant_rules.append(name)
            for column in covered:
                granted.setdefault(column, f"tag grant {name} ({tag_grant.expression})")

    if not granted:  # deny by default: nothing to mask or filter
        denied = tuple(ColumnAccess(c.name, "denied", "no grant covers it") for c in table.columns)
        return TableAccess(consumer.name, table_ref, denied, tuple(grant_rules))
    matching_masks = [policies.masks[i] for i in index.selected("mask", consumer)]
    columns = []
    for spec_column in table.columns:
        name = spec_column.name
        if name not in granted:
            columns.append(ColumnAccess(name, "denied", "no grant covers it"))
            continue
        mask = next((m for m in matching_masks if mask_selects_column(m, table, name)), None)
        if mask is not None:
            columns.append(
                ColumnAccess(name, "masked", f"mask {mask.name} ({mask.function})", mask)
            )
        else:
            columns.append(ColumnAccess(name, "full", granted[name]))
    row_filters = tuple(
        policies.row_filters[i]
        for i in index.row_filters_on(table_ref)
        if index.selects("row filter", i, consumer)
    )
    if not any(c.visible for c in columns):
        row_filters = ()
    return TableAccess(consumer.name, table_ref, tuple(columns), tuple(grant_rules), row_filters)


def withheld_access(access: TableAccess, product: str) -> TableAccess:
    """``access`` with every column denied: the table's product is withheld from consumers
    (unpublished breaking changes, :mod:`meshsim.contracts.live`)."""
    rule = f"withheld: product '{product}' has unpublished breaking changes"
    columns = tuple(ColumnAccess(c.column, "denied", rule) for c in access.columns)
    return TableAccess(access.consumer, access.table, columns, access.grants)


def access_matrix(
    spec: MeshSpec,
    consumers: Iterable[str] | None = None,
    policies: Policies | None = None,
) -> list[TableAccess]:
    """Every (consumer, table) pair, consumers in spec order then tables in spec order."""
    names = list(consumers) if consumers is not None else spec.consumer_names()
    return [
        resolve_access(spec, name, table.ref, policies) for name in names for table in spec.tables()
    ]


def matrix_page(
    spec: MeshSpec, consumers: Sequence[str], limit: int | None, offset: int
) -> tuple[list[tuple[str, str]], int, int]:
    """The page of :func:`access_matrix`'s cells (one per column of each pair) from ``offset``,
    ``limit`` long, located without resolving any pair: the (consumer, table) pairs that hold
    it, how many of their cells come before it, and how many cells the whole matrix has."""
    widths = [(table.ref, len(table.columns)) for table in spec.tables()]
    per_consumer = sum(width for _, width in widths)
    end = None if limit is None else offset + limit
    pairs: list[tuple[str, str]] = []
    skip, position = 0, 0
    for name in consumers:
        if end is not None and position >= end:
            break
        if position + per_consumer <= offset:
            position += per_consumer
            continue
        for ref, width in widths:
            if position + width > offset and (end is None or position < end):
                if not pairs:
                    skip = offset - position
                pairs.append((name, ref))
            position += width
    return pairs, skip, per_consumer * len(consumers)


def readable_access(
    spec: MeshSpec,
    policies: Policies | None = None,
    consumers: Iterable[str] | None = None,
    tables: Iterable[str] | None = None,
) -> list[TableAccess]:
    """The pairs of :func:`access_matrix` (of ``consumers`` and ``tables``, all by default)
    in which the consumer may read something, in the same order; only each table's possible
    readers are resolved, so the cost follows the grants, not consumers x tables."""
    from meshsim.policy.index import policy_index

    policies = policies if policies is not None else spec.policies
    index = policy_index(spec, policies)
    wanted = set(consumers) if consumers is not None else None
    for name in wanted or ():
        require_consumer(spec, name)
    order = index.consumer_order
    found: list[tuple[int, int, TableAccess]] = []
    refs = list(tables) if tables is not None else [t.ref for t in spec.tables()]
    for position, ref in enumerate(refs):
        table = spec.table(ref)
        if table is None:
            raise MeshsimError(
                unknown_name_message("table", ref, [t.ref for t in spec.tables()]),
                hint="run 'meshsim tables' to list them",
            )
        for name in index.readers(table):
            if wanted is not None and name not in wanted:
                continue
            access = resolve_access(spec, name, ref, policies)
            if access.granted:
                found.append((order[name], position, access))
    found.sort(key=lambda item: item[:2])
    return [access for _, _, access in found]
