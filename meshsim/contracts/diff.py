"""The changes between two versions of a product, each breaking for its consumers or not.

A change is **breaking** when a consumer that relied on the old version can fail or be
misled by the new one:

* a table or column removed, or renamed (a column gone where a new one of the same type takes
  its place);
* a column type narrowed or changed (widening, which holds every old value, is not:
  :func:`meshsim.spec.types.can_hold`);
* the primary key changed;
* nullability changed either way: tightened (``nullable: false`` on a column that allowed
  NULLs: the rows published before may hold them, and producers writing them fail), or
  loosened (a column declared ``nullable: false`` that may now hold NULLs: consumers relied
  on it having none);
* a consumer's access made less protected or taken away, by a change of classification, tags
  or ``allow_unmasked``, judged by effect under the mesh's policies (:mod:`.effect`): a
  classification or tag means nothing by itself, the masks and grants that select it do;
* a quality rule removed, loosened (``error`` to ``warn``, more accepted values, wider bounds,
  a longer freshness) or changed in a way meshsim cannot order (another regex, SQL or
  reference); a rule added or tightened promises more and is not breaking (it can only fail
  the producer's own gate);
* the freshness SLA loosened or removed.

Descriptions, tags and classifications (by themselves), owners, sources, partitioning and
the version itself are reported, not breaking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from meshsim.spec.models import Column, Product, Table
from meshsim.spec.quality import AcceptedValues, Freshness, Range, RowCount, rule_kind
from meshsim.spec.types import can_hold

if TYPE_CHECKING:
    from meshsim.spec.loader import MeshSpec


@dataclass(frozen=True)
class Change:
    """One change: ``what`` changed at ``target`` (a product, table or column reference),
    ``detail`` in words, whether it breaks consumers, and the ``consumers`` whose access it
    changes (for access changes; subscribers are found separately)."""

    what: str
    target: str
    detail: str
    breaking: bool
    consumers: tuple[str, ...] = ()

    def row(self) -> dict[str, Any]:
        return {
            "breaking": "yes" if self.breaking else "no",
            "change": self.what,
            "target": self.target,
            "detail": self.detail,
        }

    def __str__(self) -> str:
        return f"{self.what} {self.target}: {self.detail}"


def _duration_minutes(text: str) -> int:
    amount, unit = int(text[:-1].strip()), text[-1]
    return amount * {"m": 1, "h": 60, "d": 1440}[unit]


def diff_products(domain: str, old: Product, new: Product, spec: MeshSpec) -> list[Change]:
    """Every change from ``old`` to ``new`` (two versions of one product of ``domain``), the
    access changes judged under ``spec``'s consumers and policies."""
    from meshsim.contracts.effect import access_changes

    if old == new:  # both resolved under the same policies: no change, of access either
        return []
    ref = f"{domain}.{new.name}"
    changes: list[Change] = []
    if old.version != new.version:
        changes.append(Change("version", ref, f"{old.version} -> {new.version}", False))
    for field in ("description", "owner", "tags", "production"):
        if getattr(old, field) != getattr(new, field):
            changes.append(Change(f"{field} changed", ref, _both(old, new, field), False))
    changes += _freshness(ref, old.freshness_sla, new.freshness_sla)
    new_tables = {t.name: t for t in new.tables}
    old_tables = {t.name: t for t in old.tables}
    for name, table in old_tables.items():
        target = f"{domain}.{name}"
        if name not in new_tables:
            changes.append(Change("table removed", target, "consumers lose it", True))
        else:
            changes += _table(target, table, new_tables[name])
    for name in new_tables.keys() - old_tables.keys():
        changes.append(Change("table added", f"{domain}.{name}", "new table", False))
    return changes + access_changes(spec, domain, old, new)


def _both(old: BaseModel, new: BaseModel, field: str) -> str:
    before, after = getattr(old, field), getattr(new, field)
    if isinstance(before, BaseModel):
        before, after = (
            before.model_dump(exclude_defaults=True),
            after.model_dump(exclude_defaults=True),
        )
    return f"{before!r} -> {after!r}"


