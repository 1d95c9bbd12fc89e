"""Trino file-based access control: one ``rules.json`` for a Delta Lake catalog whose
schemas are the mesh's domains.

Each consumer is a Trino user. Trino uses the first table rule that matches a user and a
table, so the rules are one per granted (consumer, table) cell, then one that denies
everything else. A rule lists the consumer's denied columns (``allow: false``), its masks
(SQL transpiled with sqlglot) and its row filters (ANDed). A row filter that looks up other
tables runs as a service user (:data:`POLICY_USER` unless the export is given another), who
may read exactly those tables, as meshsim reads them with the policy's rights; it must not be
a consumer, whose own rules would come first and who would read the looked-up tables whole.
Trino matches column rules against column names in lower case (its identifiers are), so the
rules name columns in lower case; the spec refuses two columns of a table that differ only by
case, and its schema and table names are lower case already. The format is described by
``trino_rules.schema.json`` next to this module (a JSON Schema written from Trino's rule
format).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from meshsim.errors import MeshsimError
from meshsim.platforms.governance import (
    Governance,
    Limitation,
    cell_filter,
    common_limitations,
    compiled_mask,
    custom_mask_limitations,
    limitations_markdown,
    lookups,
    policy_label,
    sql_type,
)
from meshsim.platforms.portable import NotPortable, portable

if TYPE_CHECKING:
    from sqlglot import exp

    from meshsim.policy.access import ColumnAccess, TableAccess

TARGET = "Trino"
#: the user row filters with lookups run as (filter_environment), unless told another
POLICY_USER = "meshsim_policy"
DIALECT = "trino"


def _exact(name: str) -> str:
    return f"^{re.escape(name)}$"


def _target_table(catalog: str) -> Any:
    from sqlglot import exp

    def table(ref: str) -> exp.Table:
        domain, name = ref.split(".")
        return exp.table_(name, db=domain, catalog=catalog, quoted=True)

    return table


def _lowered(node: exp.Expr) -> exp.Expr:
    """Column names as Trino sees them: in lower case."""
    from sqlglot import exp

    def lower(n: exp.Expr) -> exp.Expr:
        if isinstance(n, exp.Column):
            return exp.column(n.name.lower(), table=n.table or None, quoted=True)
        return n

    return node.transform(lower)


def _mask_sql(
    gov: Governance, cell: TableAccess, column: ColumnAccess
) -> tuple[str, Limitation | None]:
    from sqlglot import exp

    mask = column.mask
    assert mask is not None
    table = gov.table(cell.table)
    dtype = sql_type(table, column.column)
    value = exp.column(column.column.lower(), quoted=True)
    nulled = exp.cast(exp.null(), dtype).sql(dialect=DIALECT)
    if mask.function == "keyed_hash":
        return nulled, Limitation(
            policy_label(mask),
            "Trino masks cannot read a secret key, so a keyed hash cannot be computed",
            "the column reads as NULL (nothing of the value is shown)",
            cell.consumer,
            cell.table,
            column.column,
        )
    if mask.function == "year_only":  # Trino has no make_date
        trunc = exp.Anonymous(this="date_trunc", expressions=[exp.Literal.string("year"), value])
        return exp.cast(trunc, dtype).sql(dialect=DIALECT), None
    try:
        compiled = portable(compiled_mask(gov, mask, cell, column.column, value), DIALECT)
    except NotPortable as reason:
        return nulled, Limitation(
            policy_label(mask),
            f"the mask would not mean on Trino what it means in meshsim: {reason}",
            "the column reads as NULL (nothing of the value is shown)",
            cell.consumer,
            cell.table,
            column.column,
        )
    return compiled.sql(dialect=DIALECT), None


def _table_rule(
    gov: Governance,
    cell: TableAccess,
    catalog: str,
    policy_user: str,
    limitations: list[Limitation],
) -> tuple[dict[str, Any] | None, list[str]]:
    """The cell's rule and the tables its filter looks up; no rule when the filter would not
    mean on Trino what it means in meshsim (the table is withheld, listed)."""
    domain, name = cell.table.split(".")
    predicate = cell_filter(gov, cell, _target_table(catalog), inner_qualifier=name)
    if predicate is not None:
        try:
            predicate = _lowered(portable(predicate, DIALECT))
        except NotPortable as reason:
            limitations += [
                Limitation(
                    policy_label(row_filter),
                    f"the row filter would not mean on Trino what it means in meshsim: {reason}",
                    "the table is withheld from the consumer (no rule: denied)",
                    cell.consumer,
                    cell.table,
                )
                for row_filter in cell.row_filters
            ]
            return None, []
    rule: dict[str, Any] = {
        "user": _exact(cell.consumer),
        "catalog": _exact(catalog),
        "schema": _exact(domain),
        "table": _exact(name),
        "privileges": ["SELECT"],
    }
    columns = []
    for column in cell.columns:
        if column.state == "denied":
            columns.append({"name": column.column.lower(), "allow": False})
        elif column.state == "masked":
            sql, limitation = _mask_sql(gov, cell, column)
            columns.append({"name": column.column.lower(), "mask": sql})
            if limitation is not None:
                limitations.append(limitation)
    if columns:
        rule["columns"] = columns
    looked_up: list[str] = []
    if predicate is not None:
        rule["filter"] = predicate.sql(dialect=DIALECT)
        looked_up = lookups(predicate)
        if looked_up:
            rule["filter_environment"] = {"user": policy_user}
    return rule, looked_up


def _lookup_rules(refs: set[str], policy_user: str) -> list[dict[str, Any]]:
    """SELECT for the policy user on exactly the tables row filters look up (refs as
    ``"catalog"."schema"."table"``)."""
    from sqlglot import exp

    rules = []
    for ref in sorted(refs):
        table = exp.to_table(ref, dialect=DIALECT)
        rules.append(
            {
                "user": _exact(policy_user),
                "catalog": _exact(table.catalog),
                "schema": _exact(table.db),
                "table": _exact(table.name),
                "privileges": ["SELECT"],
            }
        )
    return rules


def check_policy_user(gov: Governance, policy_user: str) -> str:
    """The service user row filters run as: a Trino user name, and no consumer's."""
    if not policy_user or re.search(r"[\s\x00-\x1f]", policy_user):
        raise MeshsimError(
            f"--policy-user {policy_user!r} is not a Trino user name: non-empty, no spaces",
            hint=f"meshsim export trino --policy-user {POLICY_USER}",
        )
    if gov.spec.consumer(policy_user) is not None:
        raise MeshsimError(
            f"'{policy_user}' is a consumer of the mesh, so it cannot also be the Trino user "
            "row filters look up tables as (it would read them whole, and its own rules would "
            "come first)",
            hint="name a user no person has: meshsim export trino --policy-user NAME",
        )
    return policy_user


