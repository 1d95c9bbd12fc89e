"""What a new version of a product does to its consumers' access, judged by effect.

A classification, a tag or an ``allow_unmasked`` waiver means nothing by itself: what matters
is what the mesh's policies make of it. Both versions of the product are resolved under the
same policies by the one access answer (:mod:`meshsim.policy.access`, and
:mod:`meshsim.policy.exposure` for custom masks that give the raw value back), and each
consumer's view of each column is compared:

* **less protected** (masked to raw; denied to raw for a column whose classification was
  lowered or is protected, ``pii`` or ``sensitive``) is breaking: consumers and policies
  relied on the protection (``c_name`` moved from ``pii`` to ``sensitive`` escapes a mask
  that selects ``pii``);
* **access granted** (denied to masked; denied to raw for a column neither protected nor
  reclassified, e.g. a table tagged ``confidentiality: public`` that a tag grant now covers)
  is reported, not breaking: sharing more of unprotected data is a governance decision, and
  it breaks no consumer;
* **access removed** (masked or raw to denied) is breaking: a consumer who reads the column,
  by a named grant or a tag grant, loses it (``confidentiality: public`` to ``internal`` cuts
  a tag grant on ``confidentiality=public``);
* **more protected** (raw to masked) is reported, not breaking;
* a waiver that newly names a consumer who can read the column (not an admin, who reads
  everything raw anyway) is breaking: the product no longer promises that consumer the
  column protected, and the publish gate would let a policy unmask it for them.

Each change names the consumers it breaks.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Literal

from meshsim.catalog.publish import PROTECTED_CLASSES
from meshsim.contracts.diff import Change
from meshsim.spec.models import DomainFile, Product

if TYPE_CHECKING:
    from meshsim.spec.loader import MeshSpec

View = Literal["denied", "masked", "raw"]
_RANK: dict[View, int] = {"denied": 0, "masked": 1, "raw": 2}


def _with_product(spec: MeshSpec, domain: str, product: Product) -> MeshSpec:
    """A mesh of ``spec``'s consumers and policies holding only ``product`` of ``domain``."""
    from meshsim.spec.loader import DomainSpec, MeshSpec, ProductSpec

    known = spec.domain(domain)
    domain_file = known.domain if known is not None else DomainFile(name=domain)
    folder = known.path if known is not None else spec.root / domain
    path = folder / "products" / f"{product.name}.yaml"
    products = (ProductSpec(domain, product, path),)
    digest = hashlib.sha256((spec.fingerprint + product.model_dump_json()).encode()).hexdigest()
    return MeshSpec(spec.root, spec.mesh, (DomainSpec(domain_file, products, folder),), digest)


def _views(spec: MeshSpec, domain: str, product: Product) -> dict[tuple[str, str, str], View]:
    """(consumer, table, column) -> what that consumer sees of the column's values; a pair
    missing from the answer is denied."""
    from meshsim.policy.access import readable_access
    from meshsim.policy.exposure import raw_cells

    mesh = _with_product(spec, domain, product)
    matrix = readable_access(mesh, tables=[f"{domain}.{t.name}" for t in product.tables])
    views: dict[tuple[str, str, str], View] = {}
    for access in matrix:
        for cell in access.columns:
            if cell.visible:
                views[(access.consumer, access.table, cell.column)] = "masked"
    for raw in raw_cells(mesh, matrix, lambda _table, _column: True):
        views[(raw.consumer, raw.table, raw.column)] = "raw"
    return views


def access_changes(spec: MeshSpec, domain: str, old: Product, new: Product) -> list[Change]:
    """The changes of every consumer's view of the columns both versions have, under
    ``spec``'s policies: one change per column and kind, naming its consumers."""
    before, after = _views(spec, domain, old), _views(spec, domain, new)
    admins = {c.name for c in spec.mesh.consumers if c.admin}
    new_tables = {t.name: t for t in new.tables}
    changes: list[Change] = []
    for table in old.tables:
        successor = new_tables.get(table.name)
        if successor is None:
            continue
        ref = f"{domain}.{table.name}"
        kept = {c.name: c for c in successor.columns}
        for column in table.columns:
            if column.name not in kept:
                continue
            moves = {
                consumer: (before.get((consumer, ref, column.name), "denied"), view)
                for consumer in spec.consumer_names()
                if (view := after.get((consumer, ref, column.name), "denied"))
                != before.get((consumer, ref, column.name), "denied")
            }
            successor_column = kept[column.name]
            guarded = (
                successor_column.classification in PROTECTED_CLASSES
                or successor_column.classification != column.classification
            )
            changes += _column_changes(f"{ref}.{column.name}", moves, guarded)
            waived = _newly_waived(column.allow_unmasked, kept[column.name].allow_unmasked)
            readers = [
                c
                for c in waived
                if c not in admins and after.get((c, ref, column.name), "denied") != "denied"
            ]
            if readers:
                detail = f"allow_unmasked now lets {', '.join(readers)} read the raw values"
                target = f"{ref}.{column.name}"
                changes.append(Change("protection waived", target, detail, True, tuple(readers)))
    return changes


def _newly_waived(old: object, new: object) -> list[str]:
    before = set(getattr(old, "consumers", None) or ())
    return [c for c in getattr(new, "consumers", None) or () if c not in before]


def _column_changes(
    target: str, moves: dict[str, tuple[View, View]], guarded: bool
) -> list[Change]:
    """``guarded``: the column is protected or was reclassified, so that a consumer newly
    reading it raw is a loosening, not only a grant."""
    kinds: dict[str, list[str]] = {}
    for consumer, (was, now) in moves.items():
        if now == "denied":
            kind = "access removed"
        elif was == "denied" and (now == "masked" or not guarded):
            kind = "access granted"
        elif _RANK[now] > _RANK[was]:
            kind = "protection loosened"
        else:
            kind = "protection tightened"
        kinds.setdefault(kind, []).append(f"{consumer} {was} -> {now}")
    changes = []
    for kind in ("protection loosened", "access removed", "protection tightened", "access granted"):
        if kind in kinds:
            who = tuple(entry.split(" ", 1)[0] for entry in kinds[kind])
            breaks = kind in ("protection loosened", "access removed")
            detail = ", ".join(kinds[kind])
            changes.append(Change(kind, target, detail, breaks, who if breaks else ()))
    return changes
