"""The subscription workflow: a request's state machine and what an approval grants.

::

    pending --approve--> approved --revoke--> revoked
       |                    \\--expire--> expired
       \\--reject--> rejected

A request whose scope (the tables and columns asked for) holds no PII or sensitive column is
approved at once by meshsim itself, as in the AWS data-mesh workshop; any other waits for the
owning domain. Scope is decided at table and column level, not product level: asking for
``supply.part`` alone (all public) is approved automatically even though ``supply.supplier``
in the same product holds PII.

Only the product's owner, its domain's owner team, or a governance admin (a consumer with
``admin: true``) may decide. Every transition runs inside the caller's ``BEGIN IMMEDIATE``
transaction, so it reads the state it changes under the write lock, and is audited (who: the
principal and the OS user acting as it, see :mod:`meshsim.identity`; when, why, which
transition).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

from meshsim.catalog.models import (
    AUTO_PRINCIPAL,
    EXPIRY_PRINCIPAL,
    Request,
    stamp,
)
from meshsim.catalog.publish import PROTECTED_CLASSES
from meshsim.catalog.store import bump_revision
from meshsim.errors import CatalogError, closest
from meshsim.identity import Actor
from meshsim.spec.loader import MeshSpec, ProductSpec, TableSpec
from meshsim.spec.models import Grant, Policies, RowFilter, column_ref, split_column_ref

#: (state, action) -> new state. Anything else is an illegal transition.
TRANSITIONS: dict[tuple[str, str], str] = {
    ("pending", "approve"): "approved",
    ("pending", "reject"): "rejected",
    ("approved", "revoke"): "revoked",
    ("approved", "expire"): "expired",
}
_FROM = {"approve": "pending", "reject": "pending", "revoke": "approved", "expire": "approved"}
_PAST = {"approve": "approved", "reject": "rejected", "revoke": "revoked", "expire": "expired"}


def check_transition(request: Request, action: str) -> str:
    """The state ``action`` leads to, or a CatalogError naming the illegal transition."""
    target = TRANSITIONS.get((request.state, action))
    if target is not None:
        return target
    required = _FROM[action]
    article = "an" if required[0] in "aeiou" else "a"
    already = "already " if request.state == _PAST[action] else ""
    if request.state == "pending":
        hint = f"approve or reject it first: 'meshsim approve {request.id} --by OWNER'"
    elif request.state == "approved":
        hint = f"to end the access, run 'meshsim revoke {request.id} --by OWNER'"
    else:
        hint = (
            f"the consumer can file a new request: 'meshsim request --as {request.consumer} "
            f"{request.product} --reason ...'"
        )
    raise CatalogError(
        f"request {request.id} is {already}{request.state}; only {article} {required} request "
        f"can be {_PAST[action]}",
        hint=hint,
    )


# --- scope ---------------------------------------------------------------------------------


def _product_tables(spec: MeshSpec, product: ProductSpec) -> list[TableSpec]:
    found = (spec.table(f"{product.domain}.{t.name}") for t in product.product.tables)
    return [t for t in found if t is not None]


def resolve_scope(
    spec: MeshSpec,
    product: ProductSpec,
    tables: list[str] | None,
    columns: list[str] | None,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Qualified (tables, columns) asked for. Tables default to the product's (or to those of
    the listed columns); columns may be ``domain.table.column``, ``table.column`` or a bare
    name that only one table in scope has. Listed columns restrict their own table only."""
    available = _product_tables(spec, product)
    by_ref = {t.ref: t for t in available}
    chosen: list[str] = []
    for name in tables or []:
        ref = name if "." in name else f"{product.domain}.{name}"
        if ref not in by_ref:
            names = list(by_ref) if "." in name else [r.split(".", 1)[1] for r in by_ref]
            guess = closest(name, names)
            raise CatalogError(
                f"table '{name}' is not in {product.ref}"
                + (f"; did you mean '{guess}'?" if guess else "")
                + f" (tables: {', '.join(names)})",
                hint=f"run 'meshsim show {product.ref}' to see its tables",
            )
        chosen.append(ref)
    candidates = [by_ref[r] for r in chosen] if chosen else available
    qualified: list[str] = []
    for name in columns or []:
        qualified.append(_qualify_column(product, candidates, name))
    if not chosen:
        chosen = sorted({split_column_ref(c)[0] for c in qualified}) if qualified else list(by_ref)
    order = list(by_ref)
    return (
        tuple(sorted(set(chosen), key=order.index)),
        tuple(dict.fromkeys(qualified)),
    )


