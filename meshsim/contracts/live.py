"""What the product files may change live, and what must wait for a publish.

Consumers read a product as its files say now, so an edit reaches them at once. A
non-breaking edit (a description, an added column, an added rule) may; a breaking one (see
:mod:`meshsim.contracts.diff`) may not: publishing would refuse it, and a consumer must never
get through a live edit what the publish gate refuses. Such a product is *withheld*: queries,
``explain``, ``access`` and ``show`` refuse it, naming the change, until it is undone or
published with a new major version.

A product is compared with the latest version the catalog published **under its name**, and
each table it did not publish before with the product that last published that table: a
product renamed, or a table moved to another product, is a removal for the old product's
subscribers, allowed only when the receiving product raises the old one's major version.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from meshsim.contracts.diff import Change, major
from meshsim.contracts.impact import breaking_changes
from meshsim.errors import CatalogError
from meshsim.spec.loader import MeshSpec, ProductSpec
from meshsim.spec.models import Product


class WithheldProductError(CatalogError):
    """A product's files hold breaking changes its published version does not: consumers
    are refused it until the change is undone or published under a new major version."""

    def __init__(self, product: str, version: str, changes: list[Change]) -> None:
        self.product = product
        self.changes = changes
        listed = "\n".join(f"  - {c}" for c in changes)
        super().__init__(
            f"product '{product}' is withheld from consumers: its product file has "
            f"{len(changes)} unpublished breaking change(s) and keeps major version "
            f"{major(version)}:\n{listed}",
            hint=f"'meshsim contract diff {product}' lists them; undo them, or raise the "
            f"major version in the product file and 'meshsim publish {product}'",
        )


def unpublished_breaking(
    con: sqlite3.Connection, spec: MeshSpec, product: ProductSpec
) -> list[Change]:
    """The breaking changes of ``product``'s files against what the catalog published: its
    own latest version, and for a table it did not publish, the product that did."""
    from meshsim.catalog import views

    published = views.latest_schema(con, product.ref)
    changes = (
        breaking_changes(spec, product.domain, published, product.product) if published else []
    )
    for table, owner_ref, owner in moved_tables(con, product):
        changes += _moved(spec, product, table, owner_ref, owner)
    return changes


def moved_tables(con: sqlite3.Connection, product: ProductSpec) -> list[tuple[str, str, Product]]:
    """The tables of ``product`` its latest published version does not hold and another
    product's does: (table name, that product's ref, its published spec)."""
    from meshsim.catalog import views

    published = views.latest_schema(con, product.ref)
    known = {t.name for t in published.tables} if published else set()
    found = []
    for table in product.product.tables:
        if table.name in known:
            continue
        owner = _publisher_of(con, product, f"{product.domain}.{table.name}")
        if owner is not None:  # else a new table: nobody relied on it
            found.append((table.name, *owner))
    return found


def removed_products(con: sqlite3.Connection, spec: MeshSpec) -> list[tuple[str, list[Change]]]:
    """Published products the spec no longer has, with the tables they lose: a table gone
    from the spec, or one moved to a product that does not raise their major version (that
    one is refused as that product's change)."""
    refs = [row["ref"] for row in con.execute("SELECT ref FROM products ORDER BY ref")]
    found = []
    for ref in refs:
        if spec.product(ref) is not None:
            continue
        from meshsim.catalog import views

        schema = views.latest_schema(con, ref)
        domain = ref.split(".", 1)[0]
        gone = [
            Change("table removed", f"{domain}.{t.name}", f"product '{ref}' removed", True)
            for t in (schema.tables if schema else [])
            if spec.table(f"{domain}.{t.name}") is None
        ]
        if gone:
            found.append((ref, gone))
    return found


def _publisher_of(
    con: sqlite3.Connection, product: ProductSpec, table_ref: str
) -> tuple[str, Product] | None:
    """The other product whose latest published version holds ``table_ref``."""
    row = con.execute(
        "SELECT p.ref, v.schema FROM products p JOIN product_versions v"
        " ON v.product = p.ref AND v.version = p.latest_version"
        " WHERE p.ref != ? AND p.domain = ? AND json_type(v.tables, ?) IS NOT NULL"
        " ORDER BY v.published_at DESC LIMIT 1",
        (product.ref, product.domain, '$."' + table_ref.replace('"', '\\"') + '"'),
    ).fetchone()
    if row is None:
        return None
    return row["ref"], Product.model_validate_json(row["schema"])


def _moved(
    spec: MeshSpec, product: ProductSpec, table: str, owner_ref: str, owner: Product
) -> list[Change]:
    """The breaking changes of ``table`` moving from ``owner`` (as published) to
    ``product``: none when ``product`` raises ``owner``'s major version."""
    if major(product.product.version) > major(owner.version):
        return []
    before = owner.model_copy(
        update={
            "name": product.product.name,
            "tables": [t for t in owner.tables if t.name == table],
        }
    )
    after = product.product.model_copy(
        update={
            "version": owner.version,
            "tables": [t for t in product.product.tables if t.name == table],
        }
    )
    ref = f"{product.domain}.{table}"
    moved = Change(
        "table moved",
        ref,
        f"from product '{owner_ref}' to '{product.ref}': its subscribers lose it",
        True,
    )
    return [moved, *breaking_changes(spec, product.domain, before, after)]


class ServingGate:
    """Which products consumers may be served now: each product's unpublished breaking
    changes, computed on demand once per spec fingerprint, catalog revision and product."""

    def __init__(
        self,
        spec: Callable[[], MeshSpec],
        key: Callable[[], tuple[int, int]],
        read: Callable[[], object],
    ) -> None:
        self._spec = spec
        self._key = key
        self._read = read
        self._cache: dict[str, list[Change]] = {}
        self._cache_key: tuple[int, int] | None = None

    def changes(self, product_ref: str) -> list[Change]:
        """The unpublished breaking changes of ``product_ref`` (none: it is served)."""
        key = self._key()
        if key != self._cache_key:
            self._cache, self._cache_key = {}, key
        cached = self._cache.get(product_ref)
        if cached is None:
            spec = self._spec()
            product = spec.product(product_ref)
            cached = []
            if product is not None:
                with self._read() as con:  # type: ignore[attr-defined]
                    cached = unpublished_breaking(con, spec, product)
            self._cache[product_ref] = cached
        return cached

    def refusal(self, product_ref: str) -> WithheldProductError | None:
        """The refusal of the product ``product_ref``, or None when it is served."""
        changes = self.changes(product_ref)
        if not changes:
            return None
        product = self._spec().product(product_ref)
        assert product is not None
        return WithheldProductError(product.ref, product.product.version, changes)

    def withheld(self, table_ref: str) -> WithheldProductError | None:
        """The refusal of ``table_ref``'s product, or None when it is served."""
        table = self._spec().table(table_ref)
        if table is None:
            return None  # a system table, or a name the query layer reports itself
        return self.refusal(f"{table.domain}.{table.product}")

    def require_served(self, table_ref: str) -> None:
        refusal = self.withheld(table_ref)
        if refusal is not None:
            raise refusal


class RemovedProductError(CatalogError):
    """A published product is gone from the spec, and with it tables its subscribers read."""

    def __init__(self, product: str, changes: list[Change], subscribers: list[str]) -> None:
        self.product = product
        self.changes = changes
        listed = "\n".join(f"  - {c}" for c in changes)
        super().__init__(
            f"product '{product}' is published but no longer in the spec, and "
            f"{len(changes)} of its tables are in no product:\n{listed}\n"
            f"  subscribers it would break: {', '.join(subscribers) or 'none'}",
            hint=f"restore the product file of '{product}', or move its tables to a product "
            f"whose version raises its major version; 'meshsim show {product}' shows it",
        )


def refuse_moves(
    con: sqlite3.Connection, spec: MeshSpec, products: list[ProductSpec], now: str
) -> None:
    """Refuse, before anything is written, a table of ``products`` moved from the product
    that published it without a new major version (:class:`BreakingChangeError`, naming the
    old product's subscribers), and a published product gone with tables nobody took over."""
    from meshsim.contracts.impact import BreakingChangeError

    for product in products:
        for table, owner_ref, owner in moved_tables(con, product):
            changes = _moved(spec, product, table, owner_ref, owner)
            if changes:
                raise BreakingChangeError(
                    product.ref,
                    owner.version,
                    product.product.version,
                    changes,
                    _subscribers_of(con, spec, owner_ref, owner, now),
                    [],
                )
    for ref, changes in removed_products(con, spec):
        from meshsim.catalog import views

        schema = views.latest_schema(con, ref)
        assert schema is not None
        raise RemovedProductError(ref, changes, _subscribers_of(con, spec, ref, schema, now))


def _subscribers_of(
    con: sqlite3.Connection, spec: MeshSpec, ref: str, published: Product, now: str
) -> list[str]:
    """The subscribers of the product ``ref`` as it was published."""
    from pathlib import Path

    from meshsim.contracts.impact import subscribers

    domain = ref.split(".", 1)[0]
    return subscribers(con, spec, ProductSpec(domain, published, Path()), now)
