"""The quality gates, and ``meshsim check`` over a built mesh.

A build, a write and a publish run the rules of every product they change on the table
versions they are about to make visible (candidates a build or write has committed to the
Delta log but not pinned yet). A result that blocks (:attr:`RuleResult.blocks`: an ``error``
rule that failed or could not run) refuses the new version: the pins stay where they were,
and the command fails with one line naming the rule, the failing count and the next command.
``warn`` rules are recorded and the command goes on. Every result is stored in the catalog
with the table version it checked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from meshsim.errors import QualityError, QualityGateError, unknown_name_message
from meshsim.quality.results import CheckRun, Trigger

# the runner imports sqlglot: imported where checks run, not for a listing of stored results
if TYPE_CHECKING:
    from meshsim.catalog.models import PublishedVersion
    from meshsim.mesh import Mesh
    from meshsim.quality.bound import BoundRule
    from meshsim.quality.runner import Reader
    from meshsim.query.audit import AuditSink
    from meshsim.query.session import GovernedEngine
    from meshsim.spec.loader import MeshSpec, ProductSpec
    from meshsim.spec.models import Product


def reader(
    spec: MeshSpec,
    *,
    locate: Callable[[str], str],
    version: Callable[[str], int | None],
    mesh_key: Callable[[], bytes],
    allowed_paths: Sequence[str],
    audit: AuditSink | None,
) -> Reader:
    """A reader whose governed engine reads the same versions, under the policies of
    ``mesh.yaml`` only (as a derived product is built: a subscription a revoke would undo
    does not count)."""

    def open_engine() -> GovernedEngine:
        from meshsim.query.session import GovernedEngine

        return GovernedEngine(
            spec,
            locate=locate,
            mesh_key=mesh_key(),
            allowed_paths=list(allowed_paths),
            audit=audit,
            timeout_s=None,
            published=version,
        )

    from meshsim.quality.runner import Reader

    return Reader(spec, locate, version, open_engine, allowed_paths)


def mesh_reader(mesh: Mesh, candidates: dict[str, int] | None = None) -> Reader:
    """A reader of ``mesh`` at its published versions, or ``candidates`` where given."""
    from meshsim.mesh import _CatalogAudit

    chosen = dict(candidates or {})
    records = mesh.workspace.read_state().tables
    roots = {str(mesh.workspace.accounts)} | {r.location for r in records.values() if r.external}

    def version(ref: str) -> int | None:
        return chosen[ref] if ref in chosen else mesh.published_version(ref)

    return reader(
        mesh.spec,
        locate=mesh.locate,
        version=version,
        mesh_key=mesh.workspace.mesh_key,
        allowed_paths=sorted(roots),
        audit=_CatalogAudit(mesh.catalog),
    )


def reads_table(rule: BoundRule, table: str) -> bool:
    """Whether ``rule`` reads ``table`` besides its own: a reference to it, or custom SQL
    naming it."""
    from meshsim.sources.derived import referenced_tables
    from meshsim.spec.quality import CustomSql, References

    if isinstance(rule.rule, References):
        return rule.rule.references == table
    if isinstance(rule.rule, CustomSql):
        try:
            return table in referenced_tables(rule.rule.sql)
        except ValueError:  # validate refuses it; the product's own gate reports it
            return False
    return False


def run_gate(
    made: Reader,
    products: Sequence[ProductSpec],
    trigger: Trigger,
    changed: Sequence[str] = (),
) -> CheckRun:
    """Every rule of ``products``, and every rule of another product that reads one of the
    ``changed`` tables (a reference to it, custom SQL over it), on the reader's versions
    (the changed tables at their candidate versions)."""

    own = {p.ref for p in products}
    spec = made.spec
    others = [
        product
        for product in (spec.products() if changed else [])
        if product.ref not in own
        and any(reads_table(rule, ref) for rule in _rules_of(spec, [product]) for ref in changed)
    ]

    def include(rule: BoundRule) -> bool:
        table = spec.table(rule.table)
        ours = table is not None and f"{table.domain}.{table.product}" in own
        return ours or any(reads_table(rule, ref) for ref in changed)

    from meshsim.quality.runner import run_checks

    try:
        return run_checks(made, [*products, *others], trigger=trigger, include=include)
    finally:
        made.close()


def refuse(
    run: CheckRun,
    outcome: str,
    hint: str | None = None,
    candidates: dict[str, int] | None = None,
    spec: MeshSpec | None = None,
) -> None:
    """Raise :class:`QualityGateError` when ``run`` has a blocking result: one line naming
    the first such rule, how many more there are, and ``outcome`` (what stays visible). The
    hint names the ``candidates`` (changed table -> the version refused) the first rule's
    product has or reads (in ``spec``), to check them again."""
    blocking = run.blocking
    if not blocking:
        return
    first = blocking[0]
    more = f" (and {len(blocking) - 1} more blocking rule(s))" if len(blocking) > 1 else ""
    if hint is None:
        chosen = _relevant(spec, first.product, candidates or {}) or {first.table: first.version}
        order = sorted(chosen, key=lambda t: (t != first.table, t))
        versions = " ".join(f"--version {t}={chosen[t]}" for t in order)
        command = f"'meshsim check {first.product} {versions}'"
        see = (
            f"see the failing rows with {command}"
            if first.failing_rows
            else f"check it again with {command}"
        )
        hint = f"{see}, fix the data or the rule, then run it again"
    raise QualityGateError(f"quality gate: {first.summary()}{more}; {outcome}", run=run, hint=hint)


def _relevant(spec: MeshSpec | None, product: str, candidates: dict[str, int]) -> dict[str, int]:
    """The ``candidates`` that ``product`` has or that its rules read."""
    found = spec.product(product) if spec is not None else None
    if spec is None or found is None:
        return candidates
    own = {f"{found.domain}.{t.name}" for t in found.product.tables}
    rules = _rules_of(spec, [found])
    return {
        ref: version
        for ref, version in candidates.items()
        if ref in own or any(reads_table(rule, ref) for rule in rules)
    }


def product_of(spec: MeshSpec, table: str) -> ProductSpec:
    found = spec.table(table)
    assert found is not None
    product = spec.product(f"{found.domain}.{found.product}")
    assert product is not None
    return product


# --- meshsim check ----------------------------------------------------------------------------


def check(
    mesh: Mesh,
    product: str | None = None,
    *,
    as_consumer: str | None = None,
    versions: dict[str, int] | None = None,
) -> CheckRun:
    """Run the rules of ``product`` (every product when None) at the published versions, or
    at ``versions`` (table -> Delta version, e.g. the candidate a gate refused); store the
    results; samples as ``as_consumer`` (or the operator) may see them."""
    from meshsim.identity import authenticate
    from meshsim.policy.access import require_consumer
    from meshsim.quality.samples import for_viewer

    spec = mesh.spec if as_consumer is None else mesh.identity_spec
    if as_consumer is not None:
        require_consumer(spec, as_consumer)
        authenticate(spec, as_consumer)
    products = _products(spec, product)
    if as_consumer is not None:
        products = _checkable(mesh, products, as_consumer, explicit=product is not None)
    versions = _versions(mesh, products, versions or {})
    if as_consumer is not None:
        _check_unpublished(mesh, as_consumer, versions)
    run = run_gate(mesh_reader(mesh, versions), products, "check")
    mesh.record_checks(run)
    return for_viewer(run, spec, as_consumer, mesh.table_access)


def _privileged(spec: MeshSpec, consumer: str, product: ProductSpec) -> bool:
    """An admin, or the consumer named after the product's domain (its owner's)."""
    found = spec.consumer(consumer)
    return found is not None and (found.admin or found.name == product.domain)


def _checkable(
    mesh: Mesh, products: list[ProductSpec], consumer: str, *, explicit: bool
) -> list[ProductSpec]:
    """The products ``consumer`` may check: those it reads a table of (a grant or an active
    subscription), or owns, or every one for an admin; a named product it may not read is
    an error (rule names, counts and observations describe its data)."""
    allowed = [
        p
        for p in products
        if _privileged(mesh.spec, consumer, p)
        or any(
            mesh.table_access(consumer, f"{p.domain}.{t.name}").granted for t in p.product.tables
        )
    ]
    if explicit and not allowed:
        ref = products[0].ref
        raise QualityError(
            f"consumer '{consumer}' has no grant on any table of '{ref}', so it may not check it",
            hint=f"request access with 'meshsim request --as {consumer} {ref} --reason ...'",
        )
    return allowed


def _check_unpublished(mesh: Mesh, consumer: str, versions: dict[str, int]) -> None:
    """A version no query reads (one a gate refused) is checked by an admin or its owner."""
    for ref, version in versions.items():
        if version == mesh.published_version(ref):
            continue
        if not _privileged(mesh.spec, consumer, product_of(mesh.spec, ref)):
            published = mesh.published_version(ref)
            raise QualityError(
                f"version {version} of '{ref}' is not published (queries read version "
                f"{published}); only an admin or the domain's own consumer may check it",
                hint=f"check the published version: leave out --version {ref}={version}",
            )


def _products(spec: MeshSpec, ref: str | None) -> list[ProductSpec]:
    if ref is None:
        return spec.products()
    found = spec.product(ref.lower())
    if found is None:
        names = [p.ref for p in spec.products()]
        raise QualityError(
            unknown_name_message("product", ref, names),
            hint="run 'meshsim products' to list them",
        )
    return [found]


def _rules_of(spec: MeshSpec, products: Sequence[ProductSpec]) -> list[BoundRule]:
    from meshsim.quality.bound import bound_rules

    tables = [spec.table(f"{p.domain}.{t.name}") for p in products for t in p.product.tables]
    return [rule for table in tables if table is not None for rule in bound_rules(table)]


def _versions(
    mesh: Mesh, products: Sequence[ProductSpec], versions: dict[str, int]
) -> dict[str, int]:
    """``versions`` checked: tables of the products checked, versions in their Delta log."""
    from meshsim.storage import delta

    tables = [f"{p.domain}.{t.name}" for p in products for t in p.product.tables]
    every = tables + [
        ref
        for ref in (t.ref for t in mesh.spec.tables())
        if any(reads_table(rule, ref) for rule in _rules_of(mesh.spec, products))
    ]
    chosen: dict[str, int] = {}
    for ref, version in versions.items():
        name = ref.lower()
        if name not in every:
            raise QualityError(
                unknown_name_message("table", ref, tables)
                + " (--version names a table of the products checked, or one they read)",
                hint="write --version DOMAIN.TABLE=VERSION",
            )
        latest = delta.latest_version(mesh.locate(name), table=name)
        if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version <= latest:
            raise QualityError(
                f"table '{name}' has no version {version!r}: its versions are 0 to {latest}",
                hint=f"run 'meshsim history {name}' to list them",
            )
        chosen[name] = version
    return chosen


# --- the publish gate -------------------------------------------------------------------------


def publish(mesh: Mesh, product: str) -> PublishedVersion:
    """``meshsim publish``: the product's rules on its published table versions first; a
    blocking result leaves the catalog's latest version of the product as it was."""
    from meshsim.catalog.views import latest_versions

    found = _products(mesh.spec, product)[0]
    run = run_gate(mesh_reader(mesh), [found], "publish")
    mesh.record_checks(run)
    with mesh.catalog.store.read() as con:
        rows = latest_versions(con)
    latest = next((r["latest_version"] for r in rows if r["ref"] == found.ref), None)
    kept = (
        f"the catalog keeps version {latest} of {found.ref}"
        if latest is not None
        else f"{found.ref} stays unpublished"
    )
    refuse(run, f"nothing was published ({kept})")
    return mesh.catalog.publish(found.ref)


