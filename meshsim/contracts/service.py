"""What ``meshsim contract export|import|diff`` do, for the :class:`~meshsim.mesh.Mesh` facade."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshsim.contracts.diff import Change, diff_products
from meshsim.errors import CatalogError, ContractError, MeshsimError, unknown_name_message
from meshsim.spec.models import DomainFile, Product

if TYPE_CHECKING:
    from meshsim.mesh import Mesh
    from meshsim.spec.loader import ProductSpec


@dataclass(frozen=True)
class ImportedContract:
    """What :func:`import_contract` wrote: the product file, and whether it was new."""

    file: Path
    ref: str
    created: bool


@dataclass(frozen=True)
class ContractDiff:
    """The changes from one version of a product to another (``base`` and ``target`` say
    which versions, in words)."""

    product: str
    base: str
    target: str
    changes: list[Change]

    @property
    def breaking(self) -> list[Change]:
        return [c for c in self.changes if c.breaking]

    def rows(self) -> list[dict[str, Any]]:
        return [c.row() for c in self.changes]


def _product(mesh: Mesh, ref: str) -> ProductSpec:
    spec = mesh.spec
    product = spec.product(ref.lower())
    if product is None:
        raise CatalogError(
            unknown_name_message("product", ref, [p.ref for p in spec.products()]),
            hint="run 'meshsim products' to list them",
        )
    return product


def _owner_team(mesh_dir: Path, domain: str) -> str | None:
    from meshsim.spec.yamlfile import read_yaml

    file = mesh_dir / domain / "domain.yaml"
    data, _, _ = read_yaml(file)
    try:
        return DomainFile.model_validate(data).owner_team
    except ValueError:
        raise MeshsimError(
            f"'{file}' is not a valid domain file", hint="run 'meshsim validate'"
        ) from None


def export_contract(mesh: Mesh, ref: str) -> str:
    """The product ``ref`` of the mesh's spec as an ODCS v3 YAML contract."""
    from meshsim.contracts.odcs import contract_yaml
    from meshsim.contracts.odcs import export_contract as export

    product = _product(mesh, ref)
    domain = next(d for d in mesh.spec.domains if d.name == product.domain)
    published = mesh.catalog.published_products(product.ref)
    contract = export(
        product.domain,
        product.product,
        owner_team=domain.domain.owner_team,
        storage=mesh.workspace.account(product.domain),
        status="active" if published else "draft",
    )
    return contract_yaml(contract)


def read_product(file: Path, domain: str, owner_team: str | None) -> Product:
    """The product a contract file describes, for ``domain`` (see :mod:`.reader`)."""
    from meshsim.contracts.reader import product_from_contract, read_contract

    try:
        return product_from_contract(read_contract(file), domain, owner_team)
    except ContractError as exc:
        prefix = f"{file}: "
        raise ContractError(
            [p.removeprefix(prefix) for p in exc.problems],
            file=file,
            hint="remove or change those keys, then import again",
        ) from None


def import_contract(mesh_dir: Path, file: Path, domain: str) -> ImportedContract:
    """Create or replace ``<domain>/products/<name>.yaml`` from a contract file."""
    from meshsim.scaffold import product_yaml, write_product_file
    from meshsim.spec.yamlfile import parse_yaml

    if not (mesh_dir / "mesh.yaml").is_file():
        raise MeshsimError(
            f"no mesh.yaml in '{mesh_dir}'",
            hint="point --mesh at a mesh folder, or create one with 'meshsim init DIR'",
        )
    domains = sorted(p.name for p in mesh_dir.iterdir() if (p / "domain.yaml").is_file())
    if domain not in domains:
        raise MeshsimError(
            unknown_name_message("domain", domain, domains),
            hint=f"create it with 'meshsim new domain {domain}', or name another with --domain",
        )
    product = read_product(file, domain, _owner_team(mesh_dir, domain))
    target = mesh_dir / domain / "products" / f"{product.name}.yaml"
    created = not os.path.lexists(target)
    header = f"Imported by 'meshsim contract import' from {file}."
    text = product_yaml(product, header)
    data, _ = parse_yaml(target, text)
    if Product.model_validate(data) != product:  # the file must say what the contract says
        raise MeshsimError(
            f"the product file written for '{file}' would not read back as the contract; "
            f"nothing was imported",
            hint="report this with the contract file; run with --debug for details",
        )
    write_product_file(target, text)
    return ImportedContract(target, f"{domain}.{product.name}", created)