def trino_rules(
    gov: Governance, catalog: str, policy_user: str = POLICY_USER
) -> tuple[dict[str, Any], list[Limitation]]:
    """The rules document and what it could not express."""
    check_policy_user(gov, policy_user)
    limitations: list[Limitation] = []
    table_rules = []
    looked_up: set[str] = set()
    for cell in gov.granted():
        rule, refs = _table_rule(gov, cell, catalog, policy_user, limitations)
        if rule is not None:
            table_rules.append(rule)
        looked_up |= set(refs)
    users = sorted({c.consumer for c in gov.granted()} | ({policy_user} if looked_up else set()))
    if looked_up:
        limitations.append(
            Limitation(
                "row filters with lookups",
                "Trino evaluates a row filter as the querying user unless told otherwise",
                f"filters that look up tables run as the user '{policy_user}', who may read "
                "only the looked-up tables: give it to no person (--policy-user names it; it "
                "may not be a consumer)",
            )
        )
    user_pattern = "^(" + "|".join(re.escape(u) for u in users) + ")$"
    catalogs: list[dict[str, Any]] = []
    schemas: list[dict[str, Any]] = []
    if users:
        catalogs.append({"user": user_pattern, "catalog": _exact(catalog), "allow": "read-only"})
        schemas.append({"user": user_pattern, "catalog": _exact(catalog), "owner": False})
    catalogs.append({"allow": "none"})
    schemas.append({"owner": False})
    rules = {
        "catalogs": catalogs,
        "schemas": schemas,
        "tables": [*table_rules, *_lookup_rules(looked_up, policy_user), {"privileges": []}],
    }
    limitations += common_limitations(gov, TARGET) + custom_mask_limitations(gov, TARGET)
    return rules, limitations


def trino_files(
    gov: Governance, catalog: str, policy_user: str = POLICY_USER
) -> tuple[dict[str, str], list[Limitation]]:
    rules, limitations = trino_rules(gov, catalog, policy_user)
    readme = (
        f"# Trino access control for the mesh '{gov.spec.mesh.name}'\n\n"
        f"`rules.json` is a file-based access control file for the catalog `{catalog}` (a Delta "
        "Lake connector catalog whose schemas are the mesh's domains, its tables at the "
        "domains' storage). Set `access-control.name=file` and `security.config-file` to it.\n"
        "Each consumer is a Trino user. Row filters that look up tables run as the user "
        f"`{policy_user}`: give it to no person. Column names are written in lower case, as "
        "Trino matches them.\n\n## What Trino cannot express\n\n"
        + limitations_markdown(limitations)
    )
    files = {"rules.json": json.dumps(rules, indent=2) + "\n", "README.md": readme}
    return files, limitations