def _rules(product: Product) -> list[Any]:
    return [(t.name, t.quality, [(c.name, c.quality) for c in t.columns]) for t in product.tables]


def rules_changed(mesh: Mesh, spec: MeshSpec) -> list[ProductSpec]:
    """Products whose quality rules differ from their latest published version's while every
    table is already published: a build would publish them with tables it does not rewrite,
    so its own gate (on the tables it writes) would not run their new rules."""
    from meshsim.catalog.views import published_products

    if not mesh.workspace.state_file.is_file():
        return []  # nothing is published (a workspace.json moved aside: a build writes anew)
    changed = []
    with mesh.catalog.store.read() as con:
        for product in spec.products():
            refs = [f"{product.domain}.{t.name}" for t in product.product.tables]
            if any(mesh.published_version(ref) is None for ref in refs):
                continue  # a new table: the build's gate checks the whole product
            published = published_products(con, product.ref)
            if published and _rules(published[-1][1]) != _rules(product.product):
                changed.append(product)
    return changed


def gate_changed_rules(mesh: Mesh, spec: MeshSpec) -> None:
    """Before a build writes anything: the changed rules of :func:`rules_changed` on the
    published versions; a blocking result stops the build with nothing written."""
    products = rules_changed(mesh, spec)
    if not products:
        return
    run = run_gate(mesh_reader(mesh), products, "build")
    # a refusal's results are kept by the build's error handling (Mesh._build), a pass's here
    if not run.blocking:
        mesh.record_checks(run)
    refuse(run, "nothing was built or published (every table stays at its published version)")


# --- meshsim show -----------------------------------------------------------------------------


def shown_results(mesh: Mesh, product: str, viewer: str | None) -> list[dict[str, Any]]:
    """The latest result of each rule of ``product`` on its tables' published versions (a
    newer one on another version named apart), observations hidden as from a check."""
    from meshsim.catalog.quality import latest_results
    from meshsim.quality.samples import stored_for_viewer

    found = _products(mesh.spec, product)[0]
    published = {
        f"{found.domain}.{t.name}": mesh.published_version(f"{found.domain}.{t.name}")
        for t in found.product.tables
    }
    with mesh.catalog.store.read() as con:
        rows = latest_results(con, found.ref, published)
    return stored_for_viewer(rows, mesh.spec, viewer, mesh.table_access)