_CATALOG_VERSION = re.compile(r"^v?(\d+)$")
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def _resolve(
    mesh: Mesh, product: ProductSpec, which: str | None, default: str
) -> tuple[str, Product]:
    """The version ``which`` names: ``spec`` (the product file now), a published catalog
    version (``3``), the latest published one with a contract version (``1.2.0``), or a
    contract file; ``default`` when None."""
    which = which if which is not None else default
    if which == "spec":
        return f"the spec ({product.product.version})", product.product
    published = mesh.catalog.published_products(product.ref)
    listed = ", ".join(f"{n} ({p.version})" for n, p in published) or "none yet"
    if which == "published":
        if not published:
            raise CatalogError(
                f"product '{product.ref}' has no published version to compare with",
                hint=f"run 'meshsim publish {product.ref}', or pass --from FILE",
            )
        number, spec = published[-1]
        return f"published version {number} ({spec.version})", spec
    match = _CATALOG_VERSION.match(which)
    if match:
        number = int(match.group(1))
        found = [p for n, p in published if n == number]
        if found:
            return f"published version {number} ({found[0].version})", found[0]
        raise CatalogError(
            f"product '{product.ref}' has no published version {number} (published: {listed})",
            hint="name a published version, a contract version such as 1.0.0, or a file",
        )
    if _SEMVER.match(which):
        found_semver = [(n, p) for n, p in published if p.version == which]
        if found_semver and all(p == found_semver[0][1] for _, p in found_semver):
            number, spec = found_semver[-1]  # the same spec each time (data publications)
            return f"published version {number} ({which})", spec
        if found_semver:
            numbers = ", ".join(str(n) for n, _ in found_semver)
            raise CatalogError(
                f"contract version {which} of '{product.ref}' names published versions "
                f"{numbers}, which differ; name one of them",
                hint=f"pass --from {found_semver[-1][0]} (a published version, as "
                f"'meshsim show {product.ref}' lists them)",
            )
        raise CatalogError(
            f"no published version of '{product.ref}' has contract version {which} "
            f"(published: {listed})",
            hint="name a published version, a contract version, or a file",
        )
    path = Path(which)
    if not path.is_file():
        raise MeshsimError(
            f"'{which}' is not a published version of '{product.ref}' ({listed}), 'spec' or a "
            f"contract file",
            hint=f"run 'meshsim show {product.ref}' to list its versions",
        )
    domain = next(d for d in mesh.spec.domains if d.name == product.domain)
    contract = read_product(path, product.domain, domain.domain.owner_team)
    if contract.name != product.product.name:
        raise ContractError(
            [f"{path}: the contract is for product '{contract.name}', not '{product.ref}'"]
        )
    return f"contract {path} ({contract.version})", contract


def diff_contract(
    mesh: Mesh, ref: str, base: str | None = None, target: str | None = None
) -> ContractDiff:
    """The changes from ``base`` (by default the latest published version) to ``target``
    (by default the spec); each names a version as :func:`_resolve` reads it."""
    product = _product(mesh, ref)
    base_label, old = _resolve(mesh, product, base, "published")
    target_label, new = _resolve(mesh, product, target, "spec")
    return ContractDiff(
        product.ref,
        base_label,
        target_label,
        diff_products(product.domain, old, new, mesh.spec),
    )
