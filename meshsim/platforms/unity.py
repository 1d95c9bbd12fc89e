"""Databricks Unity Catalog SQL: a catalog per domain, a schema per product, the tables at
their storage, grants to one account group per consumer, governed tags, and row filter and
column mask functions.

Unity Catalog grants whole tables, so what meshsim decides per column is a column mask: a
function over the value whose ``CASE`` gives each group what meshsim gives its consumer (the
value, the compiled mask, or NULL for a denied column; NULL for any other group). A table's
row filter is one function whose ``CASE`` gives each granted group its predicate (``TRUE``
without row filters) and every other group ``FALSE``. Every function of a table has a branch
for every group granted the table, in the same order (:func:`_granted_cells`), so a user in
several groups gets the rows and the columns of the same group, the first.

Functions are built as sqlglot trees and written in the Databricks dialect; statements
sqlglot has no node for (``CREATE CATALOG``, ``SET ROW FILTER``, ``SET MASK``, ``GRANT USE
CATALOG``, column tags) are commands whose names and literals sqlglot still quotes. Filters
and masks go through :func:`meshsim.platforms.portable.portable` first (LIKE patterns keep
DuckDB's meaning under Spark's backslash escapes; regular expressions are withheld).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meshsim.errors import MeshsimError
from meshsim.platforms.governance import (
    KEY_STAND_IN,
    Governance,
    Limitation,
    common_limitations,
    compiled_filter,
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

    from meshsim.policy.access import TableAccess
    from meshsim.spec.loader import TableSpec

TARGET = "Unity Catalog"
DIALECT = "databricks"
#: the Databricks secret that holds the mesh's hashing key (scope, key)
KEY_SECRET = ("meshsim", "mesh_key")


def target_table(gov: Governance, ref: str) -> exp.Table:
    from sqlglot import exp

    table = gov.table(ref)
    return exp.table_(table.name, db=table.product, catalog=table.domain, quoted=True)


def _sql(node: exp.Expr) -> str:
    return node.sql(dialect=DIALECT)


def _ident(name: str) -> str:
    from sqlglot import exp

    return _sql(exp.to_identifier(name, quoted=True))


def _member(group: str) -> exp.Expr:
    from sqlglot import exp

    return exp.Anonymous(this="is_account_group_member", expressions=[exp.Literal.string(group)])


def _function(
    name: exp.Table, params: list[tuple[str, exp.DataType]], returns: exp.DataType, body: exp.Expr
) -> exp.Create:
    from sqlglot import exp

    return exp.Create(
        kind="FUNCTION",
        replace=True,
        this=exp.UserDefinedFunction(
            this=name,
            expressions=[
                exp.ColumnDef(this=exp.to_identifier(p, quoted=True), kind=t) for p, t in params
            ],
            wrapped=True,
        ),
        expression=exp.Return(this=body),
        properties=exp.Properties(expressions=[exp.ReturnsProperty(this=returns)]),
    )


def _rekeyed(node: exp.Expr) -> exp.Expr:
    """A keyed hash compiled with :data:`KEY_STAND_IN`, keyed with the Databricks secret."""
    from sqlglot import exp

    stand_in = KEY_STAND_IN.hex()

    def key(n: exp.Expr) -> exp.Expr:
        if isinstance(n, exp.Literal) and n.is_string and n.this.startswith(stand_in + "|"):
            secret = exp.Anonymous(
                this="secret", expressions=[exp.Literal.string(k) for k in KEY_SECRET]
            )
            return exp.DPipe(
                this=secret, expression=exp.Literal.string(n.this[len(stand_in) :]), safe=True
            )
        return n

    def sha2(n: exp.Expr) -> exp.Expr:
        if isinstance(n, exp.Anonymous) and n.name.lower() == "sha256":
            return exp.SHA2(this=n.expressions[0], length=exp.Literal.number(256))
        return n

    rekeyed = node.transform(key).transform(sha2)
    if stand_in in rekeyed.sql() or "sha256" in rekeyed.sql().lower():
        raise MeshsimError(f"internal: could not re-key the keyed hash {node.sql()}")
    return rekeyed


def _tables_sql(gov: Governance) -> list[str]:
    from sqlglot import exp

    out: list[str] = []
    for domain in sorted({t.domain for t in gov.spec.tables()}):
        location = _sql(exp.Literal.string(gov.locations[domain]))
        out.append(f"CREATE CATALOG IF NOT EXISTS {_ident(domain)} MANAGED LOCATION {location}")
    for product in sorted({(t.domain, t.product) for t in gov.spec.tables()}):
        schema = exp.Table(this=exp.to_identifier(product[1], quoted=True))
        schema.set("db", exp.to_identifier(product[0], quoted=True))
        out.append(_sql(exp.Create(kind="SCHEMA", this=schema, exists=True)))
    for table in gov.spec.tables():
        columns = [
            exp.ColumnDef(this=exp.to_identifier(c.name, quoted=True), kind=sql_type(table, c.name))
            for c in table.columns
        ]
        properties = exp.Properties(
            expressions=[
                exp.FileFormatProperty(this=exp.var("DELTA")),
                exp.LocationProperty(this=exp.Literal.string(gov.location(table.ref))),
            ]
        )
        create = exp.Create(
            kind="TABLE",
            exists=True,
            this=exp.Schema(this=target_table(gov, table.ref), expressions=columns),
            properties=properties,
        )
        out.append(_sql(create))
        out += _tags_sql(gov, table)
    return out


def _tag_list(tags: dict[str, str]) -> str:
    from sqlglot import exp

    pairs = (
        f"{_sql(exp.Literal.string(k))} = {_sql(exp.Literal.string(v))}" for k, v in tags.items()
    )
    return "(" + ", ".join(pairs) + ")"


def _tags_sql(gov: Governance, table: TableSpec) -> list[str]:
    name = _sql(target_table(gov, table.ref))
    out = []
    if table.table_tags():
        out.append(f"ALTER TABLE {name} SET TAGS {_tag_list(table.table_tags())}")
    for column in table.columns:
        if column.tags:
            out.append(
                f"ALTER TABLE {name} ALTER COLUMN {_ident(column.name)} SET TAGS "
                f"{_tag_list(column.tags)}"
            )
    return out


def _grants_sql(gov: Governance) -> list[str]:
    out = []
    granted = list(gov.granted())
    for consumer in sorted({c.consumer for c in granted}):
        group = _ident(consumer)
        cells = [c for c in granted if c.consumer == consumer]
        tables = [gov.table(c.table) for c in cells]
        for domain in sorted({t.domain for t in tables}):
            out.append(f"GRANT USE CATALOG ON CATALOG {_ident(domain)} TO {group}")
        for domain, product in sorted({(t.domain, t.product) for t in tables}):
            out.append(f"GRANT USE SCHEMA ON SCHEMA {_ident(domain)}.{_ident(product)} TO {group}")
        for table in tables:
            out.append(f"GRANT SELECT ON TABLE {_sql(target_table(gov, table.ref))} TO {group}")
    return out


def _granted_cells(gov: Governance, table: TableSpec) -> list[TableAccess]:
    """The cells granting the table, in the order of every function's branches."""
    return [c for c in gov.granted() if c.table == table.ref]