def _qualify_column(product: ProductSpec, tables: list[TableSpec], name: str) -> str:
    refs = {column_ref(t.ref, c.name): (t, c.name) for t in tables for c in t.columns}

    def forms(ref: str) -> set[str]:  # every way a user may write it: d.t.c, t.c or c
        table, column = refs[ref]
        quoted = '"' + column.replace('"', '""') + '"'
        short = {column, quoted}
        return {*short, *(f"{table.name}.{c}" for c in short), ref, f"{table.ref}.{quoted}"}

    matches = [r for r in refs if name in forms(r)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise CatalogError(
            f"column '{name}' is ambiguous in {product.ref} ({', '.join(matches)})",
            hint="name it as DOMAIN.TABLE.COLUMN",
        )
    short = [refs[r][1] for r in refs]
    message = f"column '{name}' is not in the tables asked for of {product.ref}"
    guess = closest(name, short)
    if guess:
        message += f"; did you mean '{guess}'?"
    raise CatalogError(
        f"{message} (tables: {', '.join(t.ref for t in tables)})",
        hint=f"run 'meshsim show {product.ref}' to see its columns",
    )


def scope_columns(
    spec: MeshSpec, tables: tuple[str, ...], columns: tuple[str, ...]
) -> list[tuple[TableSpec, str]]:
    """Every (table, column name) a scope covers."""
    covered: list[tuple[TableSpec, str]] = []
    for ref in tables:
        table = spec.table(ref)
        assert table is not None
        listed = [name for t, name in map(split_column_ref, columns) if t == ref]
        names = listed or [c.name for c in table.columns]
        covered.extend((table, name) for name in names)
    return covered


def protected_columns(
    spec: MeshSpec, tables: tuple[str, ...], columns: tuple[str, ...]
) -> list[str]:
    """The PII or sensitive columns in a scope (empty: the request is approved automatically)."""
    found = []
    for table, name in scope_columns(spec, tables, columns):
        column = table.column(name)
        if column is not None and column.classification in PROTECTED_CLASSES:
            found.append(f"{table.ref}.{name}")
    return found


def withheld_columns(
    spec: MeshSpec, consumer: str, tables: tuple[str, ...], columns: tuple[str, ...]
) -> list[str]:
    """Columns in a scope that a spec grant excludes for ``consumer`` (an owner decides)."""
    from meshsim.policy.access import excluded_columns

    found = []
    for table, name in scope_columns(spec, tables, columns):
        if name in excluded_columns(spec, consumer, table):
            found.append(f"{table.ref}.{name}")
    return found


# --- who may decide ------------------------------------------------------------------------


def deciders(spec: MeshSpec, product: ProductSpec) -> list[str]:
    """Principals who may decide requests for ``product``, in a stable order."""
    domain = spec.domain(product.domain)
    assert domain is not None
    names = [product.product.owner, domain.domain.owner_team]
    names += [c.name for c in spec.mesh.consumers if c.admin]
    return list(dict.fromkeys(n for n in names if n))


def require_decider(spec: MeshSpec, product: ProductSpec, principal: str, request_id: int) -> None:
    allowed = deciders(spec, product)
    if principal in allowed:
        return
    message = (
        f"'{principal}' may not decide request {request_id} for {product.ref}; only its "
        f"owner, its domain's owner team or a governance admin may ({', '.join(allowed)})"
    )
    guess = closest(principal, allowed)
    if guess:
        message += f"; did you mean '{guess}'?"
    raise CatalogError(
        message, hint=f"ask one of them to run 'meshsim approve {request_id} --by NAME'"
    )


# --- transitions ---------------------------------------------------------------------------


def load_request(con: sqlite3.Connection, request_id: int) -> Request:
    row = con.execute("SELECT * FROM requests WHERE id = ?", (request_id,)).fetchone()
    if row is None:
        ids = [r[0] for r in con.execute("SELECT id FROM requests ORDER BY id DESC LIMIT 10")]
        listed = ", ".join(map(str, sorted(ids))) if ids else "none yet"
        raise CatalogError(
            f"request {request_id} does not exist (latest requests: {listed})",
            hint="run 'meshsim requests' to list them",
        )
    return Request.from_row(row)


def audit_decision(
    con: sqlite3.Connection,
    request: Request,
    actor: Actor,
    transition: str,
    state: str,
    reason: str | None,
    now: datetime,
    tables: tuple[str, ...] = (),
    columns: tuple[str, ...] = (),
) -> None:
    con.execute(
        "INSERT INTO audit (time, kind, consumer, principal, os_user, request_id, product,"
        " transition, decision, reason, tables, columns)"
        " VALUES (?, 'decision', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            stamp(now),
            request.consumer,
            actor.principal,
            actor.os_user,
            request.id,
            request.product,
            transition,
            state,
            reason,
            json.dumps(list(tables)),
            json.dumps(list(columns)),
        ),
    )


