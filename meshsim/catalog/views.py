"""Read-only views of the catalog: products, one product in detail, subscriptions, access.

Metadata is discoverable by every consumer; only data needs a grant. ``show`` can say, for an
asking consumer, which columns they would see full, masked or denied right now.

Row counts are data: a total tells a filtered consumer how many rows its filter hides. A
listing without an asking consumer is the operator's view and shows the published totals (the
counts ``meshsim tables`` reads from the Delta logs); a listing for a consumer shows only what
a :data:`RowCounter` gives (the facade counts through governed SQL), and nothing without one.
Counting runs queries, which write audit records: it happens after the catalog's read
transaction, on the rows read in it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from meshsim.catalog.models import ProductDetails, Request
from meshsim.catalog.publish import PROTECTED_CLASSES
from meshsim.spec.loader import MeshSpec
from meshsim.spec.models import Grant, Policies, Product, TagGrant


def _age(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def freshness(product: Product, updated_at: datetime, now: datetime) -> str:
    """``fresh``/``stale`` against the product's SLA, with the data's age."""
    age = now - updated_at
    if product.freshness is None:
        return f"updated {_age(age)} ago (no SLA)"
    state = "fresh" if age <= product.freshness else "stale"
    return f"{state}: updated {_age(age)} ago (SLA {product.freshness_sla})"


#: (table ref, Delta version) -> the row count to show a consumer, or None to show none.
RowCounter = Callable[[str, int], int | None]


def _not_counted(ref: str, version: int) -> None:
    return None


def counter_for(as_consumer: str | None, count: RowCounter | None) -> RowCounter | None:
    """How a listing counts rows: ``None`` (the published totals) only for the operator's view;
    for a consumer ``count``, or nothing when the caller cannot count as that consumer."""
    if as_consumer is None:
        return None
    return count or _not_counted


def governed_counter(sql: Callable[[str], Any], granted: Callable[[str], bool]) -> RowCounter:
    """Count with ``sql`` (a consumer's governed session), once per table version, the tables
    ``granted`` says it may read; none for the others, for a count the session refuses, or for
    a version no longer readable."""
    import sqlglot
    from sqlglot import exp

    from meshsim.errors import AccessDenied, StorageError

    counted: dict[tuple[str, int], int | None] = {}

    def count(ref: str, version: int) -> int | None:
        if (ref, version) in counted:
            return counted[ref, version]
        counted[ref, version] = None
        if granted(ref):
            table = exp.to_table(ref)
            at = exp.HistoricalData(
                this="AT", kind="VERSION", expression=exp.Literal.number(version)
            )
            table.set("when", at)
            query = sqlglot.select(exp.Count(this=exp.Star(), big_int=True)).from_(table)
            try:
                counted[ref, version] = sql(query.sql(dialect="duckdb")).fetchall()[0][0]
            except (AccessDenied, StorageError):
                pass  # what it may not count, or cannot any more: no count
        return counted[ref, version]

    return count


def row_counts(
    published: dict[str, int | None], tables: dict[str, int], count: RowCounter | None
) -> dict[str, int | None]:
    """Each table's count to show: the published one, or ``count``'s at the published version."""
    if count is None:
        return {ref: published.get(ref) for ref in tables}
    return {ref: count(ref, version) for ref, version in tables.items()}


def total(counts: dict[str, int | None]) -> int | None:
    known = [c for c in counts.values() if c is not None]
    return sum(known) if known else None


def latest_versions(
    con: sqlite3.Connection, limit: int | None = None, offset: int = 0
) -> list[sqlite3.Row]:
    """The published products (a page of ``limit`` from ``offset`` in ref order) with their
    latest versions, for :func:`products`: SQLite pages, so only the page is read and parsed."""
    return con.execute(
        "SELECT p.ref, p.domain, p.owner, p.description, p.latest_version, p.published_at,"
        " v.tables, v.rows, v.schema FROM products p JOIN product_versions v"
        " ON v.product = p.ref AND v.version = p.latest_version ORDER BY p.ref"
        " LIMIT ? OFFSET ?",
        (-1 if limit is None else limit, offset),
    ).fetchall()


def product_total(con: sqlite3.Connection) -> int:
    return int(con.execute("SELECT count(*) FROM products").fetchone()[0])


def pending_count(con: sqlite3.Connection, product: str) -> int:
    """How many requests for ``product`` wait for a decision (an index count)."""
    sql = "SELECT count(*) FROM requests WHERE product = ? AND state = 'pending'"
    return int(con.execute(sql, (product,)).fetchone()[0])


def subscriber_counts(
    con: sqlite3.Connection, now: datetime, products: list[str] | None = None
) -> dict[str, int]:
    """Per product (of ``products``, by default all), the consumers with an active
    subscription (approved, not expired at ``now``: stamps sort as text in time order),
    counted by SQLite; for a page of products only their requests are read (an index
    lookup per product), not every subscription in the catalog."""
    from meshsim.catalog.models import stamp

    sql = (
        "SELECT product, count(DISTINCT consumer) FROM requests WHERE state = 'approved'"
        " AND (expires_at IS NULL OR expires_at > ?)"
    )
    if products is None:
        return dict(con.execute(sql + " GROUP BY product", (stamp(now),)).fetchall())
    counts: dict[str, int] = {}
    for product in products:
        row = con.execute(sql + " AND product = ?", (stamp(now), product)).fetchone()
        counts[product] = int(row[1]) if row[1] else 0
    return counts


def products(
    rows: list[sqlite3.Row], subscribers: dict[str, int], count: RowCounter | None = None
) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        schema = Product.model_validate_json(row["schema"])
        tables = json.loads(row["tables"])
        counts = row_counts(json.loads(row["rows"]), tables, count)
        protected = sum(
            1 for t in schema.tables for c in t.columns if c.classification in PROTECTED_CLASSES
        )
        out.append(
            {
                "product": row["ref"],
                "domain": row["domain"],
                "owner": row["owner"],
                "version": row["latest_version"],
                "published_at": row["published_at"],
                "tables": list(tables),
                "rows": total(counts),
                "protected_columns": protected,
                "subscribers": subscribers.get(row["ref"], 0),
                "description": row["description"],
            }
        )
    return out


def versions(
    con: sqlite3.Connection, ref: str, limit: int | None = None, offset: int = 0
) -> list[dict[str, Any]]:
    """The product's published versions, newest first (a page of ``limit`` from ``offset``)."""
    rows = con.execute(
        "SELECT version, published_at, tables, rows FROM product_versions WHERE product = ?"
        " ORDER BY version DESC LIMIT ? OFFSET ?",
        (ref, -1 if limit is None else limit, offset),
    ).fetchall()
    return [
        {
            "version": r["version"],
            "published_at": r["published_at"],
            "tables": json.loads(r["tables"]),
            "rows": json.loads(r["rows"]),
        }
        for r in rows
    ]


def version_count(con: sqlite3.Connection, ref: str) -> int:
    row = con.execute("SELECT count(*) FROM product_versions WHERE product = ?", (ref,))
    return int(row.fetchone()[0])


def recount(history: list[dict[str, Any]], count: RowCounter | None) -> list[dict[str, Any]]:
    """``history`` (from :func:`versions`) with the counts ``count`` gives."""
    if count is None:
        return history
    return [{**v, "rows": row_counts(v["rows"], v["tables"], count)} for v in history]


def latest_schema(con: sqlite3.Connection, ref: str) -> Product | None:
    row = con.execute(
        "SELECT v.schema FROM products p JOIN product_versions v ON v.product = p.ref"
        " AND v.version = p.latest_version WHERE p.ref = ?",
        (ref,),
    ).fetchone()
    return Product.model_validate_json(row["schema"]) if row else None


def show(
    spec: MeshSpec,
    domain: str,
    schema: Product,
    history: list[dict[str, Any]],
    active: list[Request],
    pending: int,
    policies: Policies,
    as_consumer: str | None,
    updated_at: datetime,
    now: datetime,
) -> ProductDetails:
    from meshsim.policy.access import resolve_access

    ref = f"{domain}.{schema.name}"
    domain_spec = spec.domain(domain)
    columns = []
    for table in schema.tables:
        table_ref = f"{domain}.{table.name}"
        access = (
            resolve_access(spec, as_consumer, table_ref, policies)
            if as_consumer and spec.table(table_ref) is not None
            else None
        )
        for column in table.columns:
            row: dict[str, Any] = {
                "table": table_ref,
                "column": column.name,
                "type": column.type,
                "classification": column.classification,
                "description": column.description,
            }
            if as_consumer:
                cell = access.column(column.name) if access else None
                row["access"] = cell.state if cell else "denied"
                row["rule"] = cell.rule if cell else "not in the current spec"
                if cell and cell.visible and access and access.row_filters:
                    row["row_filter"] = ", ".join(f.name for f in access.row_filters)
            columns.append(row)
    return ProductDetails(
        product=ref,
        domain=domain,
        owner=schema.owner,
        owner_team=domain_spec.domain.owner_team if domain_spec else None,
        description=schema.description,
        tags=dict(schema.tags),
        freshness_sla=schema.freshness_sla,
        freshness=freshness(schema, updated_at, now),
        versions=history,
        columns=columns,
        subscribers=subscribers(spec, ref, active, policies),
        as_consumer=as_consumer,
        pending_requests=pending,
    )


def product_policies(spec: MeshSpec, product: str) -> Policies:
    """The spec's policies with only the grants that can cover a table of ``product`` (those
    through ``all``, the product, or its tables, as :mod:`meshsim.policy.index` sorts them):
    what ``show`` resolves, without indexing every grant of mesh.yaml again once merged
    with the product's subscriptions. An unnamed grant keeps the name its position gave it."""
    from meshsim.policy.index import policy_index

    policies = spec.policies
    found = spec.product(product)
    index = policy_index(spec, policies)
    tables = [spec.table(f"{found.domain}.{t.name}") for t in found.product.tables] if found else []
    kept = sorted({i for t in tables if t is not None for i in index.grants_on(t)})
    grants = [
        g if g.name else g.model_copy(update={"name": f"grant[{i}]"})
        for i, g in ((i, policies.grants[i]) for i in kept)
    ]
    return policies.model_copy(update={"grants": grants})


def subscribers(
    spec: MeshSpec, ref: str, active: list[Request], policies: Policies
) -> list[dict[str, Any]]:
    """Who can read some of the product now, and through which grants."""
    from meshsim.policy.access import resolve_access
    from meshsim.policy.index import policy_index

    product = spec.product(ref)
    domain = ref.split(".")[0]
    tables = [f"{domain}.{t.name}" for t in product.product.tables] if product else []
    index = policy_index(spec, policies)
    candidates: set[str] = set()
    for table in tables:  # only who some grant on them names: everyone else reads none
        found = spec.table(table)
        candidates.update(index.readers(found) if found is not None else ())
    out = []
    for consumer in [c for c in spec.consumer_names() if c in candidates]:
        via: list[str] = []
        readable = []
        for table in tables:
            access = resolve_access(spec, consumer, table, policies)
            if access.granted:
                readable.append(table)
                via.extend(g for g in access.grants if g not in via)
        if readable:
            ids = [r.id for r in active if r.consumer == consumer and r.product == ref]
            out.append({"consumer": consumer, "tables": readable, "via": via, "requests": ids})
    return out


def spec_grant_rows(
    con: sqlite3.Connection, spec: MeshSpec, consumer: str | None
) -> list[dict[str, Any]]:
    """The grants mesh.yaml declared when the catalog was last published."""
    from meshsim.policy.access import selects

    wanted = spec.consumer(consumer) if consumer else None
    out = []
    for row in con.execute("SELECT name, scope FROM spec_grants ORDER BY rowid"):
        data = json.loads(row["scope"])
        grant: Grant | TagGrant = (
            TagGrant.model_validate(data) if "expression" in data else Grant.model_validate(data)
        )
        if wanted is not None and not selects(grant, wanted):
            continue
        if isinstance(grant, TagGrant):
            scope, product = f"tags: {grant.expression}", ""
        elif grant.all:
            scope, product = "everything", "*"
        elif grant.product:
            scope, product = f"product {grant.product}", grant.product
        else:
            refs = grant.tables or grant.columns
            scope = ", ".join(refs)
            product = ", ".join(sorted({_product_of(spec, r) for r in refs}))
        who = ", ".join(grant.consumers)
        if grant.except_:
            who += f" except {', '.join(grant.except_)}"
        if grant.when:
            who += f" when {grant.when}"
        out.append(
            {
                "id": None,
                "consumer": who,
                "product": product,
                "state": "declared",
                "source": "spec",
                "grant": row["name"],
                "scope": scope,
                "row_filter": None,
                "expires_at": None,
                "decided_by": "mesh.yaml",
            }
        )
    return out


def _product_of(spec: MeshSpec, ref: str) -> str:
    table = spec.table(".".join(ref.split(".")[:2]))
    return f"{table.domain}.{table.product}" if table else ref


def request_subscription_row(request: Request) -> dict[str, Any]:
    scope = list(request.granted_columns) + [
        t
        for t in request.granted_tables
        if not any(c.startswith(t + ".") for c in request.granted_columns)
    ]
    return {
        "id": request.id,
        "consumer": request.consumer,
        "product": request.product,
        "state": request.state,
        "source": "request",
        "grant": f"subscription_{request.id}",
        "scope": ", ".join(scope),
        "row_filter": request.row_filter,
        "expires_at": request.expires_at,
        "decided_by": request.decided_by,
    }


def access_rows(matrix: list[Any]) -> list[dict[str, Any]]:
    """One row per consumer, table and column: full, masked, filtered or denied, and why."""
    rows = []
    for access in matrix:
        filters = ", ".join(f.name for f in access.row_filters)
        for cell in access.columns:
            state = cell.state
            if state == "full" and filters:
                state = "filtered"
            rows.append(
                {
                    "consumer": access.consumer,
                    "table": access.table,
                    "column": cell.column,
                    "state": state,
                    "rule": cell.rule,
                    "row_filter": filters if cell.visible else "",
                }
            )
    return rows


def access_diff(
    current: list[dict[str, Any]], proposed: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Cells whose state, rule or row filter would change under proposed policies (a consumer
    or table that exists on one side only shows as ``absent`` on the other)."""
    key = ("consumer", "table", "column")
    absent = {"state": "absent", "rule": "", "row_filter": ""}
    before = {tuple(r[k] for k in key): r for r in current}
    after = {tuple(r[k] for k in key): r for r in proposed}
    out = []
    for cell in [*before, *(k for k in after if k not in before)]:
        old, new = before.get(cell, absent), after.get(cell, absent)
        if (old["state"], old["rule"], old["row_filter"]) != (
            new["state"],
            new["rule"],
            new["row_filter"],
        ):
            out.append(
                {
                    **dict(zip(key, cell, strict=True)),
                    "state": old["state"],
                    "what_if_state": new["state"],
                    "rule": old["rule"],
                    "what_if_rule": new["rule"],
                    "row_filter": old["row_filter"],
                    "what_if_row_filter": new["row_filter"],
                }
            )
    return out


def published_products(con: sqlite3.Connection, ref: str) -> list[tuple[int, Product]]:
    """Each published version of product ``ref``, oldest first, with its spec as published."""
    rows = con.execute(
        "SELECT version, schema FROM product_versions WHERE product = ? ORDER BY version", (ref,)
    )
    return [(int(row["version"]), Product.model_validate_json(row["schema"])) for row in rows]