def _portable_filters(
    gov: Governance, cell: TableAccess, limitations: list[Limitation]
) -> list[exp.Expr] | None:
    """The cell's predicates for Databricks, or None when one would not mean there what it
    means in meshsim (the group then gets no rows; listed)."""
    try:
        return [
            portable(
                compiled_filter(gov, f, cell.consumer, lambda r: target_table(gov, r)), DIALECT
            )
            for f in cell.row_filters
        ]
    except NotPortable as reason:
        limitations += [
            Limitation(
                policy_label(f),
                f"the row filter would not mean on Databricks what it means in meshsim: {reason}",
                "the table is withheld from the group (its row filter branch is FALSE)",
                cell.consumer,
                cell.table,
            )
            for f in cell.row_filters
        ]
        return None


def _row_filter_sql(gov: Governance, table: TableSpec, limitations: list[Limitation]) -> list[str]:
    from sqlglot import exp

    cells = _granted_cells(gov, table)
    if not any(c.filtered for c in cells):
        return []
    fname = f"meshsim_row_filter_{table.name}"
    function = exp.table_(fname, db=table.product, catalog=table.domain, quoted=True)
    used: list[str] = []
    branches = []
    for cell in cells:
        predicates = _portable_filters(gov, cell, limitations)
        if predicates is None:
            branches.append(exp.If(this=_member(cell.consumer), true=exp.false()))
            continue
        for predicate in predicates:
            for column in predicate.find_all(exp.Column):
                if not column.table and column.name not in used:
                    used.append(column.name)
                if not column.table:  # a parameter, never a lookup's column of that name
                    column.set("table", exp.to_identifier(fname, quoted=True))
            if lookups(predicate):
                limitations.append(_lookup_limitation(cell, predicate))
        body = exp.and_(*predicates) if predicates else exp.true()
        branches.append(exp.If(this=_member(cell.consumer), true=body))
    case = exp.Case(ifs=branches, default=exp.false())
    params = [(c, sql_type(table, c)) for c in used]
    create = _function(function, params, exp.DataType.build("boolean"), case)
    on = ", ".join(_ident(c) for c in used)
    name = _sql(target_table(gov, table.ref))
    return [_sql(create), f"ALTER TABLE {name} SET ROW FILTER {_sql(function)} ON ({on})"]


def _lookup_limitation(cell: TableAccess, predicate: exp.Expr) -> Limitation:
    return Limitation(
        "row filter lookups",
        "a row filter function reads its lookup tables with its owner's rights, through their "
        "own row filters if the owner has any",
        f"the function looks up {', '.join(lookups(predicate))}: own it with a principal that "
        "reads those tables whole, as meshsim's policy does",
        cell.consumer,
        cell.table,
    )