def create(
    con: sqlite3.Connection,
    spec: MeshSpec,
    actor: Actor,
    product: ProductSpec,
    reason: str,
    tables: tuple[str, ...],
    columns: tuple[str, ...],
    expires_at: datetime | None,
    now: datetime,
) -> Request:
    """Insert ``actor``'s request; approve it at once when its scope has no PII or sensitive
    column and no column a spec grant explicitly excludes for the consumer."""
    protected = protected_columns(spec, tables, columns) + withheld_columns(
        spec, actor.principal, tables, columns
    )
    cursor = con.execute(
        "INSERT INTO requests (consumer, product, reason, tables, columns, expires_at, state,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
        (
            actor.principal,
            product.ref,
            reason,
            json.dumps(tables),
            json.dumps(columns),
            stamp(expires_at) if expires_at else None,
            stamp(now),
        ),
    )
    request = load_request(con, int(cursor.lastrowid or 0))
    audit_decision(con, request, actor, "new->pending", "pending", reason, now, tables, columns)
    if not protected:
        request = _set_approved(
            con,
            request,
            Actor(AUTO_PRINCIPAL, actor.os_user),
            tables,
            columns,
            None,
            "auto-approved: no PII or sensitive column in scope",
            now,
            auto=True,
        )
    bump_revision(con)
    return request


def _set_approved(
    con: sqlite3.Connection,
    request: Request,
    actor: Actor,
    tables: tuple[str, ...],
    columns: tuple[str, ...],
    row_filter: str | None,
    comment: str | None,
    now: datetime,
    *,
    auto: bool = False,
) -> Request:
    con.execute(
        "UPDATE requests SET state = 'approved', decided_by = ?, decided_at = ?, comment = ?,"
        " granted_tables = ?, granted_columns = ?, row_filter = ?, auto_approved = ?"
        " WHERE id = ? AND state = 'pending'",
        (
            actor.principal,
            stamp(now),
            comment,
            json.dumps(tables),
            json.dumps(columns),
            row_filter,
            int(auto),
            request.id,
        ),
    )
    audit_decision(
        con, request, actor, "pending->approved", "approved", comment, now, tables, columns
    )
    return load_request(con, request.id)


def approve(
    con: sqlite3.Connection,
    spec: MeshSpec,
    product: ProductSpec,
    request: Request,
    actor: Actor,
    columns: list[str] | None,
    row_filter: str | None,
    comment: str | None,
    now: datetime,
) -> Request:
    require_decider(spec, product, actor.principal, request.id)
    check_transition(request, "approve")
    if request.expires_at is not None and request.expires_at <= now:
        raise CatalogError(
            f"request {request.id} asked for access until {request.expires_at:%Y-%m-%d %H:%M} UTC, "
            f"which has passed",
            hint=f"the consumer can file a new request: 'meshsim request --as {request.consumer} "
            f"{request.product} --reason ... --expires DATE'",
        )
    tables, granted_columns = request.tables, request.columns
    if columns:
        tables, granted_columns = _narrow(spec, product, request, columns)
    if row_filter is not None:
        row_filter = row_filter.strip()
        _check_runs(
            spec, request, filter_targets(spec, tables, granted_columns, row_filter), row_filter
        )
    approved = _set_approved(con, request, actor, tables, granted_columns, row_filter, comment, now)
    bump_revision(con)
    return approved


