"""Cross-file checks of a loaded mesh: what pydantic cannot see file by file.

Each check is a small function that yields :class:`Problem`s; :func:`lint` runs them all so a
user sees every problem at once. ``error`` problems stop a build; ``warning`` ones do not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from meshsim.errors import MeshsimError, PolicyError, closest
from meshsim.spec.loader import KeyPath, MeshSpec, TableSpec, line_of
from meshsim.spec.models import Column, Grant, Mask, Policy, RowFilter, Table, split_column_ref

if TYPE_CHECKING:
    from meshsim.identity import Binding


@dataclass(frozen=True)
class Problem:
    severity: Literal["error", "warning"]
    where: str
    message: str
    #: identifies the problem when several checks can find it (see meshsim.checks)
    subject: tuple[str, ...] = field(default=(), compare=False)

    def __str__(self) -> str:
        return f"{self.where}: {self.severity}: {self.message}"


def _mesh_file(spec: MeshSpec) -> Path:
    return spec.root / "mesh.yaml"


def _suggest(value: str, choices: list[str]) -> str:
    guess = closest(value, choices)
    return f"; did you mean '{guess}'?" if guess else ""


def check_duplicates(spec: MeshSpec) -> Iterator[Problem]:
    mesh_file = _mesh_file(spec)
    groups: dict[str, list[tuple[str, str]]] = {
        "consumer": [
            (c.name, line_of(spec, mesh_file, ("consumers",))) for c in spec.mesh.consumers
        ],
        "domain": [(d.name, str(d.path / "domain.yaml")) for d in spec.domains],
        "product": [(p.ref, str(p.path)) for p in spec.products()],
        "table": [(t.ref, t.product) for t in spec.tables()],
    }
    policies = spec.policies
    named: list[Policy] = [
        *policies.grants,
        *policies.tag_grants,
        *policies.masks,
        *policies.row_filters,
    ]
    groups["policy"] = [(p.name, str(mesh_file)) for p in named if p.name]
    for kind, entries in groups.items():
        counts = Counter(name for name, _ in entries)
        for name, count in counts.items():
            if count > 1:
                where = next(w for n, w in entries if n == name)
                yield Problem("error", where, f"{kind} '{name}' is defined {count} times")
    for table in spec.tables():
        counts = Counter(c.name for c in table.columns)
        for name, count in counts.items():
            if count > 1:
                yield Problem("error", table.ref, f"column '{name}' is defined {count} times")


def check_products(spec: MeshSpec) -> Iterator[Problem]:
    for product in spec.products():
        where = str(product.path)
        if not product.product.owner:
            yield Problem(
                "error",
                where,
                f"product '{product.ref}' has no owner; add 'owner:'",
                ("owner", product.ref),
            )
        for table in product.product.tables:
            names = [c.name for c in table.columns]
            if not names and table.source is None:
                yield Problem("error", where, f"table '{table.name}' has no columns and no source")
            if table.column_mapping:
                yield from _check_mapped_timestamps(where, table)
            for key in [*table.partition_by, *table.primary_key]:
                if names and key not in names:
                    yield Problem(
                        "error",
                        where,
                        f"table '{table.name}': key column '{key}' is not a column"
                        f"{_suggest(key, names)}",
                    )
            for key in table.sort_by:
                if names and key not in names:
                    yield Problem(
                        "error",
                        where,
                        f"table '{table.name}': sort_by column '{key}' is not a column"
                        f"{_suggest(key, names)}",
                    )


def _check_mapped_timestamps(where: str, table: Table) -> Iterator[Problem]:
    """deltalake writes a table with column mapping and a timestamp without time zone under
    a protocol that omits the column mapping feature, which no reader may then trust."""
    from meshsim.spec.types import holds_timestamp_ntz, to_arrow

    for column in table.columns:
        if holds_timestamp_ntz(to_arrow(column.type)):
            yield Problem(
                "error",
                where,
                f"table '{table.name}': column '{column.name}' ({column.type}) holds a "
                f"timestamp without time zone, which deltalake cannot write with "
                f"'column_mapping: true' (its protocol would omit columnMapping); declare it "
                f"timestamptz, or drop column_mapping",
            )


def check_tags_and_classifications(spec: MeshSpec) -> Iterator[Problem]:
    taxonomy = {k: v.values for k, v in spec.mesh.tags.items()}
    classes = spec.mesh.classifications

    def check(tags: dict[str, str], where: str, owner: str) -> Iterator[Problem]:
        for key, value in tags.items():
            if key not in taxonomy:
                yield Problem(
                    "error",
                    where,
                    f"{owner}: tag '{key}' is not defined{_suggest(key, list(taxonomy))} "
                    f"(tags: {', '.join(taxonomy) or 'none'})",
                )
            elif value not in taxonomy[key]:
                yield Problem(
                    "error",
                    where,
                    f"{owner}: tag value '{key}={value}' is not defined"
                    f"{_suggest(value, taxonomy[key])} "
                    f"({key}: {', '.join(taxonomy[key])})",
                )

    for product in spec.products():
        where = str(product.path)
        yield from check(product.product.tags, where, f"product '{product.ref}'")
        for table in product.product.tables:
            yield from check(table.tags, where, f"table '{table.name}'")
            for column in table.columns:
                yield from check(column.tags, where, f"column '{table.name}.{column.name}'")
                if column.classification and column.classification not in classes:
                    yield Problem(
                        "error",
                        where,
                        f"column '{table.name}.{column.name}': classification "
                        f"'{column.classification}' is not defined"
                        f"{_suggest(column.classification, classes)} "
                        f"(classifications: {', '.join(classes)})",
                    )
    mesh_file = str(_mesh_file(spec))
    for mask in spec.policies.masks:
        yield from check(mask.tags, mesh_file, f"mask '{mask.name}'")
        if mask.classification and mask.classification not in classes:
            yield Problem(
                "error",
                mesh_file,
                f"mask '{mask.name}': classification '{mask.classification}' is not defined",
            )
    from meshsim.policy.conditions import parse_tag_expression

    for index, grant in enumerate(spec.policies.tag_grants):
        name = grant.name or f"tag_grants[{index}]"
        try:
            terms = parse_tag_expression(grant.expression)
        except PolicyError as exc:
            yield Problem("error", mesh_file, f"tag grant '{name}': {exc.message}")
            continue
        for key, values in terms:
            for value in sorted(values):
                yield from check({key: value}, mesh_file, f"tag grant '{name}'")


_SECTIONS = {
    "grant": "grants",
    "tag grant": "tag_grants",
    "mask": "masks",
    "row filter": "row_filters",
}


def check_policy_references(spec: MeshSpec) -> Iterator[Problem]:
    from meshsim.policy.conditions import consumer_attributes_in, evaluate_when
    from meshsim.policy.fragments import parse_fragment

    mesh_file = str(_mesh_file(spec))
    consumers = spec.consumer_names()
    defined = set(consumers)
    attributes = {a for c in spec.mesh.consumers for a in c.attributes}
    tables = {t.ref: t for t in spec.tables()}
    products = [p.ref for p in spec.products()]
    defined_products = set(products)
    policies = spec.policies
    all_policies: list[tuple[str, int, Policy]] = [
        *(("grant", i, p) for i, p in enumerate(policies.grants)),
        *(("tag grant", i, p) for i, p in enumerate(policies.tag_grants)),
        *(("mask", i, p) for i, p in enumerate(policies.masks)),
        *(("row filter", i, p) for i, p in enumerate(policies.row_filters)),
    ]
    for kind, index, policy in all_policies:
        label = f"{kind} '{policy.name or index}'"
        key = ("policies", _SECTIONS[kind], index)
        for name in [*policy.consumers, *policy.except_]:
            if name != "*" and name not in defined:
                yield Problem(
                    "error",
                    mesh_file,
                    f"{label}: consumer '{name}' is not defined{_suggest(name, consumers)} "
                    f"(consumers: {', '.join(consumers)})",
                )
        if policy.when is not None:
            where = line_of(spec, _mesh_file(spec), (*key, "when"))
            try:
                parse_fragment(policy.when, what=f"{label}: condition")
                for attribute in consumer_attributes_in(policy.when) - attributes:
                    yield Problem(
                        "warning",
                        where,
                        f"{label}: no consumer has attribute '{attribute}'"
                        f"{_suggest(attribute, sorted(attributes))}",
                    )
                for consumer in spec.mesh.consumers:  # unsupported operators show up here
                    evaluate_when(policy.when, consumer.attributes)
            except PolicyError as exc:
                message = (
                    exc.message if exc.message.startswith(label) else f"{label}: {exc.message}"
                )
                yield Problem("error", where, message)
        if isinstance(policy, Mask) and policy.expression is not None:
            from meshsim.query.masks import parse_mask_expression

            try:
                parse_mask_expression(policy)
            except PolicyError as exc:
                where = line_of(spec, _mesh_file(spec), (*key, "expression"))
                yield Problem("error", where, exc.message)
        refs_tables = list(policy.tables) if isinstance(policy, Grant) else []
        if isinstance(policy, RowFilter):
            refs_tables.append(policy.table)
        for ref in refs_tables:
            if ref not in tables:
                yield Problem(
                    "error",
                    mesh_file,
                    f"{label}: table '{ref}' is not defined{_suggest(ref, list(tables))}",
                )
        product = getattr(policy, "product", None)
        if product and product not in defined_products:
            yield Problem(
                "error",
                mesh_file,
                f"{label}: product '{product}' is not defined{_suggest(product, products)}",
            )
        for ref in [*getattr(policy, "columns", []), *getattr(policy, "exclude_columns", [])]:
            table_ref, column = split_column_ref(ref)
            table = tables.get(table_ref)
            if table is None:
                yield Problem(
                    "error",
                    mesh_file,
                    f"{label}: table '{table_ref}' of column '{ref}' is not defined"
                    f"{_suggest(table_ref, list(tables))}",
                )
            elif table.columns and table.column(column) is None:
                # a table without columns (a registered one whose Delta schema could not be
                # read) has its own error; its columns are unknown, not missing
                names = [c.name for c in table.columns]
                yield Problem(
                    "error",
                    mesh_file,
                    f"{label}: column '{ref}' is not defined{_suggest(column, names)}",
                )
        if isinstance(policy, RowFilter):
            where = line_of(spec, _mesh_file(spec), (*key, "predicate"))
            yield from _check_predicate(spec, label, policy.table, policy.predicate, where)


def _check_predicate(
    spec: MeshSpec, label: str, table_ref: str, predicate: str, where: str
) -> Iterator[Problem]:
    from sqlglot import exp

    from meshsim.policy.fragments import parse_fragment

    try:
        tree = parse_fragment(predicate, what=f"{label}: predicate")
    except PolicyError as exc:
        yield Problem("error", where, exc.message)
        return
    table = spec.table(table_ref)
    for ref_table in tree.find_all(exp.Table):
        ref = f"{ref_table.db}.{ref_table.name}".lower()
        if spec.table(ref) is None:
            yield Problem(
                "error", where, f"{label}: predicate reads '{ref}', which is not a mesh table"
            )
    if table is None or not table.columns:  # unknown columns: the table has its own error
        return
    outer_columns = {c.name for c in table.columns}
    named: set[str] = set()
    for column in tree.find_all(exp.Column):
        if column.table or column.find_ancestor(exp.Subquery, exp.Select):
            continue
        if column.name not in outer_columns and column.name not in named:
            named.add(column.name)
            yield Problem(
                "error",
                where,
                f"{label}: predicate names column '{column.name}', "
                f"which '{table_ref}' does not have"
                f"{_suggest(column.name, sorted(outer_columns))}",
            )


def _is_pii(table: TableSpec, column: Column) -> bool:
    return column.classification == "pii"


def check_pii_protected(spec: MeshSpec) -> Iterator[Problem]:
    """A PII column whose raw values reach a consumer that is not a governance admin, unless
    the column's ``allow_unmasked`` waiver names the consumer; waivers that name no consumer
    or waive nothing are reported too."""
    from meshsim.policy.access import readable_access
    from meshsim.policy.exposure import raw_cells

    try:
        matrix = readable_access(spec)
    except PolicyError:  # a broken 'when' condition, reported by check_policy_references
        return
    except MeshsimError as exc:
        yield Problem("error", str(_mesh_file(spec)), exc.message)
        return
    admins = {c.name for c in spec.mesh.consumers if c.admin}
    names = spec.consumer_names()
    defined = set(names)
    waived: set[tuple[str, str]] = set()
    for table in spec.tables():
        for column in table.columns:
            waiver = column.allow_unmasked
            if waiver is None:
                continue
            ref = f"{table.ref}.{column.name}"
            for name in waiver.consumers:
                if name not in defined:
                    yield Problem(
                        "error",
                        table.product,
                        f"column '{ref}': allow_unmasked names consumer '{name}', which is not "
                        f"defined{_suggest(name, names)}",
                    )
                else:
                    waived.add((ref, name))
    used: set[tuple[str, str]] = set()
    for cell in raw_cells(spec, matrix, _is_pii):
        if cell.consumer in admins:
            continue
        if (cell.ref, cell.consumer) in waived:
            used.add((cell.ref, cell.consumer))
            continue
        yield Problem(
            "error",
            str(_mesh_file(spec)),
            f"PII column '{cell.ref}' is visible unmasked to '{cell.consumer}'{cell.why}; "
            + (
                "add a mask or exclude the column"
                if cell.mask is None
                else "add a mask that hides it or exclude the column"
            ),
            ("unmasked", cell.ref, cell.consumer),
        )
    for table in spec.tables():
        for column in table.columns:
            if column.allow_unmasked is None:
                continue
            ref = f"{table.ref}.{column.name}"
            idle = [n for n in column.allow_unmasked.consumers if (ref, n) in waived - used]
            if idle:
                yield Problem(
                    "warning",
                    table.product,
                    f"column '{ref}': allow_unmasked waives nothing for {', '.join(idle)} "
                    f"(they do not see it unmasked); remove the waiver",
                )


def check_consumer_attributes(spec: MeshSpec) -> Iterator[Problem]:
    """``consumer.<attribute>`` in a row filter predicate or a custom mask names an attribute
    the consumers it applies to have: a missing one is NULL (a typo hides every row)."""
    from meshsim.policy.access import selects

    mesh_file = _mesh_file(spec)
    sources: list[tuple[str, KeyPath, str, str, RowFilter | Mask]] = [
        *(
            (
                f"row filter '{f.name}'",
                ("policies", "row_filters", i, "predicate"),
                "predicate",
                f.predicate,
                f,
            )
            for i, f in enumerate(spec.policies.row_filters)
        ),
        *(
            (
                f"mask '{m.name}'",
                ("policies", "masks", i, "expression"),
                "expression",
                m.expression,
                m,
            )
            for i, m in enumerate(spec.policies.masks)
            if m.expression is not None
        ),
    ]
    for label, key, noun, text, policy in sources:
        try:
            read = _consumer_attributes(text)
            chosen = [c for c in spec.mesh.consumers if selects(policy, c)]
        except (PolicyError, MeshsimError):  # reported by check_policy_references
            continue
        if not chosen:
            continue
        where = line_of(spec, mesh_file, key)
        known = sorted({a for c in chosen for a in c.attributes})
        for attribute in sorted(read):
            lacking = [c.name for c in chosen if attribute not in c.attributes]
            if len(lacking) == len(chosen):
                effect = (
                    "it would be NULL and hide every row"
                    if noun == "predicate"
                    else ("it would be NULL")
                )
                yield Problem(
                    "error",
                    where,
                    f"{label}: {noun} reads 'consumer.{attribute}', which no consumer it "
                    f"selects has ({', '.join(lacking)}); {effect}"
                    f"{_suggest(attribute, known)}",
                )
            elif lacking:
                yield Problem(
                    "warning",
                    where,
                    f"{label}: {noun} reads 'consumer.{attribute}', which "
                    f"{', '.join(lacking)} {'does' if len(lacking) == 1 else 'do'} not have; "
                    f"for them it is NULL",
                )


def _consumer_attributes(text: str) -> set[str]:
    from sqlglot import exp

    from meshsim.policy.fragments import parse_fragment

    tree = parse_fragment(text.replace("{column}", "_column_"), what="policy")
    return {
        c.name
        for c in tree.find_all(exp.Column)
        if c.table.lower() == "consumer" and not c.args.get("db")
    }


def check_identities(spec: MeshSpec) -> Iterator[Problem]:
    """Say plainly which identities meshsim checks (see :mod:`meshsim.identity`) and which are
    asserted; one principal bound to two different lists is an error."""
    from meshsim.identity import declarations, principals

    bindings = declarations(spec)
    if not bindings:
        yield Problem(
            "warning",
            str(_mesh_file(spec)),
            "no principal is bound to OS users, so identities are asserted: anyone who can run "
            "meshsim can act as any consumer (--as) or decide as any owner or admin (--by); "
            "bind them with os_users (consumers) and owner_os_users (domain.yaml, products)",
        )
        return
    first: dict[str, Binding] = {}
    for binding in bindings:
        seen = first.setdefault(binding.principal, binding)
        if set(seen.os_users) != set(binding.os_users):
            yield Problem(
                "error",
                str(binding.file),
                f"principal '{binding.principal}' is bound to different OS users: "
                f"{', '.join(seen.os_users)} ({seen.where}) and "
                f"{', '.join(binding.os_users)} ({binding.where}); bind it once",
            )
    unbound = [p for p in principals(spec) if p not in first]
    if unbound:
        yield Problem(
            "warning",
            str(_mesh_file(spec)),
            f"identities of {', '.join(unbound)} are asserted: they are not bound to OS users, "
            f"so anyone who can run meshsim can act as them",
        )


def check_quality_rules(spec: MeshSpec) -> Iterator[Problem]:
    """Quality rules against their tables (:mod:`meshsim.spec.quality_lint`)."""
    from meshsim.spec.quality_lint import check_quality

    yield from check_quality(spec)


CHECKS: tuple[Callable[[MeshSpec], Iterator[Problem]], ...] = (
    check_duplicates,
    check_products,
    check_tags_and_classifications,
    check_policy_references,
    check_pii_protected,
    check_consumer_attributes,
    check_identities,
    check_quality_rules,
)


def lint(spec: MeshSpec) -> list[Problem]:
    problems: list[Problem] = []
    for check in CHECKS:
        problems.extend(check(spec))
    return problems
