"""Publishing a product version, gated like DataZone's metadata rules.

A product may be published only when it has an owner and a description, every column has a
classification, and every PII or sensitive column is protected. A column is protected when
every consumer who is not a governance admin sees it masked or denied, or sees it in full only
through a grant that names that consumer (an access decision someone took for that consumer,
the spec's equivalent of an approved subscription) or through the column's ``allow_unmasked``
waiver. A custom mask that returns the raw value is no protection
(:mod:`meshsim.policy.exposure`). Catalog requests that reach a PII or
sensitive column always wait for the owner's approval, so that requirement holds by
construction. The gate collects every problem and raises them together.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from meshsim.catalog.models import PublishedVersion, stamp
from meshsim.catalog.store import bump_revision
from meshsim.errors import CatalogError
from meshsim.spec.loader import KeyPath, MeshSpec, ProductSpec, TableSpec
from meshsim.spec.models import Column, Grant, Policies, TagGrant

PROTECTED_CLASSES = ("pii", "sensitive")


class PublishGateError(CatalogError):
    """A product failed the publishing gate; ``problems`` lists every reason."""

    def __init__(self, product: str, problems: list[str]) -> None:
        self.product = product
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"product '{product}' cannot be published: {len(problems)} problem(s):\n{listed}",
            hint=f"fix the product file, then run 'meshsim publish {product}'",
        )


def _named_grant(policies: Policies, rule: str) -> Grant | None:
    """The grant behind an access rule text like ``grant finance_x``, if it names consumers."""
    for index, grant in enumerate(policies.grants):
        name = grant.name or f"grant[{index}]"
        if rule == f"grant {name}":
            return grant
    return None


@dataclass(frozen=True)
class GateFinding:
    """One reason a product may not be published: where in its file, and what.

    ``subject`` identifies the problem for checks that also report it (the lint reports a
    missing owner and unmasked PII in its own words)."""

    path: KeyPath
    message: str
    subject: tuple[str, ...] = ()


def gate_problems(spec: MeshSpec, product: ProductSpec) -> list[str]:
    """Every reason ``product`` may not be published (empty when it may)."""
    return [finding.message for finding in gate_findings(spec, product)]


def gate_findings(spec: MeshSpec, product: ProductSpec) -> list[GateFinding]:
    """The reasons of :func:`gate_problems`, with the key path of each in the product file."""
    return list(_gate(spec, product))


def _named_in(names: Container[str], table: TableSpec, column: Column) -> bool:
    return column.name in names


def _gate(spec: MeshSpec, product: ProductSpec) -> Iterator[GateFinding]:
    from meshsim.policy.access import readable_access
    from meshsim.policy.exposure import raw_cells

    spec_product = product.product
    if not spec_product.owner:
        yield GateFinding(
            ("name",),
            "no owner: add 'owner:' (the team that decides access requests)",
            ("owner", product.ref),
        )
    if not spec_product.description.strip():
        yield GateFinding(
            ("name",), "no description: add 'description:' so consumers can find and judge it"
        )
    admins = {c.name for c in spec.mesh.consumers if c.admin}
    for index, table in enumerate(spec_product.tables):
        ref = f"{product.domain}.{table.name}"
        for position, column in enumerate(table.columns):
            if column.classification is None:
                yield GateFinding(
                    ("tables", index, "columns", position),
                    f"column '{ref}.{column.name}' has no classification",
                )
        protected = {
            c.name: p for p, c in enumerate(table.columns) if c.classification in PROTECTED_CLASSES
        }
        if not protected:
            continue
        matrix = [a for a in readable_access(spec, tables=[ref]) if a.consumer not in admins]
        for cell in raw_cells(spec, matrix, partial(_named_in, protected)):
            position = protected[cell.column]
            column = table.columns[position]
            waiver = column.allow_unmasked
            if waiver is not None and cell.consumer in waiver.consumers:
                continue
            subject = ("unmasked", cell.ref, cell.consumer)
            label = f"{column.classification} column '{cell.ref}' is visible unmasked to"
            if cell.mask is not None:
                yield GateFinding(
                    ("tables", index, "columns", position),
                    f"{label} '{cell.consumer}'{cell.why}; add a mask that hides it or exclude "
                    f"the column",
                    subject,
                )
                continue
            grant = _named_grant(spec.policies, cell.rule)
            if grant is not None and "*" not in grant.consumers and grant.when is None:
                continue
            yield GateFinding(
                ("tables", index, "columns", position),
                f"{label} '{cell.consumer}' through {cell.rule}, which does not name its "
                f"consumers; add a mask, exclude the column, or grant it to named consumers only",
                subject,
            )


def publish_version(
    con: sqlite3.Connection,
    spec: MeshSpec,
    product: ProductSpec,
    table_versions: dict[str, int],
    rows: dict[str, int | None],
    now: datetime,
    os_user: str,
    *,
    principal: str | None = None,
    reason: str = "",
) -> PublishedVersion:
    """Check the gate and record a new version (inside the caller's write transaction),
    refused if it breaks the latest published version without a new major version,
    audited with the OS user that published it, as ``principal`` (the product's owner by
    default; a producer's write names its writer) and why (``reason``, e.g. the write).

    A product whose schema and table versions are unchanged keeps its latest version."""
    problems = gate_problems(spec, product)
    refs = [f"{product.domain}.{t.name}" for t in product.product.tables]
    missing = [r for r in refs if r not in table_versions]
    if missing:
        problems.append(
            f"table(s) {', '.join(missing)} have no version in the workspace: build them first"
        )
    if problems:
        raise PublishGateError(product.ref, problems)
    tables = {r: int(table_versions[r]) for r in refs}
    counts = {r: (None if rows.get(r) is None else int(rows[r])) for r in refs}  # type: ignore[arg-type]
    p = product.product
    latest = con.execute(
        "SELECT * FROM product_versions WHERE product = ? ORDER BY version DESC LIMIT 1",
        (product.ref,),
    ).fetchone()
    schema = p.model_dump_json()
    if latest is not None and (json.loads(latest["tables"]), latest["schema"]) == (tables, schema):
        return PublishedVersion(
            product.ref,
            latest["version"],
            datetime.fromisoformat(latest["published_at"]),
            tables,
            json.loads(latest["rows"]),
            latest["spec_fingerprint"],
        )
    if latest is not None:
        from meshsim.contracts.impact import refuse_breaking
        from meshsim.spec.models import Product

        refuse_breaking(con, spec, product, Product.model_validate_json(latest["schema"]), now)
    version = (latest["version"] if latest is not None else 0) + 1
    at = stamp(now)
    con.execute(
        "INSERT INTO products (ref, domain, name, owner, description, latest_version, published_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ref) DO UPDATE SET owner = excluded.owner,"
        " description = excluded.description, latest_version = excluded.latest_version,"
        " published_at = excluded.published_at",
        (product.ref, product.domain, p.name, p.owner, p.description, version, at),
    )
    con.execute(
        "INSERT INTO product_versions VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            product.ref,
            version,
            at,
            spec.fingerprint,
            json.dumps(tables),
            json.dumps(counts),
            schema,
        ),
    )
    _index(con, spec, product)
    con.execute(
        "INSERT INTO audit (time, kind, principal, os_user, product, decision, reason, tables,"
        " rows) VALUES (?, 'publish', ?, ?, ?, 'published', ?, ?, ?)",
        (
            at,
            principal or p.owner,
            os_user,
            product.ref,
            f"version {version}" + (f": {reason}" if reason else ""),
            json.dumps(tables),
            sum(c for c in counts.values() if c is not None),
        ),
    )
    bump_revision(con)
    return PublishedVersion(product.ref, version, now, tables, counts, spec.fingerprint)


def _tag_text(tags: dict[str, str]) -> str:
    return " ".join(f"{k} {v}" for k, v in sorted(tags.items()))


def _index(con: sqlite3.Connection, spec: MeshSpec, product: ProductSpec) -> None:
    """Replace the product's rows of the full-text index (``search_rows``, which triggers
    index): product, tables, columns."""
    p = product.product
    domain = spec.domain(product.domain)
    assert domain is not None
    owners = " ".join(x for x in (p.owner, domain.domain.owner_team, product.domain) if x)
    con.execute("DELETE FROM search_rows WHERE product = ?", (product.ref,))
    entries = [(product.ref, "product", p.name, p.description, _tag_text(p.tags))]
    for table in p.tables:
        ref = f"{product.domain}.{table.name}"
        table_tags = {**p.tags, **table.tags}
        entries.append((ref, "table", table.name, table.description, _tag_text(table_tags)))
        for column in table.columns:
            tags = _tag_text({**table_tags, **column.tags})
            if column.classification:
                tags += f" {column.classification}"
            entries.append(
                (f"{ref}.{column.name}", "column", column.name, column.description, tags)
            )
    con.executemany(
        "INSERT INTO search_rows (ref, product, kind, name, description, tags, owner)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (ref, product.ref, kind, name, desc, tags, owners)
            for ref, kind, name, desc, tags in entries
        ],
    )


def record_spec_grants(con: sqlite3.Connection, policies: Policies, now: datetime) -> int:
    """Replace the published copy of the grants mesh.yaml declares (shown by subscriptions)."""
    con.execute("DELETE FROM spec_grants")
    rows = []
    grants: list[tuple[str, Sequence[Grant | TagGrant]]] = [
        ("grant", policies.grants),
        ("tag_grant", policies.tag_grants),
    ]
    for kind, items in grants:
        for index, grant in enumerate(items):
            scope = grant.model_dump_json(by_alias=True, exclude_defaults=True)
            name = grant.name or f"{kind}[{index}]"
            rows.append((name, json.dumps(grant.consumers), scope, stamp(now)))
    con.executemany("INSERT INTO spec_grants VALUES (?, ?, ?, ?)", rows)
    return len(rows)
