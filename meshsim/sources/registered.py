"""Registered tables (``source: {location: ...}``) that declare no columns take them from their
Delta table's schema.

:func:`with_registered_columns` returns the mesh with those columns filled in from each
table's Delta log (its metadata only, never its data), so policies, the publish gate and
governed SQL see them like declared ones: they are queryable, under the grants that cover the
table, with the classification :data:`DEFAULT_CLASSIFICATION` (which masks by classification
then treat as internal data) and no description. ``meshsim validate`` lists them as a
warning, so a table whose columns nobody reviewed is never published unnoticed.

A registered table that *declares* columns exposes only those: the declared schema is the
product's contract. Its other columns are not queryable, and ``validate`` names them.
"""

from __future__ import annotations

import dataclasses

from meshsim.errors import MeshsimError
from meshsim.spec.loader import DomainSpec, MeshSpec, ProductSpec
from meshsim.spec.models import Column, LocationSource, Table

#: The classification given to columns nobody declared (inferred or scaffolded): internal
#: data, neither public nor PII; review it before publishing.
DEFAULT_CLASSIFICATION = "internal"


def default_classification(spec: MeshSpec) -> str | None:
    return DEFAULT_CLASSIFICATION if DEFAULT_CLASSIFICATION in spec.mesh.classifications else None


def _delta_columns(spec: MeshSpec, table: Table, ref: str) -> list[Column]:
    """The columns of a registered table's Delta schema; MeshsimError or ValueError when it
    cannot be read or holds a type or name the spec cannot."""
    from meshsim.spec.sources import location_path
    from meshsim.spec.types import from_arrow
    from meshsim.storage.snapshot import load_snapshot

    assert isinstance(table.source, LocationSource)
    snapshot = load_snapshot(location_path(spec, table.source), table=ref)
    return [
        Column(
            name=column.name,
            type=from_arrow(column.type),
            classification=default_classification(spec),
            nullable=column.nullable,
        )
        for column in snapshot.columns
    ]


def _inferred_columns(spec: MeshSpec, table: Table) -> list[Column] | None:
    from meshsim.spec.sources import location_path
    from meshsim.storage import delta

    assert isinstance(table.source, LocationSource)
    try:
        if not delta.exists(location_path(spec, table.source)):
            return None
        return _delta_columns(spec, table, table.name)
    except (MeshsimError, ValueError):  # unreadable, or a type or name the spec cannot hold:
        return None  # left without columns, for the source check to report


def no_columns_reason(spec: MeshSpec, ref: str) -> MeshsimError:
    """Why the mesh table ``ref`` has no columns: the error reading its Delta schema gives
    (a registered table that declares none), or that it declares none."""
    found = spec.table(ref)
    assert found is not None
    table = found.table
    reason = "it declares none"
    if isinstance(table.source, LocationSource):
        try:
            _delta_columns(spec, table, ref)
        except MeshsimError as exc:
            return exc
        except ValueError as exc:
            reason = f"its Delta schema has what the spec cannot hold ({exc})"
    return MeshsimError(
        f"table '{ref}' has no columns meshsim can read: {reason}",
        hint="run 'meshsim validate', which says why, and declare the columns",
    )


def _domain_with_columns(spec: MeshSpec, domain: DomainSpec, inferred: set[str]) -> DomainSpec:
    products = []
    for product in domain.products:
        tables = []
        for table in product.product.tables:
            if isinstance(table.source, LocationSource) and not table.columns:
                columns = _inferred_columns(spec, table)
                if columns is not None:
                    table = table.model_copy(update={"columns": columns})
                    inferred.add(f"{product.domain}.{table.name}")
            tables.append(table)
        new = product.product.model_copy(update={"tables": tables})
        products.append(ProductSpec(product.domain, new, product.path))
    return dataclasses.replace(domain, products=tuple(products))


def with_registered_columns(spec: MeshSpec) -> MeshSpec:
    """``spec`` with every registered table that declares no columns given its Delta schema's.
    For a lazily loaded spec, each domain as it is loaded (``inferred`` fills as they are)."""
    from meshsim.spec.lazy import LazyDomains

    inferred: set[str] = set()
    if isinstance(spec.domains, LazyDomains) and not spec.domains.loaded:
        lazy = spec.domains.derive(transform=lambda d: _domain_with_columns(spec, d, inferred))
        return dataclasses.replace(spec, domains=lazy, inferred=inferred)
    domains = [_domain_with_columns(spec, domain, inferred) for domain in spec.domains]
    if not inferred:
        return spec
    return dataclasses.replace(spec, domains=tuple(domains), inferred=frozenset(inferred))
