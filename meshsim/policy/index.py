"""Policies compiled for lookups by consumer and by table.

Resolving one consumer's access to one table used to walk every grant, mask and row filter
of the mesh and test each against the consumer (a list scan of its ``consumers``), so the
access matrix, the PII lint and the publish gates cost consumers x tables x policies. A
:class:`PolicyIndex` sorts the policies once by the tables they can cover and the consumers
they name, and remembers which policies select a consumer, so that resolving a pair touches
only the policies that can apply to it; :meth:`PolicyIndex.readers` says which consumers a
table can be granted to at all, so loops over a table's readers skip everyone else. Answers
are exactly :func:`meshsim.policy.access.resolve_access`'s, in the same order.

One index is kept per spec and policies object (:func:`policy_index`); both are immutable.
The policies a query reads are the spec's followed by its consumer's subscriptions (and the
system's grants), a new object per catalog revision: their index *extends* the spec's, kept
once per spec, indexing only the policies appended to it, so a catalog change costs what it
added, not mesh.yaml's thousands of grants again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from meshsim.spec.models import ConsumerSelector, Policies, split_column_ref

if TYPE_CHECKING:
    from meshsim.spec.loader import MeshSpec

#: how many policy objects' indexes a spec keeps (one per catalog revision in a session)
_KEPT = 4


class PolicyIndex:
    def __init__(self, spec: MeshSpec, policies: Policies, base: PolicyIndex | None = None) -> None:
        """``base``: the index of a prefix of ``policies`` (:func:`extends`), whose answers
        this one reuses; only the policies after it are indexed here."""
        self.spec = spec
        self.policies = policies
        self._base = base
        #: per kind, the first position this index holds (the base holds those before)
        self._starts = {
            kind: len(items) if base is not None else 0
            for kind, items in (base or self)._kinds().items()
        }
        self._grants_everywhere: list[int] = []
        self._grants_by_product: dict[str, list[int]] = defaultdict(list)
        self._grants_by_table: dict[str, list[int]] = defaultdict(list)
        for index in range(self._starts["grant"], len(policies.grants)):
            self._add_grant(index, policies.grants[index])
        self._filters_by_table: dict[str, list[int]] = defaultdict(list)
        for index in range(self._starts["row filter"], len(policies.row_filters)):
            self._filters_by_table[policies.row_filters[index].table].append(index)
        self._named: dict[str, dict[str, list[int]]] = {}
        self._anyone: dict[str, list[int]] = {}
        for kind, items in self._kinds().items():
            named: dict[str, list[int]] = defaultdict(list)
            anyone = []
            for index in range(self._start(kind), len(items)):
                if "*" in items[index].consumers:
                    anyone.append(index)
                else:
                    for name in dict.fromkeys(items[index].consumers):
                        named[name].append(index)
            self._named[kind], self._anyone[kind] = named, anyone
        self._selects: dict[tuple[str, str, int], bool] = {}
        self._selected: dict[tuple[str, str], list[int]] = {}
        self._table_grants: dict[str, list[int]] = {}
        self._table_grant_sets: dict[str, set[int]] = {}
        #: each consumer's position in the spec, for answers in spec order
        self.consumer_order: dict[str, int] = (
            base.consumer_order
            if base is not None
            else {c.name: i for i, c in reversed(list(enumerate(spec.mesh.consumers)))}
        )

    def _add_grant(self, index: int, grant: Any) -> None:
        if grant.all:
            self._grants_everywhere.append(index)
        elif grant.product is not None:
            self._grants_by_product[grant.product].append(index)
        else:
            refs = grant.tables or [split_column_ref(ref)[0] for ref in grant.columns]
            for ref in dict.fromkeys(refs):
                self._grants_by_table[ref].append(index)

    def _start(self, kind: str) -> int:
        return self._starts[kind]

    def _kinds(self) -> dict[str, Sequence[ConsumerSelector]]:
        policies = self.policies
        return {
            "grant": policies.grants,
            "tag grant": policies.tag_grants,
            "mask": policies.masks,
            "row filter": policies.row_filters,
        }

    def selects(self, kind: str, index: int, consumer: Any) -> bool:
        """Whether policy ``index`` of ``kind`` selects ``consumer`` (remembered)."""
        from meshsim.policy.access import selects

        if index < self._start(kind):
            assert self._base is not None
            return self._base.selects(kind, index, consumer)
        key = (consumer.name, kind, index)
        found = self._selects.get(key)
        if found is None:
            found = self._selects[key] = selects(self._kinds()[kind][index], consumer)
        return found

    def selected(self, kind: str, consumer: Any) -> list[int]:
        """The policies of ``kind`` that select ``consumer``, in file order."""
        key = (consumer.name, kind)
        found = self._selected.get(key)
        if found is None:
            candidates = sorted({*self._anyone[kind], *self._named[kind].get(consumer.name, ())})
            found = [i for i in candidates if self.selects(kind, i, consumer)]
            if self._base is not None:
                found = self._base.selected(kind, consumer) + found
            self._selected[key] = found
        return found

    def grants_on(self, table: Any) -> list[int]:
        """The grants that can cover some column of ``table``, in file order."""
        found = self._table_grants.get(table.ref)
        if found is None:
            product = f"{table.domain}.{table.product}"
            found = sorted(
                {
                    *self._grants_everywhere,
                    *self._grants_by_product.get(product, ()),
                    *self._grants_by_table.get(table.ref, ()),
                }
            )
            if self._base is not None:
                found = self._base.grants_on(table) + found
            self._table_grants[table.ref] = found
        return found

    def grants_for(self, consumer: Any, table: Any) -> list[int]:
        """The grants that select ``consumer`` and can cover ``table``, in file order: by
        whichever side is shorter (a product with 400 subscribers, or a consumer with many
        grants)."""
        on_table = self.grants_on(table)
        mine = self.selected("grant", consumer)
        if len(mine) < len(on_table):
            covering = self._table_grant_sets.get(table.ref)
            if covering is None:
                covering = self._table_grant_sets[table.ref] = set(on_table)
            return [i for i in mine if i in covering]
        return [i for i in on_table if self.selects("grant", i, consumer)]

    def row_filters_on(self, table_ref: str) -> list[int]:
        mine = self._filters_by_table.get(table_ref, [])
        return self._base.row_filters_on(table_ref) + mine if self._base is not None else mine

    def readers(self, table: Any) -> list[str]:
        """The consumers, in spec order, that some grant or tag grant on ``table`` names (or
        all, where one selects ``*``): everyone else is denied every column of it."""
        names: set[str] = set()
        selectors: list[ConsumerSelector] = [self.policies.grants[i] for i in self.grants_on(table)]
        selectors += self.policies.tag_grants
        for selector in selectors:
            if "*" in selector.consumers:
                return self.spec.consumer_names()
            names.update(selector.consumers)
        known = [name for name in names if name in self.consumer_order]
        return sorted(known, key=self.consumer_order.__getitem__)


def extends(policies: Policies, base: Policies) -> bool:
    """Whether ``policies`` are ``base``'s (the same objects, in order) with grants and row
    filters appended: what merging subscriptions into the spec's policies makes."""
    return (
        len(policies.grants) >= len(base.grants)
        and len(policies.row_filters) >= len(base.row_filters)
        and _same(policies.tag_grants, base.tag_grants)
        and _same(policies.masks, base.masks)
        and _same(policies.grants[: len(base.grants)], base.grants)
        and _same(policies.row_filters[: len(base.row_filters)], base.row_filters)
    )


def _same(items: Sequence[object], others: Sequence[object]) -> bool:
    return len(items) == len(others) and all(a is b for a, b in zip(items, others, strict=True))


def policy_index(spec: MeshSpec, policies: Policies) -> PolicyIndex:
    """The index of ``policies`` over ``spec``, built once and kept with the spec: the spec's
    own policies' for as long as the spec, and one extending it for each of the last few
    policies objects (a consumer's subscriptions at a catalog revision)."""
    memo = spec.memo
    own = memo.get("policy_index")
    if own is None or own.policies is not spec.policies:
        own = memo["policy_index"] = PolicyIndex(spec, spec.policies)
    if policies is spec.policies:
        return own
    kept: list[PolicyIndex] = memo.setdefault("policy_indexes", [])
    for index in kept:
        if index.policies is policies:
            return index
    index = PolicyIndex(spec, policies, own if extends(policies, spec.policies) else None)
    kept.append(index)
    del kept[:-_KEPT]
    return index