def _freshness(ref: str, old: str | None, new: str | None) -> list[Change]:
    if old == new or (
        old is not None and new is not None and _duration_minutes(old) == _duration_minutes(new)
    ):
        return []  # "24 h" and "24h" (as a contract writes it back) are one SLA
    if old is None:
        return [Change("freshness SLA added", ref, f"{new}", False)]
    if new is None:
        return [Change("freshness SLA removed", ref, f"was {old}", True)]
    looser = _duration_minutes(new) > _duration_minutes(old)
    what = "freshness SLA loosened" if looser else "freshness SLA tightened"
    return [Change(what, ref, f"{old} -> {new}", looser)]


def _table(ref: str, old: Table, new: Table) -> list[Change]:
    changes: list[Change] = []
    for field in ("description", "tags", "partition_by", "sort_by", "source", "column_mapping"):
        if getattr(old, field) != getattr(new, field):
            changes.append(Change(f"table {field} changed", ref, _both(old, new, field), False))
    if old.primary_key != new.primary_key:
        detail = f"{old.primary_key} -> {new.primary_key}"
        changes.append(Change("primary key changed", ref, detail, True))
    old_columns = {c.name: c for c in old.columns}
    new_columns = {c.name: c for c in new.columns}
    added = [c for c in new.columns if c.name not in old_columns]
    for position, column in enumerate(old.columns):
        target = f"{ref}.{column.name}"
        if column.name in new_columns:
            changes += _column(target, column, new_columns[column.name])
            continue
        successor = new.columns[position] if position < len(new.columns) else None
        if successor is not None and successor in added and successor.type == column.type:
            added.remove(successor)
            detail = f"now '{successor.name}'; queries naming '{column.name}' fail"
            changes.append(Change("column renamed", target, detail, True))
        else:
            changes.append(Change("column removed", target, "queries naming it fail", True))
    for column in added:
        changes.append(Change("column added", f"{ref}.{column.name}", column.type, False))
    changes += _rules(ref, old.quality, new.quality)
    return changes


def _column(ref: str, old: Column, new: Column) -> list[Change]:
    changes: list[Change] = []
    if old.type != new.type:
        widened = can_hold(new.type, old.type)
        what = "type widened" if widened else "type narrowed"
        changes.append(Change(what, ref, f"{old.type} -> {new.type}", not widened))
    if old.nullable != new.nullable:
        if new.nullable:
            detail = "nullable: false -> true; consumers relied on it never being NULL"
            changes.append(Change("nullability loosened", ref, detail, True))
        else:
            detail = "nullable: true -> false; rows published before may hold NULLs"
            changes.append(Change("nullability tightened", ref, detail, True))
    for field in ("classification", "description", "tags", "allow_unmasked"):
        if getattr(old, field) != getattr(new, field):
            changes.append(Change(f"column {field} changed", ref, _both(old, new, field), False))
    changes += _rules(ref, old.quality, new.quality)
    return changes


# --- quality rules ---------------------------------------------------------------------------


def _rule_key(rule: BaseModel) -> tuple[Any, ...]:
    """What a rule is about, so that two versions of one rule are compared with each other."""
    kind = rule_kind(rule)
    value = getattr(rule, kind)
    if kind in ("not_null", "unique"):
        return (kind, tuple(value) if isinstance(value, list) else value)
    if kind == "references":
        return (kind, value, tuple(rule.columns))  # type: ignore[attr-defined]
    if kind == "sql":
        return (kind, rule.name or value)  # type: ignore[attr-defined]
    return (kind, getattr(rule, "column", None))


def _label(rule: BaseModel) -> str:
    kind, *about = _rule_key(rule)
    shown = ", ".join(str(a) for a in about if a not in (None, True))
    name = getattr(rule, "name", None)
    return (name or kind) + (f" ({kind} {shown})" if shown and kind != "sql" else f" ({kind})")


