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

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from meshsim.errors import StorageError, WorkspaceError
from meshsim.storage.delta import HistoryEntry
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
    publications: Collection[int] = (),
) -> Snapshot:
    """The snapshot a read of ``ref`` gets: the published version ``pin``, or the published
    version a time travel names (``publications``: every version ever pinned). An unpinned
    table (``pin`` None, such as a system table) reads its latest."""
    if pin is not None:
        if version is None and timestamp is None:
            version = pin
        else:
            from meshsim.storage.log import resolve_version

            resolved = resolve_version(location, table=ref, version=version, timestamp=timestamp)
            published = sorted({p for p in publications if p <= pin} | {pin})
            version = only_published(ref, published, version, resolved, timestamp)
            timestamp = None
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


def only_published(
    ref: str,
    published: list[int],
    version: int | None,
    resolved: int,
    timestamp: datetime | None = None,
) -> int:
    """The version a time travel reads: a named ``version`` only if it was published (a
    commit consumers never saw, rolled back or not yet published, is refused); a timestamp
    reads the published version in force then (the newest published at or before the
    commit it resolves to)."""
    listed = _listing(published)
    if version is not None:
        if version in published:
            return version
        why = "is not published yet" if version > published[-1] else "was never published"
        raise StorageError(
            f"version {version} of {ref} {why}; time travel reaches its published versions "
            f"({listed})",
            table=ref,
            hint=f"pick one of {listed}; 'meshsim history {ref}' marks each version",
        )
    earlier = [p for p in published if p <= resolved]
    if not earlier:
        when = timestamp.isoformat() if timestamp else f"version {resolved}"
        raise StorageError(
            f"no version of {ref} was published yet at {when}; its first published version "
            f"is {published[0]}",
            table=ref,
            hint=f"pick a later time, or a version ({listed})",
        )
    return earlier[-1]


def _listing(versions: list[int]) -> str:
    shown = ", ".join(str(v) for v in versions[-20:])
    return shown if len(versions) <= 20 else f"..., {shown}"


@dataclass(frozen=True)
class TableVersion(HistoryEntry):
    """One commit of a table's Delta log, and whether consumers were ever shown it."""

    #: ``current`` (what queries read now), ``earlier`` (published before: time travel reads
    #: it), ``unpublished`` (newer than the current one) or ``never`` (a commit consumers
    #: never saw and time travel refuses: rolled back, or an intermediate one such as the
    #: first of a vacuum's two)
    published: str


def table_history(mesh: Mesh, ref: str, limit: int | None = None) -> list[TableVersion]:
    """A table's commits, newest first, each with its publication state."""
    from meshsim.storage import delta

    current = mesh.published_version(ref)
    earlier = set(mesh.publications(ref))

    def state(version: int) -> str:
        if current is None or version == current:
            return "current" if current is not None else ""
        if version > current:
            return "unpublished"
        return "earlier" if version in earlier else "never"

    return [
        TableVersion(**vars(e), published=state(e.version))
        for e in delta.history(mesh.locate(ref), table=ref.lower(), limit=limit)
    ]