def _narrow(
    spec: MeshSpec, product: ProductSpec, request: Request, columns: list[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """An owner may grant fewer columns than were asked for, never more."""
    requested = {
        f"{t.ref}.{name}" for t, name in scope_columns(spec, request.tables, request.columns)
    }
    in_scope = [t for t in _product_tables(spec, product) if t.ref in request.tables]
    chosen = tuple(dict.fromkeys(_qualify_column(product, in_scope, c) for c in columns))
    extra = [c for c in chosen if c not in requested]
    if extra:
        raise CatalogError(
            f"an approval may narrow request {request.id}, not widen it: {', '.join(extra)} "
            f"was not requested (requested: {', '.join(sorted(requested))})",
            hint="approve a subset of the requested columns, or ask for a new request",
        )
    order = list(request.tables)
    tables = tuple(sorted({split_column_ref(c)[0] for c in chosen}, key=order.index))
    return tables, chosen


def _check_runs(spec: MeshSpec, request: Request, targets: list[str], predicate: str) -> None:
    """Bind an approved row filter on empty copies of its tables, as validate binds the spec's:
    one that does not type-check would fail every query of the consumer on the product."""
    from meshsim.policy.binding import check_row_filter

    consumer = spec.consumer(request.consumer)
    attributes = dict(consumer.attributes) if consumer is not None else {}
    for table in targets:
        row_filter = RowFilter(
            name="approved_row_filter",
            consumers=[request.consumer],
            table=table,
            predicate=predicate,
        )
        check_row_filter(spec, row_filter, attributes)


def filter_targets(
    spec: MeshSpec, tables: tuple[str, ...], columns: tuple[str, ...], predicate: str
) -> list[str]:
    """The granted tables a row-filter predicate applies to: every one that has all the
    (unqualified) columns it names. A predicate no granted table can evaluate is refused."""
    from sqlglot import exp

    from meshsim.policy.fragments import parse_fragment

    tree = parse_fragment(
        predicate,
        what="row filter",
        hint="pass a boolean SQL expression over the table's columns, e.g. "
        '--row-filter "c_nationkey = 7"',
    )
    names = {
        c.name
        for c in tree.find_all(exp.Column)
        if not c.table and not c.find_ancestor(exp.Subquery, exp.Select)
    }
    targets = []
    for ref in tables:
        table = spec.table(ref)
        assert table is not None
        if names <= {c.name for c in table.columns}:
            targets.append(ref)
    if not targets:
        listed = "; ".join(
            f"{ref}: {', '.join(c.name for c in spec.table(ref).columns)}"  # type: ignore[union-attr]
            for ref in tables
        )
        raise CatalogError(
            f"row filter '{predicate}' names column(s) {', '.join(sorted(names))} that no granted "
            f"table has ({listed})",
            hint="write the predicate over the columns of one granted table",
        )
    return targets


def reject(
    con: sqlite3.Connection,
    spec: MeshSpec,
    product: ProductSpec,
    request: Request,
    actor: Actor,
    comment: str,
    now: datetime,
) -> Request:
    require_decider(spec, product, actor.principal, request.id)
    check_transition(request, "reject")
    if not comment.strip():
        raise CatalogError("a rejection needs a comment saying why", hint="pass --comment TEXT")
    con.execute(
        "UPDATE requests SET state = 'rejected', decided_by = ?, decided_at = ?, comment = ?"
        " WHERE id = ?",
        (actor.principal, stamp(now), comment, request.id),
    )
    audit_decision(con, request, actor, "pending->rejected", "rejected", comment, now)
    bump_revision(con)
    return load_request(con, request.id)


def revoke(
    con: sqlite3.Connection,
    spec: MeshSpec,
    product: ProductSpec,
    request: Request,
    actor: Actor,
    comment: str | None,
    now: datetime,
) -> Request:
    require_decider(spec, product, actor.principal, request.id)
    check_transition(request, "revoke")
    con.execute(
        "UPDATE requests SET state = 'revoked', ended_by = ?, ended_at = ? WHERE id = ?",
        (actor.principal, stamp(now), request.id),
    )
    audit_decision(con, request, actor, "approved->revoked", "revoked", comment, now)
    bump_revision(con)
    return load_request(con, request.id)


def expire_due(con: sqlite3.Connection, now: datetime, os_user: str) -> list[int]:
    """Move every approved request past its expiry to ``expired`` (meshsim's decision, taken
    in a process run by ``os_user``); return their ids."""
    rows = con.execute(
        "SELECT * FROM requests WHERE state = 'approved' AND expires_at IS NOT NULL"
        " AND expires_at <= ? ORDER BY id",
        (stamp(now),),
    ).fetchall()
    for row in rows:
        request = Request.from_row(row)
        con.execute(
            "UPDATE requests SET state = 'expired', ended_by = ?, ended_at = ? WHERE id = ?",
            (EXPIRY_PRINCIPAL, stamp(now), request.id),
        )
        audit_decision(
            con,
            request,
            Actor(EXPIRY_PRINCIPAL, os_user),
            "approved->expired",
            "expired",
            f"expired at {stamp(request.expires_at or now)}",
            now,
        )
    if rows:
        bump_revision(con)
    return [r["id"] for r in rows]


# --- what approvals grant ------------------------------------------------------------------


def subscription_name(request_id: int) -> str:
    return f"subscription_{request_id}"


def request_policies(spec: MeshSpec, request: Request) -> Policies:
    """The grants (to the consumer itself) and row filters one approved request stands for."""
    grants: list[Grant] = []
    name = subscription_name(request.id)
    listed_tables = {split_column_ref(c)[0] for c in request.granted_columns}
    whole = [t for t in request.granted_tables if t not in listed_tables]
    if whole:
        grants.append(Grant(name=name, consumers=[request.consumer], tables=whole))
    if request.granted_columns:
        grants.append(
            Grant(
                name=f"{name}_columns",
                consumers=[request.consumer],
                columns=list(request.granted_columns),
            )
        )
    filters: list[RowFilter] = []
    if request.row_filter:
        targets = filter_targets(
            spec, request.granted_tables, request.granted_columns, request.row_filter
        )
        filters = [
            RowFilter(
                name=f"{name}_filter{i}",
                consumers=[request.consumer],
                table=t,
                predicate=request.row_filter,
            )
            for i, t in enumerate(targets, 1)
        ]
    return Policies(grants=grants, row_filters=filters)
