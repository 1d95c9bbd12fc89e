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
    def __init__(self, spec: MeshSpec, policies: Policies) -> None:
        self.spec = spec
        self.policies = policies
        self._grants_everywhere: list[int] = []
        self._grants_by_product: dict[str, list[int]] = defaultdict(list)
        self._grants_by_table: dict[str, list[int]] = defaultdict(list)
        for index, grant in enumerate(policies.grants):
            if grant.all:
                self._grants_everywhere.append(index)
            elif grant.product is not None:
                self._grants_by_product[grant.product].append(index)
            else:
                refs = grant.tables or [split_column_ref(ref)[0] for ref in grant.columns]
                for ref in dict.fromkeys(refs):
                    self._grants_by_table[ref].append(index)
        self._filters_by_table: dict[str, list[int]] = defaultdict(list)
        for index, row_filter in enumerate(policies.row_filters):
            self._filters_by_table[row_filter.table].append(index)
        self._named: dict[str, dict[str, list[int]]] = {}
        self._anyone: dict[str, list[int]] = {}
        for kind, items in self._kinds().items():
            named: dict[str, list[int]] = defaultdict(list)
            anyone = []
            for index, policy in enumerate(items):
                if "*" in policy.consumers:
                    anyone.append(index)
                else:
                    for name in dict.fromkeys(policy.consumers):
                        named[name].append(index)
            self._named[kind], self._anyone[kind] = named, anyone
        self._selects: dict[tuple[str, str, int], bool] = {}
        self._selected: dict[tuple[str, str], list[int]] = {}
        self._table_grants: dict[str, list[int]] = {}
        self._table_grant_sets: dict[str, set[int]] = {}
        #: each consumer's position in the spec, for answers in spec order
        self.consumer_order = {c.name: i for i, c in reversed(list(enumerate(spec.mesh.consumers)))}

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
        return self._filters_by_table.get(table_ref, [])

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


def policy_index(spec: MeshSpec, policies: Policies) -> PolicyIndex:
    """The index of ``policies`` over ``spec``, built once and kept with the spec."""
    kept: list[PolicyIndex] = spec.memo.setdefault("policy_indexes", [])
    for index in kept:
        if index.policies is policies:
            return index
    index = PolicyIndex(spec, policies)
    kept.append(index)
    del kept[:-_KEPT]
    return index
