"""Trino file-based access control: one ``rules.json`` for a Delta Lake catalog whose
schemas are the mesh's domains.

Each consumer is a Trino user. Trino uses the first table rule that matches a user and a
table, so the rules are one per granted (consumer, table) cell, then one that denies
everything else. A rule lists the consumer's denied columns (``allow: false``), its masks
(SQL transpiled with sqlglot) and its row filters (ANDed). A row filter that looks up other
tables runs as :data:`POLICY_USER`, who may read exactly those tables, as meshsim reads them
with the policy's rights. The format is described by ``trino_rules.schema.json`` next to
this module (a JSON Schema written from Trino's rule format).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from sqlglot import exp

    from meshsim.policy.access import ColumnAccess, TableAccess

TARGET = "Trino"
#: the user row filters with lookups run as (filter_environment)
POLICY_USER = "meshsim_policy"


def _exact(name: str) -> str:
    return f"^{re.escape(name)}$"


def _target_table(catalog: str) -> Any:
    from sqlglot import exp

    def table(ref: str) -> exp.Table:
        domain, name = ref.split(".")
        return exp.table_(name, db=domain, catalog=catalog, quoted=True)

    return table


def _mask_sql(
    gov: Governance, cell: TableAccess, column: ColumnAccess
) -> tuple[str, Limitation | None]:
    from sqlglot import exp

    mask = column.mask
    assert mask is not None
    table = gov.table(cell.table)
    dtype = sql_type(table, column.column)
    value = exp.column(column.column, quoted=True)
    if mask.function == "keyed_hash":
        nulled = exp.cast(exp.null(), dtype)
        return nulled.sql(dialect="trino"), Limitation(
            policy_label(mask),
            "Trino masks cannot read a secret key, so a keyed hash cannot be computed",
            "the column reads as NULL (nothing of the value is shown)",
            cell.consumer,
            cell.table,
            column.column,
        )
    if mask.function == "year_only":  # Trino has no make_date
        trunc = exp.Anonymous(this="date_trunc", expressions=[exp.Literal.string("year"), value])
        return exp.cast(trunc, dtype).sql(dialect="trino"), None
    return compiled_mask(gov, mask, cell, column.column, value).sql(dialect="trino"), None


def _table_rule(
    gov: Governance, cell: TableAccess, catalog: str, limitations: list[Limitation]
) -> tuple[dict[str, Any], list[str]]:
    domain, name = cell.table.split(".")
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
            columns.append({"name": column.column, "allow": False})
        elif column.state == "masked":
            sql, limitation = _mask_sql(gov, cell, column)
            columns.append({"name": column.column, "mask": sql})
            if limitation is not None:
                limitations.append(limitation)
    if columns:
        rule["columns"] = columns
    predicate = cell_filter(gov, cell, _target_table(catalog), inner_qualifier=name)
    looked_up: list[str] = []
    if predicate is not None:
        rule["filter"] = predicate.sql(dialect="trino")
        looked_up = lookups(predicate)
        if looked_up:
            rule["filter_environment"] = {"user": POLICY_USER}
    return rule, looked_up


def _lookup_rules(refs: set[str]) -> list[dict[str, Any]]:
    """SELECT for :data:`POLICY_USER` on exactly the tables row filters look up (refs as
    ``"catalog"."schema"."table"``)."""
    from sqlglot import exp

    rules = []
    for ref in sorted(refs):
        table = exp.to_table(ref, dialect="trino")
        rules.append(
            {
                "user": _exact(POLICY_USER),
                "catalog": _exact(table.catalog),
                "schema": _exact(table.db),
                "table": _exact(table.name),
                "privileges": ["SELECT"],
            }
        )
    return rules


def trino_rules(gov: Governance, catalog: str) -> tuple[dict[str, Any], list[Limitation]]:
    """The rules document and what it could not express."""
    limitations: list[Limitation] = []
    table_rules = []
    looked_up: set[str] = set()
    for cell in gov.granted():
        rule, refs = _table_rule(gov, cell, catalog, limitations)
        table_rules.append(rule)
        looked_up |= set(refs)
    users = sorted({c.consumer for c in gov.granted()} | ({POLICY_USER} if looked_up else set()))
    if looked_up:
        limitations.append(
            Limitation(
                "row filters with lookups",
                "Trino evaluates a row filter as the querying user unless told otherwise",
                f"filters that look up tables run as the user '{POLICY_USER}', who may read "
                "only the looked-up tables: give it to no person",
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
        "tables": [*table_rules, *_lookup_rules(looked_up), {"privileges": []}],
    }
    limitations += common_limitations(gov, TARGET) + custom_mask_limitations(gov, TARGET)
    return rules, limitations


def trino_files(gov: Governance, catalog: str) -> tuple[dict[str, str], list[Limitation]]:
    rules, limitations = trino_rules(gov, catalog)
    readme = (
        f"# Trino access control for the mesh '{gov.spec.mesh.name}'\n\n"
        f"`rules.json` is a file-based access control file for the catalog `{catalog}` (a Delta "
        "Lake connector catalog whose schemas are the mesh's domains, its tables at the "
        "domains' storage). Set `access-control.name=file` and `security.config-file` to it.\n"
        "Each consumer is a Trino user.\n\n## What Trino cannot express\n\n"
        + limitations_markdown(limitations)
    )
    files = {"rules.json": json.dumps(rules, indent=2) + "\n", "README.md": readme}
    return files, limitations
