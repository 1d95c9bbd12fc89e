"""The mesh's governance as the exporters read it: the access matrix, cell by cell, and the
policy SQL compiled exactly as governed queries compile it.

No exporter decides "who sees what" itself. A cell (consumer, table) comes from
:meth:`meshsim.mesh.Mesh.access` (spec policies plus active subscriptions, ``when``
conditions already resolved for each consumer's attributes); a row filter is compiled by
:func:`meshsim.query.filters.compile_filter` with the consumer's attributes bound as literals;
a mask is :func:`meshsim.query.masks.mask_expression`. An exporter only translates, and says
what it could not translate (:class:`Limitation`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshsim.errors import MeshsimError

if TYPE_CHECKING:
    from sqlglot import exp

    from meshsim.mesh import Mesh
    from meshsim.policy.access import TableAccess
    from meshsim.spec.loader import MeshSpec, TableSpec
    from meshsim.spec.models import Consumer, Mask, RowFilter

#: the value that stands for the mesh key while a mask is compiled for a target: the key
#: itself never leaves the workspace, so a keyed hash is re-keyed by each target or withheld
KEY_STAND_IN = bytes(32)


@dataclass(frozen=True)
class Limitation:
    """Something a target cannot express, and the safe alternative the export took instead
    (never more access than meshsim gives)."""

    policy: str  # "mask 'pii_keyed_hash'", "row filter 'regional_orders'", "admin"
    cannot: str  # what the target cannot express
    instead: str  # what the export did instead
    consumer: str | None = None
    table: str | None = None
    column: str | None = None

    def where(self) -> str:
        parts = [self.consumer or "", self.table or "", self.column or ""]
        return " / ".join(p for p in parts if p) or "the mesh"


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote and what it could not express."""

    target: str
    out: Path
    files: tuple[Path, ...]
    limitations: tuple[Limitation, ...]


@dataclass(frozen=True)
class Governance:
    """The exporters' input: the spec and the granted cells of the access matrix (mesh
    tables only: meshsim's own audit table stays with meshsim)."""

    spec: MeshSpec
    cells: tuple[TableAccess, ...]
    locations: dict[str, str] = field(default_factory=dict)  # domain -> storage root URI
    #: active subscriptions from approved requests (catalog rows), already in ``cells``
    subscriptions: tuple[dict[str, Any], ...] = ()

    def granted(self) -> Iterator[TableAccess]:
        return (cell for cell in self.cells if cell.granted)

    def consumer(self, name: str) -> Consumer:
        consumer = self.spec.consumer(name)
        assert consumer is not None  # cells come from the spec's consumers
        return consumer

    def table(self, ref: str) -> TableSpec:
        table = self.spec.table(ref)
        assert table is not None
        return table

    def location(self, ref: str) -> str:
        domain, name = ref.split(".")
        return f"{self.locations[domain].rstrip('/')}/{name}"

    def cell(self, consumer: str, ref: str) -> TableAccess | None:
        return next((c for c in self.cells if c.consumer == consumer and c.table == ref), None)


def governance_of(mesh: Mesh, locations: dict[str, str]) -> Governance:
    """The governance of a built mesh; ``locations`` maps each domain to its storage root."""
    from meshsim.system import SYSTEM_DOMAIN

    spec = mesh.spec
    domains = sorted({t.domain for t in spec.tables()})
    missing = [d for d in domains if d not in locations]
    unknown = sorted(set(locations) - set(domains))
    if unknown:
        raise MeshsimError(
            f"no domain {', '.join(repr(d) for d in unknown)} in the mesh "
            f"(domains: {', '.join(domains)})",
            hint="name a domain of the mesh: --location DOMAIN=URI",
        )
    if missing:
        raise MeshsimError(
            f"no storage location for the domain(s) {', '.join(missing)}",
            hint="give a root for all of them (--storage-root URI) or each (--location D=URI)",
        )
    cells = tuple(c for c in mesh.access() if c.table.split(".")[0] != SYSTEM_DOMAIN)
    subscriptions = tuple(r for r in mesh.catalog.subscriptions() if r["source"] == "request")
    return Governance(spec, cells, dict(locations), subscriptions)


