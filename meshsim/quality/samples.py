"""What a viewer may see of a check's results: the access answer decides, never this module.

**Sample keys.** A governance admin sees every sample value. A consumer sees a value only of a
column it reads in full (granted, unmasked) in a table no row filter narrows for it (a key of
a row it may not read would tell it that row exists); every other value is hidden. Without a
viewer (the operator's view), a value is shown only when every consumer who is not an admin
and reads the table reads that column in full. A custom query's rows are not the rows of its
table (it may read any table, as the owning domain, and name its output columns anything), so
its sample values are shown to an admin only.

**Observations.** The newest value a freshness rule measured on a column is a data value: it
is shown as a sample value would be, and only to a viewer that reads the column in full in a
table no row filter narrows for it (in the operator's view: every non-admin reader does). A
row count is the size of the table: a consumer whose row filter narrows the table sees it as
``<hidden>`` (it may count only its own rows), as does one that does not read the table
(``meshsim show --as``); the operator sees it, as ``meshsim tables``
shows every table's total. A commit-time freshness (no column) is not data and always shown.
Failing counts are always shown to whoever may check the product.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from meshsim.policy.access import TableAccess
from meshsim.quality.results import HIDDEN, CheckRun, RuleResult
from meshsim.spec.loader import MeshSpec

#: ``(consumer, table) -> what governed SQL lets it see`` (``Mesh.table_access``)
AccessOf = Callable[[str, str], TableAccess]


def _full(access: TableAccess) -> set[str]:
    return {c.column for c in access.columns if c.state == "full"}


@dataclass
class Viewer:
    """One viewer's reading of the tables (``name`` None: the operator), each answer
    computed once."""

    spec: MeshSpec
    name: str | None
    access: AccessOf

    def __post_init__(self) -> None:
        consumer = self.spec.consumer(self.name) if self.name is not None else None
        self.admin = consumer is not None and consumer.admin
        self._cache: dict[tuple[str, bool], set[str]] = {}

    def _columns(self, table: str) -> set[str]:
        found = self.spec.table(table)
        return {c.name for c in found.columns} if found is not None else set()

    def readable(self, table: str, *, unfiltered: bool) -> set[str] | None:
        """The columns of ``table`` whose values the viewer may see (None: every one);
        ``unfiltered``: in the operator's view too, only where no reader's row filter
        narrows the table."""
        if self.admin:
            return None
        key = (table, unfiltered)
        if key not in self._cache:
            self._cache[key] = self._readable(table, unfiltered)
        return self._cache[key]

    def _readable(self, table: str, unfiltered: bool) -> set[str]:
        names = self._columns(table)
        if self.name is not None:
            seen = self.access(self.name, table)
            return set() if seen.filtered else _full(seen) & names
        readable = set(names)
        for consumer in self.spec.mesh.consumers:
            if consumer.admin:
                continue
            seen = self.access(consumer.name, table)
            if seen.granted:
                readable &= set() if unfiltered and seen.filtered else _full(seen)
        return readable

    def counts_rows(self, table: str) -> bool:
        """Whether the viewer may see the row count of ``table``: a consumer viewer reads it
        and no row filter narrows it (the operator sees every total)."""
        if self.admin or self.name is None:
            return True
        seen = self.access(self.name, table)
        return seen.granted and not seen.filtered


def _freshness_column(spec: MeshSpec, table: str, rule: str) -> tuple[str | None, str]:
    """The column a freshness rule reads (None: the commit time) and its allowed age."""
    from meshsim.quality.bound import bound_rules
    from meshsim.spec.quality import Freshness

    found = spec.table(table)
    if found is not None:
        for bound in bound_rules(found):
            if bound.name == rule and isinstance(bound.rule, Freshness):
                return (bound.columns[0] if bound.columns else None), bound.rule.freshness
    return None, ""


def _observed(result: RuleResult, viewer: Viewer) -> dict[str, Any]:
    """The update hiding ``result``'s observation from ``viewer`` (empty: shown)."""
    if result.observed is None and not result.message:
        return {}
    if result.kind == "row_count" and not viewer.counts_rows(result.table):
        message = "the row count is outside its bounds" if result.status == "failed" else ""
        return {"observed": HIDDEN, "message": message if result.message else ""}
    if result.kind != "freshness" or result.status == "error":
        return {}
    column, allowed = _freshness_column(viewer.spec, result.table, result.rule)
    if column is None:
        return {}
    shown = viewer.readable(result.table, unfiltered=True)
    if shown is None or column in shown:
        return {}
    message = f"newest {column} is older than {allowed}" if result.status == "failed" else ""
    return {"observed": HIDDEN if result.observed is not None else None, "message": message}


def _samples(result: RuleResult, viewer: Viewer) -> dict[str, Any]:
    """The update hiding the sample values ``viewer`` may not see (empty: all shown)."""
    if not result.samples or viewer.admin:
        return {}
    if result.kind == "sql":
        shown: set[str] = set()
    else:
        found = viewer.readable(result.table, unfiltered=False)
        assert found is not None
        shown = found
    hidden = [c for c in result.sample_columns if c not in shown]
    samples = [
        [
            value if column in shown else HIDDEN
            for column, value in zip(result.sample_columns, row, strict=True)
        ]
        for row in result.samples
    ]
    return {"samples": samples, "hidden_columns": hidden}


def for_viewer(run: CheckRun, spec: MeshSpec, viewer: str | None, access: AccessOf) -> CheckRun:
    """``run`` with every sample value and observation ``viewer`` may not see hidden."""
    seen = Viewer(spec, viewer, access)
    results: list[RuleResult] = []
    for result in run.results:
        update = {**_samples(result, seen), **_observed(result, seen)}
        results.append(result.model_copy(update=update) if update else result)
    return run.model_copy(update={"results": results, "viewer": viewer})


def stored_for_viewer(
    rows: list[dict[str, Any]], spec: MeshSpec, viewer: str | None, access: AccessOf
) -> list[dict[str, Any]]:
    """Stored results (``meshsim show``'s rows) with the observations ``viewer`` may not
    see hidden, by the same rule as a check's."""
    seen = Viewer(spec, viewer, access)
    shown = []
    for row in rows:
        as_result = RuleResult(
            product="",
            table=row["table"],
            rule=row["rule"],
            kind=row["kind"],
            severity=row["severity"],
            # a rule never checked on the published version: hidden as a failure would be
            status=row["status"] if row["status"] in ("passed", "error") else "failed",
            version=row["version"],
            checked_at=row["checked_at"],
            observed=row["observed"],
            message=row.get("message") or "",
        )
        update = _observed(as_result, seen)
        hidden = {k: v for k, v in update.items() if k in row}
        shown.append({**row, **hidden})
    return shown