def _rules(ref: str, old: list[Any], new: list[Any]) -> list[Change]:
    """Rules about the same thing (:func:`_rule_key`): a rule that is in both versions
    unchanged is paired with itself first (so a rule added in front of an equal-keyed one is an
    addition, not a change of the old one); the others are compared in file order, and the
    ones left over were removed or added."""
    changes: list[Change] = []
    before: dict[tuple[Any, ...], list[BaseModel]] = {}
    after: dict[tuple[Any, ...], list[BaseModel]] = {}
    for rules, grouped in ((old, before), (new, after)):
        for rule in rules:
            grouped.setdefault(_rule_key(rule), []).append(rule)
    for key in [*before, *(k for k in after if k not in before)]:
        olds, news = list(before.get(key, [])), list(after.get(key, []))
        for rule in [r for r in olds if r in news]:
            olds.remove(rule)
            news.remove(rule)
        for old_rule, new_rule in zip(olds, news, strict=False):
            if old_rule != new_rule:
                changes.append(_rule_change(ref, old_rule, new_rule))
        for rule in olds[len(news) :]:
            changes.append(Change("quality rule removed", ref, _label(rule), True))
        for rule in news[len(olds) :]:
            changes.append(Change("quality rule added", ref, _label(rule), False))
    return changes


_SEVERITY_MOVE = {("error", "warn"): "loosened", ("warn", "error"): "tightened"}


def _rule_change(ref: str, old: BaseModel, new: BaseModel) -> Change:
    """One rule's change: loosened (breaking), tightened, reworded only, or changed in a way
    that cannot be ordered (breaking)."""
    label = _label(new)
    documentation = {"name", "description", "severity"}
    core_old, core_new = (
        old.model_dump(exclude=documentation),
        new.model_dump(exclude=documentation),
    )
    severity = (getattr(old, "severity", "error"), getattr(new, "severity", "error"))
    moves = {
        _SEVERITY_MOVE.get(severity, "same"),
        "same" if core_old == core_new else _order(old, new),
    } - {"same"}
    move = moves.pop() if len(moves) == 1 else ("changed" if moves else "reworded")
    if move == "reworded":  # its name, description or spelling, not what it checks
        return Change("quality rule reworded", ref, label, False)
    if move == "changed":
        detail = f"{label}: {core_old} -> {core_new}" if core_old != core_new else label
        return Change("quality rule changed", ref, detail, True)
    if severity[0] != severity[1]:
        label += f": {severity[0]} -> {severity[1]}"
    return Change(f"quality rule {move}", ref, label, move == "loosened")


def _order(old: BaseModel, new: BaseModel) -> str:
    """``tightened`` (promises more), ``loosened`` (less), ``same`` (the same promise written
    another way) or ``changed`` (cannot be ordered)."""
    if isinstance(old, AcceptedValues) and isinstance(new, AcceptedValues):
        before, after = set(old.accepted_values), set(new.accepted_values)
        if after == before:
            return "same"
        if after < before:
            return "tightened"
        return "loosened" if after > before else "changed"
    if isinstance(old, Freshness) and isinstance(new, Freshness) and old.column == new.column:
        old_age, new_age = _duration_minutes(old.freshness), _duration_minutes(new.freshness)
        if new_age == old_age:
            return "same"
        return "loosened" if new_age > old_age else "tightened"
    if isinstance(old, Range | RowCount) and type(new) is type(old):
        bounds_old = old.range if isinstance(old, Range) else old.row_count
        bounds_new = new.range if isinstance(new, Range) else new.row_count  # type: ignore[attr-defined]
        low = _compare(bounds_old.min, bounds_new.min, lower=True)
        high = _compare(bounds_old.max, bounds_new.max, lower=False)
        moves = {low, high} - {"same"}
        return moves.pop() if len(moves) == 1 else "changed"
    return "changed"


def _compare(old: Any, new: Any, *, lower: bool) -> str:
    if old == new:
        return "same"
    if new is None:
        return "loosened"
    if old is None:
        return "tightened"
    try:
        wider = new < old if lower else new > old
    except TypeError:
        return "changed"
    return "loosened" if wider else "tightened"


def breaking(changes: list[Change]) -> list[Change]:
    return [c for c in changes if c.breaking]


def version_key(version: str) -> tuple[int, ...]:
    """A major.minor.patch version as numbers, for ordering (``1.10.0`` after ``1.9.0``)."""
    return tuple(int(part) for part in version.split("."))


def major(version: str) -> int:
    return version_key(version)[0]
