"""What a verified plan depends on of its consumer's policies, so that a policy change that
does not touch a plan leaves it in use (the engine's plan cache and the plan store).

The planning rules read the policies only through the consumer's resolved access to a table
(:meth:`meshsim.query.rewrite.Planner.access_for`): resolve expands stars to the visible
columns of the tables a query names, authorise refuses by the grants and columns, bind
compiles each table's masks and row filters (with the consumer's attributes, which
predicates and masks may read) and pins the versions of the tables those filters look up,
which the plan's bound versions already hold. So planning a text again under other policies
makes the same plan exactly when every table access the plan asked for, and the consumer's
attributes, are what they were: :class:`PlanDependencies` are those, and a plan is reused
while :func:`still_hold`. Of an access, the names of the grants that gave it and of each
column's rule are not read by planning, only by the audit and ``explain``: they are left
out of the digest (a subscription to a table the consumer read whole already changes only
them), and a reused plan names the access in force (:func:`with_current_access`).

A plan whose answer depends on the consumer's whole view keeps the fingerprint of all its
policies instead (reused only under the very same policies): a listing (SHOW TABLES, SHOW
ALL TABLES, ``information_schema``: rule statement's listing reads every table's access)
and a plan over a meshsim system table.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from meshsim.policy.access import TableAccess
    from meshsim.query.pipeline import Attempt
    from meshsim.query.rewrite import Plan, Planner


@dataclass(frozen=True)
class PlanDependencies:
    """``fingerprint``: of all the policies the plan was made under (reused under those
    always); ``accesses``: (table, :func:`access_digest`) of every table access planning
    asked for, or None when the plan depends on the whole view; ``attributes``: the digest
    of the consumer's attributes."""

    fingerprint: str
    accesses: tuple[tuple[str, str], ...] | None
    attributes: str


def dependencies_of(
    planner: Planner, attempt: Attempt, plan: Plan, asked: Iterable[str]
) -> PlanDependencies:
    """What ``plan``, just made for ``attempt``, depends on; ``asked``: every table the
    serving gate was asked for while planning it (planning asks it before each access)."""
    from sqlglot import exp

    from meshsim.system import SYSTEM_DOMAIN

    refs = set(asked) | {t.ref for t in plan.tables}
    if attempt.tree is not None:  # the visible schema's tables (cached without asking)
        refs |= {f"{t.db}.{t.name}".lower() for t in attempt.tree.find_all(exp.Table) if t.db}
    refs = {ref for ref in refs if planner.spec.table(ref) is not None}
    whole_view = attempt.whole_view or any(
        planner.spec.table(ref).domain == SYSTEM_DOMAIN  # type: ignore[union-attr]
        for ref in refs
    )
    accesses = None
    if not whole_view:
        access = _access(planner, attempt)
        accesses = tuple((ref, _digest_of(planner, access(ref))) for ref in sorted(refs))
    return PlanDependencies(attempt.fingerprint, accesses, attributes_digest(planner, attempt))


def still_hold(dependencies: PlanDependencies | None, planner: Planner, attempt: Attempt) -> bool:
    """Whether planning ``attempt``'s text now would make the plan ``dependencies`` are of:
    the same policies, or (a plan that does not read the whole view) the same access to each
    table it asked for and the same attributes. May raise as planning would (a product the
    serving gate withholds now)."""
    if dependencies is None:
        return False
    if dependencies.fingerprint == attempt.fingerprint:
        return True
    if dependencies.accesses is None:
        return False
    if dependencies.attributes != attributes_digest(planner, attempt):
        return False
    access = _access(planner, attempt)
    return all(_digest_of(planner, access(ref)) == digest for ref, digest in dependencies.accesses)


def _access(planner: Planner, attempt: Attempt):
    assert attempt.policies is not None
    return planner.access_for(attempt.consumer, attempt.fingerprint, attempt.policies)


def _digest_of(planner: Planner, access: TableAccess) -> str:
    """:func:`access_digest`, once per resolved access object (the planner's access cache
    hands out one per consumer, policies and table)."""
    cached = planner.caches.access_digests.get(id(access))
    if cached is None or cached[0] is not access:
        cached = (access, access_digest(access))
        planner.caches.access_digests.put(id(access), cached)
    return cached[1]


def access_digest(access: TableAccess) -> str:
    """A digest of everything ``access`` holds that planning reads: every field (so a field
    added to it later is covered without a change here) but the names that only say why,
    which the audit and ``explain`` read from the plan's current access
    (:func:`with_current_access`): the grants that gave the columns and each column's rule.
    A subscription to a table the consumer already read whole changes only those."""
    sql_relevant = dataclasses.replace(
        access,
        grants=(),
        columns=tuple(dataclasses.replace(c, rule="") for c in access.columns),
    )
    return _digest(_plain(sql_relevant))


def with_current_access(plan: Plan, planner: Planner, attempt: Attempt) -> Plan:
    """``plan`` (reused under ``attempt``'s policies, :func:`still_hold`) naming the
    consumer's access now: the same SQL, the grants and rules that apply now."""
    access = _access(planner, attempt)
    tables = [dataclasses.replace(t, access=access(t.ref)) for t in plan.tables]
    if all(new.access is old.access for new, old in zip(tables, plan.tables, strict=True)):
        return plan
    return dataclasses.replace(plan, tables=tables)


def attributes_digest(planner: Planner, attempt: Attempt) -> str:
    from meshsim.policy.access import require_consumer

    consumer = require_consumer(planner.spec, attempt.consumer)
    return _digest(sorted(consumer.attributes.items()))


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(value: Any) -> Any:
    """``value`` as JSON data: dataclasses and pydantic models field by field, sequences as
    lists; anything else is refused (never digested by its repr)."""
    if isinstance(value, BaseModel):
        return [type(value).__name__, value.model_dump(mode="json", by_alias=True)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return [type(value).__name__, {f.name: _plain(getattr(value, f.name)) for f in fields}]
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot digest a {type(value).__name__} of a table's access")