def _mask_sql(gov: Governance, table: TableSpec, limitations: list[Limitation]) -> list[str]:
    from sqlglot import exp

    cells = _granted_cells(gov, table)
    out = []
    for index, spec_column in enumerate(table.columns):
        column = spec_column.name
        states = [(cell, cell.column(column)) for cell in cells]
        if all(a is not None and a.state == "full" for _, a in states):
            continue
        fname = f"meshsim_mask_{table.name}_{index}"
        function = exp.table_(fname, db=table.product, catalog=table.domain, quoted=True)
        dtype = sql_type(table, column)
        value = exp.column("value", table=fname, quoted=True)
        branches = []
        for cell, access in states:
            result: exp.Expr = value
            if access is None or access.state == "denied":
                result = exp.null()  # a branch all the same: see the module docstring
            elif access.state == "masked" and access.mask is not None:
                result = _masked(gov, cell, column, value, limitations)
            branches.append(exp.If(this=_member(cell.consumer), true=result))
        nulled = exp.cast(exp.null(), dtype)
        body = exp.Case(ifs=branches, default=nulled) if branches else nulled
        out.append(_sql(_function(function, [("value", dtype)], dtype, body)))
        name = _sql(target_table(gov, table.ref))
        out.append(f"ALTER TABLE {name} ALTER COLUMN {_ident(column)} SET MASK {_sql(function)}")
    return out


def _masked(
    gov: Governance, cell: TableAccess, column: str, value: exp.Expr, limitations: list[Limitation]
) -> exp.Expr:
    from sqlglot import exp

    access = cell.column(column)
    assert access is not None and access.mask is not None
    mask = access.mask
    dtype = sql_type(gov.table(cell.table), column)
    if mask.function == "keyed_hash":
        if dtype.this not in exp.DataType.TEXT_TYPES:
            limitations.append(
                Limitation(
                    policy_label(mask),
                    "the keyed hash of a non-text value keeps its type with DuckDB functions "
                    "Databricks lacks",
                    "the column reads as NULL for this group",
                    cell.consumer,
                    cell.table,
                    column,
                )
            )
            return exp.cast(exp.null(), dtype)
        compiled = _rekeyed(compiled_mask(gov, mask, cell, column, value))
    else:
        compiled = compiled_mask(gov, mask, cell, column, value)
    try:
        return portable(compiled, DIALECT)
    except NotPortable as reason:
        limitations.append(
            Limitation(
                policy_label(mask),
                f"the mask would not mean on Databricks what it means in meshsim: {reason}",
                "the column reads as NULL for this group",
                cell.consumer,
                cell.table,
                column,
            )
        )
        return exp.cast(exp.null(), dtype)


def unity_statements(gov: Governance) -> tuple[list[str], list[Limitation]]:
    """Every statement, in the order to run them, and what they could not express."""
    limitations: list[Limitation] = []
    statements = _tables_sql(gov) + _grants_sql(gov)
    for table in gov.spec.tables():
        statements += _row_filter_sql(gov, table, limitations)
        statements += _mask_sql(gov, table, limitations)
    if any(
        c.mask is not None and c.mask.function == "keyed_hash"
        for cell in gov.granted()
        for c in cell.columns
    ):
        secret = f"secret('{KEY_SECRET[0]}', '{KEY_SECRET[1]}')"
        limitations.append(
            Limitation(
                "keyed_hash masks",
                "the mesh key never leaves the workspace",
                f"text columns are hashed with the key in the Databricks secret {secret}: "
                "put a new key there; hashes differ from meshsim's",
            )
        )
    limitations.append(
        Limitation(
            "consumers",
            "Unity Catalog functions see every group of a user, and the first matching branch wins",
            "each consumer is an account group of the same name; within a table every function "
            "picks the same group (the first in mesh.yaml's order), across tables the groups "
            "may differ: put each user in one of them",
        )
    )
    limitations += common_limitations(gov, TARGET) + custom_mask_limitations(gov, TARGET)
    return statements, limitations


def unity_files(gov: Governance) -> tuple[dict[str, str], list[Limitation]]:
    statements, limitations = unity_statements(gov)
    sql = (
        f"-- Unity Catalog governance of the mesh '{gov.spec.mesh.name}', exported by meshsim.\n"
        "-- What Unity Catalog cannot express is in README.md.\n\n"
        + "".join(f"{s};\n\n" for s in statements)
    )
    readme = (
        f"# Unity Catalog governance for the mesh '{gov.spec.mesh.name}'\n\n"
        "Run `governance.sql` as a metastore admin (a catalog per domain, a schema per "
        "product). Each consumer is an account group of the same name.\n\n"
        "## What Unity Catalog cannot express\n\n" + limitations_markdown(limitations)
    )
    return {"governance.sql": sql, "README.md": readme}, limitations
