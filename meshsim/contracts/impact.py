"""Who a breaking change would break, and the refusal to publish one without a new major
version (``meshsim publish``, ``meshsim build`` and producer writes all publish through
:func:`refuse_breaking`)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from datetime import datetime

from meshsim.contracts.diff import Change, breaking, diff_products, major, version_key
from meshsim.errors import CatalogError
from meshsim.spec.loader import MeshSpec, ProductSpec
from meshsim.spec.models import Grant, Product, split_column_ref


def dependents(spec: MeshSpec, table_ref: str, columns: Collection[str] = ()) -> list[str]:
    """The derived tables (``source: {sql: ...}``) whose query reads ``table_ref``, and, when
    ``columns`` are given, names one of them or reads ``*`` (sqlglot table and column
    references). The one seam for column-level lineage to replace."""
    import sqlglot
    from sqlglot import exp

    from meshsim.sources.derived import derived_inputs, derived_tables

    wanted = {c.lower() for c in columns}
    found = []
    for table in derived_tables(spec):
        if table_ref not in derived_inputs(table):
            continue
        if wanted:
            sql = table.table.source.sql  # type: ignore[union-attr]
            tree = sqlglot.parse_one(sql, dialect="duckdb")
            named = {c.name.lower() for c in tree.find_all(exp.Column)}
            # SELECT * (or t.*) reads every column; COUNT(*) reads none
            star = any(not isinstance(s.parent, exp.Count) for s in tree.find_all(exp.Star))
            if not (wanted & named or star):
                continue
        found.append(table.ref)
    return sorted(found)


def subscribers(
    con: sqlite3.Connection, spec: MeshSpec, product: ProductSpec, now: str
) -> list[str]:
    """The consumers subscribed to ``product``: approved, unexpired requests, and the grants
    mesh.yaml declares on it (as the catalog last published them)."""
    ref = product.ref
    tables = {f"{product.domain}.{t.name}" for t in product.product.tables}
    found = {
        row["consumer"]
        for row in con.execute(
            "SELECT consumer FROM requests WHERE product = ? AND state = 'approved'"
            " AND (expires_at IS NULL OR expires_at > ?)",
            (ref, now),
        )
    }
    for row in con.execute("SELECT name, scope FROM spec_grants ORDER BY rowid"):
        data = json.loads(row["scope"])
        if "expression" in data:
            continue  # a tag grant reaches tables by their tags, not by name
        grant = Grant.model_validate(data)
        refs = [*grant.tables, *(split_column_ref(c)[0] for c in grant.columns)]
        named = grant.all or grant.product == ref or any(r in tables for r in refs)
        if named:
            found.update("every consumer" if c == "*" else c for c in grant.consumers)
    known = set(spec.consumer_names()) | {"every consumer"}
    return sorted(c for c in found if c in known)


class BreakingChangeError(CatalogError):
    """A new version of a product breaks its consumers and keeps its major version."""

    def __init__(
        self,
        product: str,
        old: str,
        new: str,
        changes: list[Change],
        subscribers: list[str],
        derived: list[str],
    ) -> None:
        self.product = product
        self.changes = changes
        self.subscribers = subscribers
        self.derived = derived
        listed = "\n".join(f"  - {c}" for c in changes)
        who = ", ".join(subscribers) or "none"
        reading = ", ".join(derived) or "none"
        next_major = f"{major(old) + 1}.0.0"
        super().__init__(
            f"product '{product}' would break its consumers: {len(changes)} breaking "
            f"change(s) since its published version {old}, and version {new} keeps major "
            f"version {major(new)}:\n{listed}\n"
            f"  subscribers it would break: {who}\n"
            f"  derived products reading the changed columns: {reading}",
            hint=f"set 'version: {next_major}' in the product file to publish the break (tell "
            f"the subscribers), or undo the changes; 'meshsim contract diff {product}' lists "
            f"them",
        )


class VersionOrderError(CatalogError):
    """A new version of a product whose version is lower than one already published."""

    def __init__(self, product: str, version: str, highest: str) -> None:
        self.product = product
        super().__init__(
            f"product '{product}' has version {version}, lower than its version {highest} "
            f"already published; versions only go up",
            hint=f"set a version of at least {highest} in the product file, then publish again",
        )


def breaking_changes(
    spec: MeshSpec, domain: str, old: Product, new: Product, highest: str | None = None
) -> list[Change]:
    """The breaking changes from ``old`` to ``new`` unless ``new`` raises the major version
    above ``highest`` (the highest version ever published; ``old``'s by default)."""
    if major(new.version) > major(highest or old.version):
        return []
    return breaking(diff_products(domain, old, new, spec))


def _changed_tables(domain: str, changes: list[Change]) -> dict[str, set[str]]:
    """Table ref -> the changed columns' names (empty: the table as a whole)."""
    out: dict[str, set[str]] = {}
    for change in changes:
        parts = change.target.split(".", 2)
        if len(parts) < 2 or parts[0] != domain:
            continue
        columns = out.setdefault(f"{parts[0]}.{parts[1]}", set())
        if len(parts) == 3:
            columns.add(parts[2])
    return out


def refuse_breaking(
    con: sqlite3.Connection,
    spec: MeshSpec,
    product: ProductSpec,
    published: Product,
    now: datetime,
) -> None:
    """Raise :class:`VersionOrderError` if ``product``'s version is lower than one published
    before, and :class:`BreakingChangeError` if it breaks its latest ``published`` version
    without a major version above every published one."""
    from meshsim.catalog.models import stamp
    from meshsim.catalog.views import published_products

    versions = [published.version] + [p.version for _, p in published_products(con, product.ref)]
    highest = max(versions, key=version_key)
    version = product.product.version
    if version_key(version) < version_key(highest):
        raise VersionOrderError(product.ref, version, highest)
    changes = breaking_changes(spec, product.domain, published, product.product, highest)
    if not changes:
        return
    derived: set[str] = set()
    for table_ref, columns in _changed_tables(product.domain, changes).items():
        for ref in dependents(spec, table_ref, columns):
            table = spec.table(ref)
            derived.add(f"{table.domain}.{table.product}" if table is not None else ref)
    derived.discard(product.ref)
    affected = {c for change in changes for c in change.consumers}
    raise BreakingChangeError(
        product.ref,
        highest,
        version,
        changes,
        sorted(set(subscribers(con, spec, product, stamp(now))) | affected),
        sorted(derived),
    )
