"""System tables: meshsim's own data, queryable with governed SQL like any product.

``meshsim.audit`` is the audit log (every query attempt, decision and publication). It is
exported from the catalog's SQLite store into a Delta table in the governance account when it
is read and has changed, so the query engine reads it exactly as it reads domain tables, and
it is granted to governance admins only (deny by default for everyone else).

Why on read, under a lock: every query appends an audit record, so exporting on every change
would cost each query a Delta commit of the whole log, while only admins read it. The first
reader that finds the export stale rewrites it holding an exclusive lock (between threads and
processes); the others wait for the lock, then find it current and write nothing. Readers
therefore never race to commit (two exports of the same log used to fail with a Delta commit
conflict), and a query that planned an older export still reads it: Delta keeps its files.

The system domain is added to the spec the query engine sees, not to the user's spec, so
validation, the access matrix and the catalog list only the mesh's own products.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshsim.spec.loader import DomainSpec, MeshSpec, ProductSpec
from meshsim.spec.models import Column, DomainFile, Grant, Policies, Product, Table

if TYPE_CHECKING:
    from meshsim.catalog import Catalog

SYSTEM_DOMAIN = "meshsim"
AUDIT_TABLE = f"{SYSTEM_DOMAIN}.audit"

_AUDIT_TYPES = {
    "id": ("bigint", "Audit record id, increasing."),
    "time": ("timestamptz", "When it happened (UTC)."),
    "kind": ("varchar", "query, decision, publish or write."),
    "consumer": ("varchar", "The consumer that queried or requested."),
    "principal": ("varchar", "Who decided (decisions)."),
    "os_user": ("varchar", "The operating-system user that ran meshsim."),
    "request_id": ("bigint", "The subscription request (decisions)."),
    "product": ("varchar", "The product concerned (decisions, publications)."),
    "transition": ("varchar", "State change, e.g. pending->approved."),
    "sql": ("varchar", "The query text as the consumer sent it."),
    "decision": ("varchar", "allowed, refused or error."),
    "reason": ("varchar", "Why it was refused, or the decision comment."),
    "tables": ("varchar", "JSON: tables and versions read."),
    "columns": ("varchar", "JSON: columns read."),
    "policies": ("varchar", "JSON: policies applied."),
    "rows": ("bigint", "Rows returned."),
    "duration_ms": ("double", "Planning and execution time."),
}


def _audit_columns() -> tuple[tuple[str, str, str], ...]:
    """(name, type, description) in the catalog's stable field order; the catalog's field list
    is the one source of which fields the audit has."""
    from meshsim.catalog.audit import AUDIT_FIELDS

    return tuple((name, *_AUDIT_TYPES[name]) for name in AUDIT_FIELDS)


def with_system_tables(spec: MeshSpec) -> MeshSpec:
    """``spec`` plus the ``meshsim`` system domain (skipped if the mesh defines its own)."""
    if "with_system_tables" in spec.memo:  # one per spec, so what it derives is kept too
        return spec.memo["with_system_tables"]
    if spec.domain(SYSTEM_DOMAIN) is not None:
        return spec
    table = Table(
        name="audit",
        description="The audit log: every query attempt, decision and publication.",
        columns=[
            Column(name=name, type=kind, description=text, classification="internal")
            for name, kind, text in _audit_columns()
        ],
    )
    product = Product(
        name="audit_log", owner="governance", description="meshsim's audit log.", tables=[table]
    )
    domain = DomainFile(name=SYSTEM_DOMAIN, owner_team="governance", description="System tables.")
    system = DomainSpec(
        domain, (ProductSpec(SYSTEM_DOMAIN, product, spec.root / "mesh.yaml"),), spec.root
    )
    from meshsim.spec.lazy import LazyDomains

    if isinstance(spec.domains, LazyDomains) and not spec.domains.loaded:
        domains: Sequence[DomainSpec] = spec.domains.derive(extra=(system,))
    else:
        domains = (*spec.domains, system)
    spec.memo["with_system_tables"] = dataclasses.replace(spec, domains=domains)
    return spec.memo["with_system_tables"]


def with_system_grants(spec: MeshSpec, policies: Policies) -> Policies:
    admins = [c.name for c in spec.mesh.consumers if c.admin]
    if not admins:
        return policies
    grant = Grant(name="meshsim_audit_for_admins", consumers=admins, tables=[AUDIT_TABLE])
    return policies.model_copy(update={"grants": [*policies.grants, grant]})


def export_audit(catalog: Catalog, location: Path) -> None:
    """Write the audit log to a Delta table at ``location`` if it has new records, one
    process or thread at a time (see the module docstring)."""
    from meshsim.errors import StorageError
    from meshsim.locks import exclusive

    try:
        with exclusive(location.with_suffix(".lock")):
            _export_if_stale(catalog, location)
    except OSError as exc:
        raise StorageError(
            f"the audit log cannot be exported to '{location}' for SQL ({exc.strerror})",
            table=AUDIT_TABLE,
            hint="make the workspace writable, or list the log with 'meshsim audit'",
        ) from exc


def _export_if_stale(catalog: Catalog, location: Path) -> None:
    import pyarrow as pa

    from meshsim.spec.types import to_arrow
    from meshsim.storage import delta

    marker = location.with_suffix(".exported")
    rows: list[dict[str, Any]] = list(reversed(catalog.audit()))
    last_id = rows[-1]["id"] if rows else 0
    if delta.exists(location) and marker.is_file() and marker.read_text() == str(last_id):
        return
    columns = _audit_columns()
    schema = pa.schema([pa.field(n, to_arrow(t)) for n, t, _ in columns])
    for row in rows:
        for key in ("tables", "columns", "policies"):
            row[key] = json.dumps(row[key]) if row.get(key) is not None else None
    data = pa.Table.from_pylist(
        [{n: _coerce(row.get(n), t) for n, t, _ in columns} for row in rows], schema
    )
    location.parent.mkdir(parents=True, exist_ok=True)
    if delta.exists(location):
        # the whole log each time, in the columns of this meshsim (an older one exported fewer)
        delta.write(location, data, mode="overwrite", schema_mode="overwrite", table=AUDIT_TABLE)
    else:
        delta.write(location, data, mode="create", table=AUDIT_TABLE)
    marker.write_text(str(last_id))


def _coerce(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "timestamptz" and isinstance(value, str):
        from datetime import datetime

        return datetime.fromisoformat(value)
    return value