def domain_locations(
    domains: list[str], root: str | None, per_domain: dict[str, str]
) -> dict[str, str]:
    """Each domain's storage root: ``per_domain`` first, else ``root/<domain>``."""
    out = {d: f"{root.rstrip('/')}/{d}" for d in domains} if root else {}
    out.update(per_domain)
    return out


def sql_type(table: TableSpec, column: str) -> exp.DataType:
    """The column's declared type as a (DuckDB) SQL type, for transpiling."""
    from meshsim.spec.types import to_arrow
    from meshsim.storage.scan import arrow_to_sql_type

    spec_column = table.column(column)
    assert spec_column is not None
    return arrow_to_sql_type(to_arrow(spec_column.type))


def compiled_filter(
    gov: Governance,
    row_filter: RowFilter,
    consumer: str,
    target_table: Callable[[str], exp.Table],
    inner_qualifier: str | None = None,
) -> exp.Expr:
    """The row filter's predicate for ``consumer``, its attributes bound as literals and every
    lookup a ``SELECT *`` of ``target_table(ref)``. The table's own columns are unqualified,
    except inside a lookup's subquery, where a looked-up table's column of the same name
    would capture them: there they are qualified with ``inner_qualifier`` when given."""
    from sqlglot import exp

    from meshsim.query.filters import RAW_ALIAS, compile_filter

    predicate = compile_filter(
        row_filter,
        gov.spec,
        gov.consumer(consumer).attributes,
        lambda ref: exp.select(exp.Star()).from_(target_table(ref)),
    ).copy()  # detached from the wrapper it was compiled in

    def own(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and node.table == RAW_ALIAS:
            inner = inner_qualifier is not None and node.find_ancestor(exp.Select) is not None
            return exp.column(node.name, table=inner_qualifier if inner else None, quoted=True)
        return node

    return predicate.transform(own, copy=False)


def lookups(predicate: exp.Expr) -> list[str]:
    """The tables a compiled predicate looks up, as the target names them."""
    from sqlglot import exp

    return sorted({t.sql() for t in predicate.find_all(exp.Table)})


def cell_filter(
    gov: Governance,
    cell: TableAccess,
    target_table: Callable[[str], exp.Table],
    inner_qualifier: str | None = None,
) -> exp.Expr | None:
    """The one predicate of a cell (its row filters ANDed), or None without row filters."""
    from sqlglot import exp

    predicates = [
        compiled_filter(gov, f, cell.consumer, target_table, inner_qualifier)
        for f in cell.row_filters
    ]
    if not predicates:
        return None
    return (
        exp.and_(*(exp.paren(p, copy=False) for p in predicates))
        if len(predicates) > 1
        else (predicates[0])
    )


def compiled_mask(
    gov: Governance, mask: Mask, cell: TableAccess, column: str, value: exp.Expr
) -> exp.Expr:
    """``mask`` over ``value`` for the cell's consumer, as governed queries compile it (a
    keyed hash with :data:`KEY_STAND_IN`: the caller re-keys it or withholds it)."""
    from meshsim.query.masks import mask_expression
    from meshsim.spec.models import column_ref

    table = gov.table(cell.table)
    return mask_expression(
        mask,
        value,
        sql_type(table, column),
        key=KEY_STAND_IN,
        column_ref=column_ref(table.ref, column),
        attributes=gov.consumer(cell.consumer).attributes,
    )


def policy_label(policy: Mask | RowFilter) -> str:
    from meshsim.spec.models import Mask

    kind = "mask" if isinstance(policy, Mask) else "row filter"
    return f"{kind} '{policy.name}'"


def condition_limitations(gov: Governance, target: str) -> list[Limitation]:
    """Policies with a ``when`` condition: resolved at export for each consumer's attributes
    as the spec defines them now, since the target has no such attributes."""
    policies = gov.spec.policies
    out = []
    for kind, group in (
        ("grant", policies.grants),
        ("tag grant", policies.tag_grants),
        ("mask", policies.masks),
        ("row filter", policies.row_filters),
    ):
        for index, policy in enumerate(group):
            if policy.when is None:
                continue
            name = getattr(policy, "name", None) or f"{kind}[{index}]"
            out.append(
                Limitation(
                    f"{kind} '{name}'",
                    f"{target} does not evaluate the attribute condition 'when: {policy.when}' "
                    "at query time",
                    "resolved at export for each consumer's attributes in mesh.yaml (the "
                    "consumers it selects now get it, no others); export again when attributes "
                    "change",
                )
            )
    return out


def common_limitations(gov: Governance, target: str) -> list[Limitation]:
    """What no target expresses: attribute conditions, meshsim's admins, subscription
    expiry and tables registered in place."""
    return [
        *condition_limitations(gov, target),
        *admin_limitations(gov, target),
        *subscription_limitations(gov, target),
        *registered_limitations(gov),
    ]


def subscription_limitations(gov: Governance, target: str) -> list[Limitation]:
    return [
        Limitation(
            f"subscription {row['id']}",
            f"{target} grants do not expire",
            f"granted as of the export; it expires in meshsim at {row['expires_at']}: revoke "
            "it on the platform then, or export again",
            consumer=row["consumer"],
        )
        for row in gov.subscriptions
        if row.get("expires_at")
    ]


def registered_limitations(gov: Governance) -> list[Limitation]:
    from meshsim.spec.models import LocationSource

    return [
        Limitation(
            "registered table",
            f"the table is registered in place at {table.table.source.location}, not in its "
            "domain's storage",
            f"exported at {gov.location(table.ref)}: copy the Delta table there first",
            table=table.ref,
        )
        for table in gov.spec.tables()
        if isinstance(table.table.source, LocationSource)
    ]


def custom_mask_limitations(gov: Governance, target: str) -> list[Limitation]:
    """Custom masks are DuckDB SQL: transpiled, but a function the target lacks is only
    found when a query runs (and then the query fails: the value is never shown)."""
    masks = sorted(
        {
            c.mask.name
            for cell in gov.granted()
            for c in cell.columns
            if c.mask is not None and c.mask.function == "custom"
        }
    )
    return [
        Limitation(
            f"mask '{name}'",
            f"a custom mask is DuckDB SQL; {target} may lack one of its functions",
            "transpiled with sqlglot; a function the target lacks fails the query, never shows "
            "the value: try it once on the platform",
        )
        for name in masks
    ]


def admin_limitations(gov: Governance, target: str) -> list[Limitation]:
    return [
        Limitation(
            "admin",
            f"{target} has no meshsim governance admin (reads meshsim's audit log, decides "
            "requests)",
            "not exported as a platform administrator, which would grant all data: the "
            "admin gets exactly the data its policies grant",
            consumer=c.name,
        )
        for c in gov.spec.mesh.consumers
        if c.admin
    ]


def write_files(out: Path, files: dict[str, str]) -> tuple[Path, ...]:
    """Write each file (name -> text) into ``out``, created if needed."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return tuple(written)


def limitations_markdown(limitations: list[Limitation] | tuple[Limitation, ...]) -> str:
    """The limitations as a markdown table (for plans and READMEs)."""
    if not limitations:
        return "Nothing: every policy of the mesh is expressed as it is.\n"
    rows = [
        "| policy | where | cannot express | what the export does instead |",
        "|---|---|---|---|",
    ]
    for lim in limitations:
        cells = [lim.policy, lim.where(), lim.cannot, lim.instead]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"
