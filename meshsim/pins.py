"""Published versions: which Delta version of each table consumers read.

A table's Delta log may hold versions nobody has published yet (a build killed midway, a
write that failed before it finished). The one answer to "which version is published" is
the table's :class:`~meshsim.workspace.TableRecord` in ``workspace.json``: queries, listings,
time travel and maintenance read it, and the catalog records each publication of it
(``product_versions``), never a second opinion. A build or a multi-table write moves its
pins in one atomic replacement of ``workspace.json``, under :func:`publishing`, so consumers
see all of it or none of it (``docs/consistency.md``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from meshsim.errors import StorageError, WorkspaceError
from meshsim.workspace import TableRecord, Workspace, WorkspaceState

if TYPE_CHECKING:
    from meshsim.mesh import Mesh
    from meshsim.storage.snapshot import Snapshot, SnapshotCache

PUBLISH_LOCK = "publish.lock"


@contextmanager
def publishing(workspace: Workspace) -> Iterator[None]:
    """Hold the workspace's publishing lock: one build or write moves pins at a time, so two
    writers never publish over each other (a lost update)."""
    from meshsim.locks import exclusive

    lock = exclusive(workspace.governance / PUBLISH_LOCK)
    try:
        lock.__enter__()
    except OSError as exc:
        raise WorkspaceError(
            f"cannot take the publishing lock '{workspace.governance / PUBLISH_LOCK}': "
            f"{(exc.strerror or str(exc)).lower()}; nothing was written",
            hint=f"the user running meshsim must be able to write '{workspace.governance}'",
        ) from None
    try:
        yield
    finally:
        lock.__exit__(None, None, None)


def move_pins(workspace: Workspace, records: dict[str, TableRecord]) -> WorkspaceState:
    """Publish ``records`` (table ref -> its new record) in one atomic step: the state is read
    again under the caller's :func:`publishing` lock, so pins moved meanwhile are kept."""
    state = workspace.read_state()
    tables = dict(state.tables)
    tables.update(records)
    # a killed build's pending version of a table is superseded by what is published now
    pending = {r: t for r, t in state.pending.items() if r not in records}
    state = state.model_copy(update={"tables": tables, "pending": pending})
    workspace.write_state(state)
    return state


def published_snapshot(
    snapshots: SnapshotCache,
    location: str,
    ref: str,
    pin: int | None,
    version: int | None = None,
    timestamp: datetime | None = None,
) -> Snapshot:
    """The snapshot a read of ``ref`` gets: the published version ``pin``, or the version a
    time travel names, capped at ``pin``. An unpinned table (``pin`` None) reads its latest."""
    if pin is not None:
        if version is None and timestamp is None:
            version = pin
        else:
            from meshsim.storage.log import resolve_version

            resolved = resolve_version(location, table=ref, version=version, timestamp=timestamp)
            version, timestamp = cap_to_published(location, ref, pin, version, resolved), None
    try:
        return snapshots.get(location, table=ref, version=version, timestamp=timestamp)
    except StorageError:
        if pin is not None and version is not None and version < pin:
            _refuse_vacuumed(location, ref, version, pin)
        raise


def _refuse_vacuumed(location: str, ref: str, version: int, pin: int) -> None:
    """An older version whose files a vacuum deleted is out of the retention, not damage."""
    from meshsim.storage import delta

    vacuums = [
        e.version
        for e in delta.history(location, table=ref)
        if e.operation == "VACUUM END" and e.version > version
    ]
    if vacuums:
        raise StorageError(
            f"table '{ref}' version {version} can no longer be read: the vacuum at version "
            f"{min(vacuums)} deleted its data files (time travel reaches the versions within "
            f"the retention it kept)",
            table=ref,
            hint=f"read a later version; the published one is {pin}",
        ) from None


def cap_to_published(
    location: str, ref: str, published: int, version: int | None, resolved: int
) -> int:
    """The version a time-travel reads: ``resolved`` (from a version or a timestamp), but
    never past the published one. A named ``version`` beyond it is refused; a timestamp
    after the last publication reads the published version."""
    if resolved <= published:
        return resolved
    if version is None:
        return published
    from meshsim.storage.log import available_versions

    first, _ = available_versions(location, table=ref)
    raise StorageError(
        f"table '{ref}' has no published version {version}; published versions are "
        f"{first}..{published} (later versions were written but never published)",
        table=ref,
        hint=f"pick a version in {first}..{published}, or run 'meshsim build' to finish an "
        f"interrupted build",
    )


@dataclass(frozen=True)
class TableVersion:
    """One commit of a table's Delta log, and whether consumers were ever shown it."""

    version: int
    timestamp: datetime
    operation: str
    parameters: dict[str, Any]
    metrics: dict[str, Any]
    #: ``current`` (what queries read now), ``earlier`` (published before), ``unpublished``
    #: (newer than the current one: an interrupted build or write) or ``never`` (an
    #: intermediate commit, such as the first of a vacuum's two)
    published: str


def table_history(mesh: Mesh, ref: str, limit: int | None = None) -> list[TableVersion]:
    """A table's commits, newest first, each with its publication state."""
    from meshsim.storage import delta

    current = mesh.published_version(ref)
    earlier = mesh.catalog.published_table_versions(ref.lower())

    def state(version: int) -> str:
        if current is None or version == current:
            return "current" if current is not None else ""
        if version > current:
            return "unpublished"
        return "earlier" if version in earlier else "never"

    return [
        TableVersion(e.version, e.timestamp, e.operation, e.parameters, e.metrics, state(e.version))
        for e in delta.history(mesh.locate(ref), table=ref.lower(), limit=limit)
    ]
