"""The query layer's caches, in one place, all made of one bounded helper.

Every cache here is keyed by everything its value depends on (consumer, policy fingerprint,
table versions, text), or checks it on every hit (a plan: what it depends on of the policies,
:mod:`meshsim.query.dependencies`): a stale entry can only be missed, never served. Sizes
are bounded so a long-running notebook or server does not grow without limit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class BoundedCache(Generic[V]):
    """A thread-safe least-recently-used mapping of at most ``size`` entries.

    >>> cache: BoundedCache[int] = BoundedCache(2)
    >>> cache.put("a", 1); cache.put("b", 2); cache.get("a")
    1
    >>> cache.put("c", 3)  # evicts "b", the least recently used
    >>> cache.get("b") is None, len(cache)
    (True, 2)
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a cache holds at least one entry")
        self.size = size
        self._data: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def get_or_make(self, key: Hashable, make: Callable[[], V]) -> V:
        """The cached value, or ``make()`` stored under ``key`` (made outside the lock: two
        threads may both make it, and the last one is kept; values must be equivalent)."""
        value = self.get(key)
        if value is None:
            value = make()
            self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


@dataclass
class QueryCaches:
    """All caches of one governed engine.

    ``plans``: whole verified plans by (consumer, SQL text, planning rules), reused only
    while what they depend on of the consumer's policies holds (the access to each table
    they read, or all the policies for a listing), every table they read is still at its
    bound version and its product is served (the serving gate, asked on every hit).
    ``scans``: compiled governed scans by (consumer, fingerprint, table, location, version,
    lookup versions).
    ``access``: resolved access by (consumer, fingerprint, table). ``schemas``: the
    consumer's visible schema by (consumer, fingerprint). ``fingerprints``: policies
    object id to its fingerprint. ``checked_scans``: scan SQL that passed DuckDB's parse.
    ``access_digests``: resolved access object id to its digest (what a plan depends on).
    ``templates``: plans of texts that differ only in literal values
    (:mod:`meshsim.query.templates`), made from the plans above and dropped with them.
    """

    plans: BoundedCache[Any] = field(default_factory=lambda: BoundedCache(1024))  # Plan
    scans: BoundedCache[Any] = field(default_factory=lambda: BoundedCache(512))
    access: BoundedCache[Any] = field(default_factory=lambda: BoundedCache(4096))
    schemas: BoundedCache[Any] = field(default_factory=lambda: BoundedCache(256))
    fingerprints: BoundedCache[Any] = field(default_factory=lambda: BoundedCache(64))
    checked_scans: BoundedCache[bool] = field(default_factory=lambda: BoundedCache(4096))
    access_digests: BoundedCache[Any] = field(default_factory=lambda: BoundedCache(4096))
    templates: Any = field(default_factory=lambda: _plan_templates())

    def clear(self) -> None:
        self.templates.clear()
        for cache in (
            self.plans,
            self.scans,
            self.access,
            self.schemas,
            self.fingerprints,
            self.checked_scans,
            self.access_digests,
        ):
            cache.clear()


def _plan_templates() -> Any:
    from meshsim.query.templates import PlanTemplates

    return PlanTemplates()
