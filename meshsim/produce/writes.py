"""Writes, deletes and maintenance of a domain's tables, published in one step.

Every operation runs in a :class:`WriteBatch`, which holds the workspace's publishing lock
(:func:`meshsim.pins.publishing`) from its first write to its end. Each write commits a new
Delta version, invisible to consumers, who keep reading the published (pinned) version; when
the batch ends, every table it changed is published at once (one atomic replacement of
``workspace.json``), then each changed product is recorded in the catalog as a new version,
audited with the writer. A batch that fails publishes none of its writes: the tables it
wrote are restored to their published version (the same rows, pinned anew). A table with
newer, unpublished versions (a killed build or write) is first restored to its published
version, so a write never publishes half a build.

Nothing is written before every check passed: the writer is the table's owner, the input
fits the declared schema, an upsert has a primary key and unique keys, ``--where`` is valid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshsim.errors import (
    CatalogError,
    MeshsimError,
    QualityGateError,
    WriteError,
    unknown_name_message,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from meshsim.identity import Actor
    from meshsim.mesh import Mesh
    from meshsim.produce.inputs import TargetColumn
    from meshsim.spec.loader import TableSpec
    from meshsim.workspace import TableRecord

MODES = ("append", "overwrite", "upsert")
DEFAULT_RETAIN_HOURS = 168  # Delta's default deletedFileRetentionDuration: one week


@dataclass(frozen=True)
class WriteResult:
    """What one operation did to one table."""

    table: str
    operation: str  # append | overwrite | upsert | delete | optimize | vacuum
    version: int  # the table's version after it (published when its batch ends)
    previous: int  # the version published before it
    rows: int | None  # rows at ``version``
    detail: dict[str, Any] = field(default_factory=dict)


def writers(mesh: Mesh, table: TableSpec) -> list[str]:
    """Who may write ``table``: its product's owner and its domain's owner team."""
    product = mesh.spec.product(f"{table.domain}.{table.product}")
    domain = mesh.spec.domain(table.domain)
    assert domain is not None
    names = [product.product.owner if product else None, domain.domain.owner_team]
    return list(dict.fromkeys(n for n in names if n))


class WriteBatch:
    """Writes to one or more tables as ``by``, published together when the block ends::

    with mesh.writes(by="sales-ops") as batch:
        batch.write("sales.orders", "new_orders.csv", mode="append")
        batch.delete("sales.lineitem", "l_orderkey > 60000")
    """

    def __init__(self, mesh: Mesh, by: str | None = None) -> None:
        self.mesh = mesh
        self.by = by
        self.results: list[WriteResult] = []
        self._records: dict[str, TableRecord] = {}
        #: product -> who published its change (None: maintenance, the product's owner)
        self._principals: dict[str, str | None] = {}
        self._lock: Any = None

    # -- the batch ------------------------------------------------------------------------

    def __enter__(self) -> WriteBatch:
        from meshsim.pins import publishing

        self._lock = publishing(self.mesh.workspace)
        self._lock.__enter__()
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        try:
            if error is None:
                try:
                    self._check_quality()
                except QualityGateError:
                    self._roll_back()
                    raise
                self._publish()
            else:
                written = list(self._records)
                self._roll_back()
                if isinstance(error, WriteError) and written:
                    raise error.rolled_back(written) from None
        finally:
            self._lock.__exit__(None, None, None)

    def _publish(self) -> None:
        from meshsim.pins import move_pins

        if not self._records:
            return
        state = move_pins(self.mesh.workspace, self._records)
        versions = {r: t.version for r, t in state.tables.items()}
        rows = {r: t.rows for r, t in state.tables.items()}
        for product in dict.fromkeys(self._product_of(r) for r in self._records):
            done = [r for r in self.results if self._product_of(r.table) == product]
            reason = "; ".join(f"{r.operation} {r.table} -> version {r.version}" for r in done)
            principal = self._principals.get(product)
            try:
                self.mesh.catalog.publish(
                    product, versions, rows, principal=principal, reason=reason
                )
            except CatalogError as exc:  # the pins moved: consumers already read the write
                raise CatalogError(
                    f"the write is published (queries read it), but the catalog could not "
                    f"record the new version of '{product}': {exc.message}",
                    hint=f"{exc.hint or 'fix the catalog'}, then run 'meshsim publish {product}'",
                ) from exc

    def _check_quality(self) -> None:
        """The quality gate: the rules of every product whose rows this batch changed, on
        the versions it wrote; a blocking result publishes none of the batch."""
        from meshsim.quality.gate import mesh_reader, product_of, refuse, run_gate

        changed = {r.table for r in self.results if r.operation not in ("optimize", "vacuum")}
        refs = [ref for ref in self._records if ref in changed]
        if not refs:
            return
        spec = self.mesh.spec
        products = list({p.ref: p for p in (product_of(spec, r) for r in refs)}.values())
        candidates = {ref: record.version for ref, record in self._records.items()}
        run = run_gate(mesh_reader(self.mesh, candidates), products, "write", changed=refs)
        self.mesh.record_checks(run)
        if not run.blocking:
            return
        kept = ", ".join(
            f"{r} keeps the rows of its version {self._published(r)}" for r in self._records
        )
        try:
            refuse(
                run,
                f"nothing was published ({kept})",
                candidates={ref: self._records[ref].version for ref in refs},
                spec=spec,
            )
        except QualityGateError as exc:
            for ref in refs:
                self.mesh.catalog.record_write(
                    principal=self._principals.get(self._product_of(ref)),
                    table=ref,
                    decision="refused",
                    reason=f"write of {ref} refused at publication: {exc.message}",
                )
            raise

    def _published(self, ref: str) -> int | None:
        return self.mesh.published_version(ref)

    def _roll_back(self) -> None:
        """Restore each table this batch wrote to its published version, and publish the
        restored version (the same rows, so consumers see no change), so the table is left
        with no unpublished versions. Best effort: a table a restore fails on keeps versions
        nobody reads, and its next write restores it."""
        from meshsim.pins import move_pins
        from meshsim.storage import delta

        restored = {}
        for ref in self._records:
            published = self.mesh.workspace.read_state().tables.get(ref)
            if published is None:
                continue
            try:
                version = delta.restore(self.mesh.locate(ref), published.version, table=ref)
            except MeshsimError:
                continue
            restored[ref] = published.model_copy(update={"version": version})
        if restored:
            move_pins(self.mesh.workspace, restored)

    # -- operations (each attempt audited, allowed or refused) -------------------------------

    def write(
        self,
        ref: str,
        data: str | Path | pa.Table,
        *,
        mode: str = "append",
        dateformat: str | None = None,
        all_rows: bool = False,
    ) -> WriteResult:
        """Append, overwrite or upsert (by the declared primary key) rows from a file, a
        folder or an Arrow table, checked against the declared schema first. CSV and JSON
        dates are ISO (``2026-01-31``) unless ``dateformat`` (DuckDB's ``%d/%m/%Y``) says.
        An overwrite with no rows empties the table, so it needs ``all_rows``."""
        return self._audited(
            mode,
            ref,
            True,
            lambda: self._write(ref, data, mode=mode, dateformat=dateformat, all_rows=all_rows),
        )

    def delete(self, ref: str, where: str | None, *, all_rows: bool = False) -> WriteResult:
        """Delete the rows matching ``where`` (one condition over the table's columns). A
        delete of every row needs ``all_rows`` (then ``where`` may be None: every row)."""
        return self._audited(
            "delete", ref, True, lambda: self._delete(ref, where, all_rows=all_rows)
        )

    def optimize(self, ref: str, *, zorder: list[str] | None = None) -> WriteResult:
        """Compact small files (Z-order by ``zorder`` columns when given); rows unchanged."""
        return self._audited("optimize", ref, False, lambda: self._optimize(ref, zorder=zorder))

    def vacuum(
        self, ref: str, *, retain_hours: int = DEFAULT_RETAIN_HOURS, dry_run: bool = False
    ) -> WriteResult:
        """Delete data files no version within ``retain_hours`` needs (listed only with
        ``dry_run``); never a file of the published version."""
        return self._audited(
            "vacuum",
            ref,
            False,
            lambda: self._vacuum(ref, retain_hours=retain_hours, dry_run=dry_run),
        )

    def _audited(
        self, operation: str, ref: str, changes_rows: bool, run: Callable[[], WriteResult]
    ) -> WriteResult:
        """Run one operation and audit the attempt with its writer (the product's owner by
        default; maintenance changes no rows and names none unless given)."""
        principal = self.by
        table = self.mesh.spec.table(ref.lower()) if isinstance(ref, str) else None
        if principal is None and changes_rows and table is not None:
            principal = next(iter(writers(self.mesh, table)), None)
        name = table.ref if table is not None else str(ref)
        try:
            with self._lineage_run(operation, table, changes_rows) as lineage_run:
                result = run()
                lineage_run.versions[result.table] = result.version
        except MeshsimError as exc:
            try:
                reason = f"{operation} {name} refused: {exc.message}"
                self.mesh.catalog.record_write(
                    principal=principal, table=name, decision="refused", reason=reason
                )
            except MeshsimError:
                pass  # the refusal itself is what the writer must see
            raise
        self.mesh.catalog.record_write(
            principal=principal,
            table=result.table,
            decision="allowed",
            reason=f"{result.operation} {result.table} -> version {result.version} (published "
            f"when its batch ends)",
            rows=result.rows,
        )
        return result

    @contextmanager
    def _lineage_run(
        self, operation: str, table: TableSpec | None, changes_rows: bool
    ) -> Iterator[Any]:
        """A producer write's OpenLineage run (START, COMPLETE or FAIL); maintenance, which
        changes no rows, and an unknown table (refused before anything runs) are none."""
        if table is None or not changes_rows:
            yield _NoRun()
            return
        from meshsim.lineage.events import DatasetInfo

        emitter = self.mesh.lineage_events
        output = DatasetInfo.of(table)
        job = f"{operation}.{table.ref}"
        with emitter.run(job, outputs=[output], job_type="WRITE") as lineage_run:
            yield lineage_run

    # -- what each operation does -------------------------------------------------------------

    def _write(
        self,
        ref: str,
        data: str | Path | pa.Table,
        *,
        mode: str = "append",
        dateformat: str | None = None,
        all_rows: bool = False,
    ) -> WriteResult:
        """:meth:`write`'s work, which it audits."""
        import pyarrow as pa

        from meshsim.produce.inputs import conform, read_input
        from meshsim.storage import delta

        table = self._table(ref)
        if mode not in MODES:
            raise WriteError([unknown_name_message("write mode", mode, MODES)], table=table.ref)
        if mode == "upsert" and not table.table.primary_key:
            raise WriteError(
                [
                    f"table '{table.ref}' declares no primary key, so an upsert cannot tell which "
                    f"rows to update"
                ],
                table=table.ref,
                hint=f"declare 'primary_key: [COLUMN, ...]' for table '{table.name}' in "
                f"{self._product_file(table)}, or write with --mode append or overwrite",
            )
        actor = self._writer(table)
        location = self.mesh.locate(table.ref)
        columns = self._columns(table, location)
        if not isinstance(data, pa.Table):
            data = read_input(data, columns, table=table.ref, dateformat=dateformat)
        data = conform(data, columns, table=table.ref, declared_in=self._product_file(table))
        if mode == "overwrite" and not data.num_rows and not all_rows:
            raise WriteError(
                [f"the overwrite of '{table.ref}' has no rows: it would remove every row"],
                table=table.ref,
                hint="check the input; to empty the table, pass --all-rows; nothing was written",
            )
        if table.table.primary_key:
            _check_keys(data, table, mode)
        if mode == "append" and table.table.primary_key:
            self._check_new_keys(data, table, location)
        previous = self._prepare(table, location)
        if mode == "upsert":
            version = delta.upsert(location, data, list(table.table.primary_key), table=table.ref)
        else:
            version = delta.write(location, data, mode=mode, table=table.ref)  # type: ignore[arg-type]
        return self._done(table, actor, mode, previous, version, {"rows_in": data.num_rows})

    def _delete(self, ref: str, where: str | None, *, all_rows: bool = False) -> WriteResult:
        """Delete the rows matching ``where`` (one condition over the table's columns). A
        delete of every row needs ``all_rows`` (then ``where`` may be None: every row)."""
        from meshsim.produce.where import parse_where
        from meshsim.storage import delta

        table = self._table(ref)
        actor = self._writer(table)
        location = self.mesh.locate(table.ref)
        if where is None and not all_rows:
            raise WriteError(
                [f"a delete from '{table.ref}' needs a --where condition"],
                table=table.ref,
                hint="name the rows with --where, or pass --all-rows to delete every row",
            )
        predicate = (
            None
            if where is None
            else parse_where(where, self._columns(table, location), table=table.ref)
        )
        current = self._current(table.ref)
        before = self._rows(table.ref, location, current)
        if predicate is not None and before and not all_rows:
            matching = delta.count_matching(location, predicate, table=table.ref, version=current)
            if matching == before:
                raise WriteError(
                    [
                        f"the delete from '{table.ref}' would delete every row ({before}): "
                        f"--where '{where}' holds for all of them"
                    ],
                    table=table.ref,
                    hint="narrow --where, or pass --all-rows to delete every row; "
                    "nothing was written",
                )
        previous = self._prepare(table, location)
        version = delta.delete(location, predicate, table=table.ref)
        deleted = (before or 0) - (self._rows(table.ref, location, version) or 0)
        return self._done(table, actor, "delete", previous, version, {"rows_deleted": deleted})

    def _optimize(self, ref: str, *, zorder: list[str] | None = None) -> WriteResult:
        """Compact small files (Z-order by ``zorder`` columns when given); rows unchanged."""
        from meshsim.storage import delta

        table = self._table(ref)
        location = self.mesh.locate(table.ref)
        known = [c.name for c in self._columns(table, location)]
        unknown = [unknown_name_message("column", c, known) for c in zorder or [] if c not in known]
        if unknown:
            raise WriteError(unknown, table=table.ref, hint="z-order by columns of the table")
        previous = self._prepare(table, location)
        if zorder:
            metrics = delta.z_order(location, list(zorder), table=table.ref)
        else:
            metrics = delta.compact(location, table=table.ref)
        version = delta.latest_version(location, table=table.ref)
        detail: dict[str, Any] = {
            k: metrics[k] for k in ("numFilesAdded", "numFilesRemoved") if k in metrics
        }
        return self._done(table, None, "optimize", previous, version, detail)

    def _vacuum(
        self, ref: str, *, retain_hours: int = DEFAULT_RETAIN_HOURS, dry_run: bool = False
    ) -> WriteResult:
        """Delete data files no version within ``retain_hours`` needs (listed only with
        ``dry_run``). Never a file of the published version: a table with unpublished
        versions is refused, since deltalake keeps only the files of the latest one."""
        from meshsim.storage import delta

        table = self._table(ref)
        if isinstance(retain_hours, bool) or not isinstance(retain_hours, int) or retain_hours < 0:
            raise WriteError(
                [f"retain hours must be a whole number of hours, 0 or more (got {retain_hours!r})"],
                table=table.ref,
            )
        location = self.mesh.locate(table.ref)
        published = self._current(table.ref)
        latest = delta.latest_version(location, table=table.ref)
        if latest != published:
            raise WriteError(
                [
                    f"table '{table.ref}' has versions {published + 1}..{latest} that are not "
                    f"published (an interrupted build or write); vacuuming now could delete "
                    f"files of its published version {published}"
                ],
                table=table.ref,
                hint="run 'meshsim build' to finish the build (or write to the table, which "
                "discards them), then vacuum",
            )
        files = delta.vacuum(
            location,
            table=table.ref,
            retention_hours=retain_hours,
            dry_run=dry_run,
            enforce_retention=False,  # the retention is the caller's, checked above
        )
        version = delta.latest_version(location, table=table.ref)  # VACUUM START/END commits
        detail = {"files": files, "dry_run": dry_run, "retain_hours": retain_hours}
        return self._done(table, None, "vacuum", published, version, detail)

    # -- helpers ----------------------------------------------------------------------------

    def _table(self, ref: str) -> TableSpec:
        spec = self.mesh.spec
        table = spec.table(ref.lower()) if isinstance(ref, str) else None
        if table is None:
            raise WriteError(
                [unknown_name_message("table", str(ref), [t.ref for t in spec.tables()])],
                hint="run 'meshsim tables' to list them",
            )
        if self.mesh.published_version(table.ref) is None:
            raise WriteError(
                [f"table '{table.ref}' is in the spec but not built yet"],
                table=table.ref,
                hint="run 'meshsim build' first",
            )
        if _registered(self.mesh, table.ref):
            raise WriteError(
                [
                    f"table '{table.ref}' is registered in place at "
                    f"'{self.mesh.locate(table.ref)}': meshsim is not its writer, and writing or "
                    f"maintaining it could discard a commit its owning engine made"
                ],
                table=table.ref,
                hint="write (or optimize, vacuum) it with the engine that owns it, then run "
                "'meshsim build' to publish its latest version",
            )
        return table

    def _product_of(self, ref: str) -> str:
        table = self.mesh.spec.table(ref)
        assert table is not None
        return f"{table.domain}.{table.product}"

    def _product_file(self, table: TableSpec) -> str:
        product = self.mesh.spec.product(self._product_of(table.ref))
        return str(product.path) if product else f"product '{table.product}'"

    def _writer(self, table: TableSpec) -> Actor:
        """The owner writing ``table`` (``by``, or the product's owner), authenticated."""
        from meshsim.identity import authenticate

        allowed = writers(self.mesh, table)
        principal = self.by or (allowed[0] if allowed else None)
        if principal is None or principal not in allowed:
            raise WriteError(
                [
                    f"'{principal}' may not write table '{table.ref}': only its product's owner "
                    f"or its domain's owner team may ({', '.join(allowed) or 'none declared'})"
                ],
                table=table.ref,
                hint=f"write as one of them: --by {allowed[0]}" if allowed else None,
            )
        actor = authenticate(self.mesh.identity_spec, principal)
        self._principals[self._product_of(table.ref)] = actor.principal
        return actor

    def _columns(self, table: TableSpec, location: str) -> list[TargetColumn]:
        from meshsim.produce.inputs import target_columns
        from meshsim.storage import delta

        stored = delta.logical_schema(delta.open_table(location, table=table.ref))
        return target_columns(table, stored)

    def _current(self, ref: str) -> int:
        """The version this batch builds on: its own last write, else the published one."""
        if ref in self._records:
            return self._records[ref].version
        published = self.mesh.published_version(ref)
        assert published is not None  # checked by _table
        return published

    def _prepare(self, table: TableSpec, location: str) -> int:
        """Restore a table with unpublished versions to the version this batch builds on,
        and check the product can be published; the version it builds on."""
        from meshsim.catalog.publish import gate_problems
        from meshsim.storage import delta

        product = self.mesh.spec.product(self._product_of(table.ref))
        assert product is not None
        problems = gate_problems(self.mesh.spec, product)
        if problems:
            raise WriteError(
                [f"product '{product.ref}' cannot be published: {p}" for p in problems],
                table=table.ref,
                hint="fix the product file, then run 'meshsim validate'; nothing was written",
            )
        self.mesh.catalog.refuse_breaking([product.ref])  # a breaking edit of the spec
        base = self._current(table.ref)
        if delta.latest_version(location, table=table.ref) != base:
            delta.restore(location, base, table=table.ref)
        return base

    def _check_new_keys(self, data: pa.Table, table: TableSpec, location: str) -> None:
        """An append may not store a primary key the table already holds."""
        from meshsim.storage import delta

        keys = list(table.table.primary_key)
        if not data.num_rows:
            return
        version = self._current(table.ref)
        stored = delta.read_table(location, table=table.ref, version=version, columns=keys)
        clashes = data.select(keys).join(
            stored.group_by(keys).aggregate([]), keys, join_type="left semi"
        )
        if clashes.num_rows:
            raise WriteError(
                [
                    f"table '{table.ref}': {clashes.num_rows} row(s) have a primary key "
                    f"({', '.join(keys)}) already in the table: {_some_keys(clashes, keys)}"
                ],
                table=table.ref,
                hint="append only new keys, or write with --mode upsert to update those rows; "
                "nothing was written",
            )

    def _rows(self, ref: str, location: str, version: int) -> int | None:
        from meshsim.storage.snapshot import load_snapshot

        return load_snapshot(location, table=ref, version=version).num_records

    def _done(
        self,
        table: TableSpec,
        actor: Actor | None,
        operation: str,
        previous: int,
        version: int,
        detail: dict[str, Any],
    ) -> WriteResult:
        location = self.mesh.locate(table.ref)
        rows = self._rows(table.ref, location, version)
        if version != self._current(table.ref):
            base = self._records.get(table.ref)
            if base is None:
                base = self.mesh.workspace.read_state().tables[table.ref]
            self._records[table.ref] = base.model_copy(update={"version": version, "rows": rows})
        result = WriteResult(table.ref, operation, version, previous, rows, detail)
        self.results.append(result)
        return result


@dataclass
class _NoRun:
    versions: dict[str, int] = field(default_factory=dict)


def _check_keys(data: pa.Table, table: TableSpec, mode: str) -> None:
    """A write's input must hold each declared primary key once and never NULL."""
    import pyarrow.compute as pc

    keys = list(table.table.primary_key)
    problems = []
    for key in keys:
        nulls = data.column(key).null_count
        if nulls:
            problems.append(f"primary key column '{key}' has {nulls} NULL value(s)")
    if data.num_rows:
        counts = data.group_by(keys).aggregate([([], "count_all")])
        if counts.num_rows != data.num_rows:
            repeated = counts.filter(pc.greater(counts["count_all"], 1))
            problems.append(
                f"{data.num_rows - counts.num_rows} row(s) repeat a primary key "
                f"({', '.join(keys)}) already in the input: {_some_keys(repeated, keys)}; "
                f"{'an' if mode[0] in 'aeiou' else 'a'} {mode} needs each key once"
            )
    if problems:
        raise WriteError(
            [f"table '{table.ref}': {p}" for p in problems],
            table=table.ref,
            hint="remove the repeated or NULL keys from the input; nothing was written",
        )


def _registered(mesh: Mesh, ref: str) -> bool:
    """Whether ``ref`` is registered in place: another engine writes it, meshsim only reads."""
    record = mesh.workspace.read_state().tables.get(ref)
    return record is not None and record.external


def _some_keys(rows: pa.Table, keys: list[str], shown: int = 5) -> str:
    """The first ``shown`` keys of ``rows``, as ``k=v`` (the count of the rest after)."""
    listed = [
        ", ".join(f"{k}={row[k]!r}" for k in keys) for row in rows.slice(0, shown).to_pylist()
    ]
    more = f" and {rows.num_rows - shown} more" if rows.num_rows > shown else ""
    return "; ".join(f"({key})" if len(keys) > 1 else key for key in listed) + more


def run(mesh: Mesh, by: str | None, operation: str, ref: str, **arguments: Any) -> WriteResult:
    """One operation in a batch of its own (what the CLI and the facade's methods call)."""
    with WriteBatch(mesh, by) as batch:
        result: WriteResult = getattr(batch, operation)(ref, **arguments)
    return result


def maintain(mesh: Mesh, operation: str, ref: str | None, **arguments: Any) -> list[WriteResult]:
    """``optimize`` or ``vacuum`` one table, or every built table of the mesh."""
    built = [
        t.ref
        for t in mesh.spec.tables()
        if mesh.published_version(t.ref) is not None and not _registered(mesh, t.ref)
    ]
    refs = [ref] if ref else built
    with WriteBatch(mesh) as batch:
        return [getattr(batch, operation)(r, **arguments) for r in refs]
