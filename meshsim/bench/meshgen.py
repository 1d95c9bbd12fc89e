"""Generate meshes of enterprise size for the mesh-scale benchmark and the complexity tests.

:func:`generate_mesh` writes a mesh folder of ``tables`` small registered Delta tables: one
domain per :data:`TABLES_PER_DOMAIN` tables, each domain with products of
:data:`TABLES_PER_PRODUCT` tables, and ``consumers`` consumers with a few policies each (two
grants, every fourth a row filter; one PII mask for all). Every table is the same tiny Delta
table: it is written once with deltalake and its files are hard-linked (copied where links
are refused) into each table's folder, so a mesh of 10,000 tables takes seconds to write.

The mesh validates and builds as it is; its tables live under ``<mesh>/_data/`` (a folder
starting with ``_`` is not a domain).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

TABLES_PER_PRODUCT = 2
TABLES_PER_DOMAIN = 10
ADMIN = "governance_admin"

_COLUMNS = [
    {"name": "id", "type": "bigint", "classification": "internal", "description": "Row key."},
    {"name": "email", "type": "varchar", "classification": "pii", "description": "Contact."},
    {"name": "amount", "type": "double", "classification": "internal", "description": "Value."},
]


@dataclass(frozen=True)
class GeneratedMesh:
    """Where the mesh is and what it holds: the SQL name of a table and the consumer that
    may read it (for the one-shot query), and the product such a search finds."""

    root: Path
    tables: int
    consumers: int
    sample_table: str
    sample_consumer: str
    sample_product: str


def _domain(index: int) -> str:
    return f"d{index:04d}"


def _consumer(index: int) -> str:
    return f"c{index:04d}"


def _write_template(folder: Path) -> Path:
    """The one tiny Delta table every generated table is a link of."""
    import pyarrow as pa

    from meshsim.storage import delta

    template = folder / "template"
    if not delta.exists(template):
        data = pa.table(
            {
                "id": pa.array([1, 2, 3], pa.int64()),
                "email": pa.array(["a@x.org", "b@x.org", "c@x.org"]),
                "amount": pa.array([1.5, 2.5, 3.5]),
            }
        )
        delta.write(template, data, mode="create", table="template.template")
    return template


def _link_tree(source: Path, target: Path) -> None:
    for folder, _subfolders, files in os.walk(source):
        relative = Path(folder).relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            try:
                os.link(Path(folder) / name, target / relative / name)
            except OSError:
                shutil.copy2(Path(folder) / name, target / relative / name)


def _dump(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, width=100), encoding="utf-8")


def product_names(tables: int) -> list[str]:
    """``domain.product`` of every product of a generated mesh of ``tables`` tables."""
    products = max(1, tables // TABLES_PER_PRODUCT)
    per_domain = TABLES_PER_DOMAIN // TABLES_PER_PRODUCT
    return [f"{_domain(p // per_domain)}.p{p % per_domain}" for p in range(products)]


def _policies(products: list[str], consumers: int) -> dict[str, object]:
    """The same shape at every size: two grants per consumer (one product, one table of
    another product) and a row filter for every fourth, never merged per product, so
    mesh.yaml holds the same number of policies whether the mesh has 10 tables or 10,000."""
    grants: list[dict[str, object]] = [{"name": "admin_all", "consumers": [ADMIN], "all": True}]
    row_filters = []
    for index in range(consumers):
        name = _consumer(index)
        product = products[index % len(products)]
        other = products[(index * 31 + 7) % len(products)]
        grants.append({"name": f"g_{name}", "consumers": [name], "product": product})
        grants.append({"name": f"t_{name}", "consumers": [name], "tables": [f"{other}_t1"]})
        if index % 4 == 0:
            row_filters.append(
                {
                    "name": f"rf_{name}",
                    "consumers": [name],
                    "table": f"{product}_t0",
                    "predicate": "amount >= 0",
                }
            )
    masks = [
        {
            "name": "hash_pii",
            "consumers": ["*"],
            "except": [ADMIN],
            "classification": "pii",
            "function": "keyed_hash",
        }
    ]
    return {"grants": grants, "masks": masks, "row_filters": row_filters}


def generate_mesh(root: str | Path, tables: int, consumers: int = 1000) -> GeneratedMesh:
    """Write a mesh of ``tables`` registered tables (rounded up to whole products) and
    ``consumers`` consumers plus an admin into the new or empty folder ``root``."""
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"'{root}' is not empty")
    if tables < 1 or consumers < 1:
        raise ValueError("a generated mesh needs at least one table and one consumer")
    template = _write_template(root / "_data")
    products = product_names(tables)
    for ref in products:
        domain, product = ref.split(".")
        domain_dir = root / domain
        if not (domain_dir / "domain.yaml").exists():
            _dump(
                domain_dir / "domain.yaml",
                {"name": domain, "owner_team": f"{domain}-team", "description": "Generated."},
            )
        entries = []
        for index in range(TABLES_PER_PRODUCT):
            name = f"{product}_t{index}"
            location = root / "_data" / domain / name
            _link_tree(template, location)
            entries.append(
                {
                    "name": name,
                    "description": "A generated table.",
                    "source": {"location": f"_data/{domain}/{name}"},
                    "columns": _COLUMNS,
                }
            )
        _dump(
            domain_dir / "products" / f"{product}.yaml",
            {
                "name": product,
                "description": f"Generated product {ref}.",
                "owner": f"{domain}-team",
                "production": {"method": "external"},
                "tables": entries,
            },
        )
    members = [{"name": ADMIN, "admin": True, "description": "Reads everything."}]
    members += [
        {"name": _consumer(i), "attributes": {"unit": f"u{i % 7}"}} for i in range(consumers)
    ]
    _dump(
        root / "mesh.yaml",
        {
            "name": "generated",
            "description": f"A generated mesh of {len(products) * TABLES_PER_PRODUCT} tables.",
            "consumers": members,
            "policies": _policies(products, consumers),
        },
    )
    return GeneratedMesh(
        root=root,
        tables=len(products) * TABLES_PER_PRODUCT,
        consumers=consumers,
        sample_table=f"{products[0]}_t0",
        sample_consumer=_consumer(0),
        sample_product=products[0],
    )
