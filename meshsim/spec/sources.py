"""Checks of where each table's data comes from, run before anything is written.

* ``{tpch: <table>}``: every declared column must be one tpchgen-cli generates
  (:data:`meshsim.spec.tpch.TPCH_COLUMNS`) and its declared type must hold the generated values
  without loss (:func:`meshsim.spec.types.can_hold`), so the build's cast cannot fail half way.
* ``{location: <path>}``: the path must be a Delta table meshsim can read, outside any
  workspace's other accounts, and hold every declared column with the declared type. Only the
  Delta log is read (the schema in its metadata), never the data. Without declared columns
  the table's columns are its Delta schema's (:mod:`meshsim.sources.registered`), listed as a
  warning; with declared ones, its undeclared columns are named in a warning (not queryable).
* ``{csv|parquet|json: <files>}``: the files exist and DuckDB reads them as declared: every
  declared column present, every value converting to its type (:mod:`meshsim.sources.files`).
* ``{sql: <query>}``: the query parses, names mesh tables its domain's consumer has a grant on,
  and derived tables do not read each other in a cycle (:mod:`meshsim.sources.derived`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from meshsim.errors import MeshsimError, closest
from meshsim.spec.lint import Problem
from meshsim.spec.loader import MeshSpec, ProductSpec, line_of
from meshsim.spec.models import (
    CsvSource,
    JsonSource,
    LocationSource,
    ParquetSource,
    Table,
    TpchSource,
)
from meshsim.spec.tpch import TPCH_COLUMNS
from meshsim.spec.types import can_hold, from_arrow, to_arrow

if TYPE_CHECKING:
    import pyarrow as pa

#: what marks a folder as a meshsim workspace (see meshsim.workspace)
_WORKSPACE_MARK = "workspace.json"
_OWN_ACCOUNT_ONLY = "a domain registers only tables outside a workspace or in its own account"


def location_path(spec: MeshSpec, source: LocationSource) -> Path:
    """A registered table's location: absolute, or relative to the mesh folder."""
    return (spec.root / source.location).resolve()


def check_sources(spec: MeshSpec, workspace: Path | None = None) -> Iterator[Problem]:
    """Every problem of every table source. ``workspace`` is the workspace being built, whose
    accounts count even before its first build has marked it."""
    managed = {
        (p.domain, t.name)
        for p in spec.products()
        for t in p.product.tables
        if not isinstance(t.source, LocationSource)
    }
    for product in spec.products():
        for index, table in enumerate(product.product.tables):
            if isinstance(table.source, TpchSource):
                yield from _check_tpch(spec, product, index, table, table.source)
            elif isinstance(table.source, LocationSource):
                yield from _check_location(spec, product, index, table, workspace, managed)
            elif isinstance(table.source, CsvSource | ParquetSource | JsonSource):
                yield from _check_files(spec, product, index, table)


def _check_files(
    spec: MeshSpec, product: ProductSpec, index: int, table: Table
) -> Iterator[Problem]:
    from meshsim.sources.files import inspect

    ref = f"{product.domain}.{table.name}"
    for finding in inspect(spec.root, table, ref).findings:
        path: tuple[str | int, ...] = (
            ("source",) if finding.column is None else ("columns", finding.column)
        )
        yield Problem(finding.severity, _where(spec, product, index, *path), finding.message)


def check_derived(spec: MeshSpec) -> Iterator[Problem]:
    from meshsim.sources.derived import check_derived

    for finding in check_derived(spec):
        product = spec.product(f"{finding.table.domain}.{finding.table.product}")
        assert product is not None
        index = next(
            i for i, t in enumerate(product.product.tables) if t.name == finding.table.name
        )
        yield Problem("error", _where(spec, product, index, "source"), finding.message)


def _where(spec: MeshSpec, product: ProductSpec, *path: str | int) -> str:
    return line_of(spec, product.path, ("tables", *path))


def _check_tpch(
    spec: MeshSpec, product: ProductSpec, index: int, table: Table, source: TpchSource
) -> Iterator[Problem]:
    ref = f"{product.domain}.{table.name}"
    generated = dict(TPCH_COLUMNS[source.tpch])
    listing = ", ".join(f"{name} {kind}" for name, kind in generated.items())
    if not table.columns:
        yield Problem(
            "error",
            _where(spec, product, index, "source"),
            f"table '{ref}' declares no columns; policies need them (TPC-H '{source.tpch}' "
            f"has: {listing})",
        )
    for position, column in enumerate(table.columns):
        where = _where(spec, product, index, "columns", position)
        actual = generated.get(column.name)
        if actual is None:
            guess = closest(column.name, list(generated))
            yield Problem(
                "error",
                where,
                f"table '{ref}': column '{column.name}' is not in the generated TPC-H table "
                f"'{source.tpch}'"
                + (f"; did you mean '{guess}'?" if guess else "")
                + f" (its columns: {listing})",
            )
        elif not can_hold(column.type, actual):
            yield Problem(
                "error",
                where,
                f"table '{ref}': column '{column.name}' is declared {column.type}, which cannot "
                f"hold the generated {actual} values; declare {actual}",
            )


