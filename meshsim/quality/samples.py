"""Sample failing keys as a viewer may see them: the access answer decides, never this module.

A governance admin sees every sample value. A consumer sees a value only of a column it reads
in full (granted, unmasked) in a table no row filter narrows for it (a key of a row it may not
read would tell it that row exists); every other value is hidden. Without a viewer (the
operator's view), a value is shown only when every consumer who is not an admin and reads
the table reads that column in full: a column anyone sees masked or not at all is hidden.
"""

from __future__ import annotations

from collections.abc import Callable

from meshsim.policy.access import TableAccess
from meshsim.quality.results import HIDDEN, CheckRun, RuleResult
from meshsim.spec.loader import MeshSpec

#: ``(consumer, table) -> what governed SQL lets it see`` (``Mesh.table_access``)
AccessOf = Callable[[str, str], TableAccess]


def _readable_for(access: TableAccess) -> set[str]:
    if access.filtered:
        return set()
    return {c.column for c in access.columns if c.state == "full"}


def readable_columns(
    spec: MeshSpec, viewer: str | None, table: str, access: AccessOf
) -> set[str] | None:
    """The columns of ``table`` whose values ``viewer`` may see in a sample (None: all,
    a custom query's own columns included)."""
    found = spec.table(table)
    names = {c.name for c in found.columns} if found is not None else set()
    if viewer is not None:
        consumer = spec.consumer(viewer)
        if consumer is not None and consumer.admin:
            return None
        return _readable_for(access(viewer, table)) & names
    readable = set(names)
    for consumer in spec.mesh.consumers:
        if consumer.admin:
            continue
        seen = access(consumer.name, table)
        if seen.granted:
            readable &= {c.column for c in seen.columns if c.state == "full"}
    return readable


def for_viewer(run: CheckRun, spec: MeshSpec, viewer: str | None, access: AccessOf) -> CheckRun:
    """``run`` with every sample value ``viewer`` may not see replaced by ``<hidden>``."""
    readable: dict[str, set[str] | None] = {}
    results: list[RuleResult] = []
    for result in run.results:
        if not result.samples:
            results.append(result)
            continue
        if result.table not in readable:
            readable[result.table] = readable_columns(spec, viewer, result.table, access)
        shown = readable[result.table]
        if shown is None:
            results.append(result)
            continue
        hidden = [c for c in result.sample_columns if c not in shown]
        samples = [
            [
                value if column in shown else HIDDEN
                for column, value in zip(result.sample_columns, row, strict=True)
            ]
            for row in result.samples
        ]
        results.append(result.model_copy(update={"samples": samples, "hidden_columns": hidden}))
    return run.model_copy(update={"results": results, "viewer": viewer})