def _account_problem(
    location: Path, domain: str, table: str, workspace: Path | None, managed: set[tuple[str, str]]
) -> str | None:
    """Why ``location`` may not be registered by ``domain``, if it lies inside a workspace."""
    roots = [p for p in location.parents if (p / _WORKSPACE_MARK).is_file()]
    if workspace is not None:
        roots.insert(0, workspace.expanduser().resolve())
    for root in roots:
        try:
            parts = location.relative_to(root).parts
        except ValueError:
            continue
        if len(parts) < 2 or parts[0] != "accounts":
            return (
                f"is inside the workspace '{root}' but not in a domain's storage account; "
                f"{_OWN_ACCOUNT_ONLY}"
            )
        if parts[1] != domain:
            return (
                f"is in the storage account of domain '{parts[1]}' of the workspace '{root}'; "
                f"{_OWN_ACCOUNT_ONLY}"
            )
        if len(parts) >= 3 and (domain, parts[2]) in managed:
            return f"is where meshsim writes table '{domain}.{parts[2]}'; register another folder"
    return None


def _spec_type(dtype: pa.DataType) -> str | None:
    try:
        return from_arrow(dtype)
    except ValueError:  # a type no spec column can declare (list, struct...)
        return None


def _check_location(
    spec: MeshSpec,
    product: ProductSpec,
    index: int,
    table: Table,
    workspace: Path | None,
    managed: set[tuple[str, str]],
) -> Iterator[Problem]:
    from meshsim.storage import delta
    from meshsim.storage.files import check_files, damaged_files_error
    from meshsim.storage.snapshot import load_snapshot

    assert isinstance(table.source, LocationSource)
    ref = f"{product.domain}.{table.name}"
    location = location_path(spec, table.source)
    where = _where(spec, product, index, "source")
    prefix = f"table '{ref}': source.location '{location}'"
    refused = _account_problem(location, product.domain, table.name, workspace, managed)
    if refused:
        yield Problem("error", where, f"{prefix} {refused}")
        return
    if not delta.exists(location):
        why = "does not exist" if not os.path.exists(location) else "is not a Delta table"
        yield Problem("error", where, f"{prefix} {why} (no _delta_log with commits)")
        return
    try:
        snapshot = load_snapshot(location, table=ref)
    except MeshsimError as exc:
        yield Problem("error", where, f"{prefix}: {exc.message}")
        return
    damaged = check_files(snapshot)
    if damaged:  # named by file name only, as a query names them
        yield Problem("error", where, damaged_files_error(ref, snapshot.version, damaged).message)
    actual = {c.name: c.type for c in snapshot.columns}
    listing = ", ".join(f"{name} {_spec_type(t) or t}" for name, t in actual.items())
    if ref in spec.inferred:
        yield Problem(
            "warning",
            where,
            f"table '{ref}' declares no columns: its columns come from the Delta schema of "
            f"'{location}' ({listing}), classified "
            f"'{table.columns[0].classification if table.columns else None}' and undescribed; "
            f"declare them to classify and describe them",
        )
        return
    # Delta refuses two columns that differ only by case (deltalake will not open such a
    # log), so a lower-case lookup finds at most one
    by_case = {name.lower(): name for name in actual}
    if not table.columns:
        yield Problem(
            "error",
            where,
            f"table '{ref}' registers '{location}', whose columns cannot be declared from its "
            f"schema ({listing}); declare them",
        )
    declared = {c.name for c in table.columns}
    undeclared = [name for name in actual if name not in declared]
    if table.columns and undeclared:
        yield Problem(
            "warning",
            where,
            f"table '{ref}': columns {', '.join(undeclared)} of '{location}' are not declared, "
            f"so they are not queryable; declare them to publish them (or declare no columns "
            f"to publish every column of the Delta schema)",
        )
    for position, column in enumerate(table.columns):
        column_where = _where(spec, product, index, "columns", position)
        if column.name not in actual:
            same = by_case.get(column.name.lower())
            yield Problem(
                "error",
                column_where,
                f"table '{ref}': column '{column.name}' is not in '{location}'"
                + (f"; it has '{same}' (names are matched exactly)" if same else "")
                + f" (its columns: {listing})",
            )
            continue
        found = _spec_type(actual[column.name])
        if found is None or to_arrow(found) != to_arrow(column.type):
            yield Problem(
                "error",
                column_where,
                f"table '{ref}': column '{column.name}' is declared {column.type} but is "
                f"{found or actual[column.name]} in '{location}'",
            )
