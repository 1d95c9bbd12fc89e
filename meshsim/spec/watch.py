"""Whether the spec files a loaded spec read have changed since it read them.

A query over one table reads mesh.yaml and its own domain's files (:mod:`meshsim.spec.lazy`),
so deciding whether the spec it holds is still current needs those files only: a
:class:`SpecFiles` records the status (modification and change times, size, inode) of every
file and folder a load consults, *before* reading it (a write racing the read shows up as a
change), and :meth:`SpecFiles.changed` stats exactly those again. A domain nobody looked up
is not watched: when it is first needed it is read as it is then. A folder's status changes
when an entry is added, removed or renamed in it, so a new product file, a new domain folder
or a domain.yaml replaced by an editor are changes too.

Costs follow what was read: a query over one table stats mesh.yaml and its domain's files,
whatever the size of the mesh; after an eager load (``validate``, ``build``) or a listing,
every file. A :class:`meshsim.mesh.Mesh` keeps the query's spec apart from the listings', so
a listing does not make every later query stat every file; the two share the parse of a
domain whose files :meth:`SpecFiles.recorded` the same status for.

The identity check's scan of every file for owner bindings
(:meth:`meshsim.spec.lazy.LazyDomains.mentioning`) is recorded apart, as *scanned*: its answer
depends on every file, so it is checked only when asked (``changed(scans=True)``: when a
session is opened), not before every query.

With a watch of the mesh folder (``SpecFiles(watch=...)``, as :class:`meshsim.mesh.Mesh`
does: :mod:`meshsim.spec.fswatch`), a check first asks the kernel whether anything changed:
when nothing did since a check that compared every path and found nothing, the answer is
"unchanged" without a stat, whatever the size of the mesh. Each recorded path is armed once:
watched, *then* its status compared with the recorded one (a change between the record and the
watch shows there), so a domain looked up after the first check costs a stat of its own files,
once. Any event sends the check back to the stats of every path (of the records asked about:
an event drained by a query's check is not lost to the next identity check), which stay the
ground truth; where the watch cannot be trusted, every check stats, as without one.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from meshsim.errors import SpecError

if TYPE_CHECKING:
    from meshsim.spec.fswatch import FolderWatch
    from meshsim.spec.scanindex import ScanIndex

Status = tuple[int, int, int, int] | None


class DomainFiles(NamedTuple):
    """What a scan found of one domain folder: the status of its ``products`` folder, the
    product file names in it, and the paths of domain.yaml and each product file with the
    status of each."""

    listed: Status
    names: list[str]
    paths: list[str]
    statuses: list[Status]


def status(path: str | Path) -> Status:
    """``path``'s (mtime, ctime, size, inode), or None when nothing is there."""
    # one call, not _of(_stat(...)): a scan of the whole mesh takes thousands
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:  # a link to itself (ELOOP), a folder it may not search
        raise SpecError([f"{path}: cannot read: {exc.strerror}"]) from None
    return (info.st_mtime_ns, info.st_ctime_ns, info.st_size, info.st_ino)


def _stat(how: Any, path: str | Path) -> os.stat_result | None:
    try:
        info: os.stat_result = how(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:  # a link to itself (ELOOP), a folder it may not search
        raise SpecError([f"{path}: cannot read: {exc.strerror}"]) from None
    return info


def _of(info: os.stat_result | None) -> Status:
    if info is None:
        return None
    return (info.st_mtime_ns, info.st_ctime_ns, info.st_size, info.st_ino)


class SpecFiles:
    """The spec files and folders a load consulted, each with its status when first read;
    with a ``watch`` (:class:`meshsim.spec.fswatch.FolderWatch` on the mesh folder), a check
    with no change since the last one that found none stats nothing."""

    def __init__(self, *, watch: FolderWatch | None = None) -> None:
        self._seen: dict[Path, Status] = {}
        self._scanned: dict[str, Status] = {}  # by path text: a scan records thousands
        #: the files :meth:`watch_domain` recorded of each domain folder
        self._domains: dict[Path, tuple[Path, ...]] = {}
        self._lock = threading.Lock()
        self._fswatch = watch  # None once its events cannot be trusted for these files
        #: per record (False: read, True: scanned), the paths not yet armed (watched, then
        #: compared)
        self._pending: dict[bool, list[Path | str]] = {False: [], True: []}
        self._epoch: int | None = None  # the watch's epoch the paths were armed in
        #: per record (False: read, True: scanned): the watch's (epoch, generation) when a
        #: comparison of every path found none changed
        self._clean: dict[bool, tuple[int, int] | None] = {False: None, True: None}
        self._checking = threading.Lock()  # one check at a time arms and compares

    def watch(self, path: Path, *, scan: bool = False) -> None:
        """Record ``path`` as read now (call before reading it; the first record stays);
        ``scan``: read by a scan of the whole mesh, not for the spec's content."""
        seen: dict[Any, Status] = self._scanned if scan else self._seen
        key = str(path) if scan else path
        if key not in seen:
            self._record(key, scan=scan, found=status(path))

    def _record(self, key: Path | str, *, scan: bool, found: Status) -> Status:
        """Keep ``found`` as ``key``'s status unless one is kept already; the one kept."""
        seen: dict[Any, Status] = self._scanned if scan else self._seen
        with self._lock:
            if key in seen:
                return seen[key]
            seen[key] = found
            if self._fswatch is not None:
                self._pending[scan].append(key)
        return found

    def watch_domain(self, folder: Path, *, scan: bool = False) -> None:
        """Record the files :func:`meshsim.spec.loader.load_domain` reads of ``folder``."""
        if scan:
            self.scan_domain(folder)
            return
        if folder in self._domains:
            return
        paths = [folder]
        self.watch(folder)
        if self._seen[folder] is not None:  # else no such folder: its creation is the change
            paths += [folder / "domain.yaml", folder / "products"]
            for path in paths[1:]:
                self.watch(path)  # the folder before its listing: an added file shows
            files = [folder / "products" / n for n in _product_files(str(folder / "products"))]
            for path in files:
                self.watch(path)
            paths += files
        with self._lock:
            self._domains.setdefault(folder, tuple(paths))

    def recorded(self, folder: Path) -> tuple[tuple[Path, Status], ...]:
        """The status :meth:`watch_domain` recorded of each file of ``folder`` (none when it
        did not record it): equal records mean the same files, unchanged."""
        with self._lock:
            return tuple((path, self._seen[path]) for path in self._domains.get(folder, ()))

    def domain_stamp(self, folder: Path) -> str | None:
        """A digest of what :meth:`recorded` holds of ``folder`` (None when nothing): the
        same in every process that read the same unchanged files of the domain."""
        recorded = self.recorded(folder)
        return _digest([(str(path), status) for path, status in recorded]) if recorded else None

    def scan_domain(self, folder: Path | str, index: ScanIndex | None = None) -> DomainFiles:
        """Record, for a scan, what :meth:`watch_domain` records of ``folder``; return its
        spec files in the order a load reads them (domain.yaml, then the products by name),
        each with its status. Path text, not :class:`Path`: a scan records every file. With
        an ``index``, a ``products`` folder whose status it knows is not listed again."""
        base = str(folder)
        domain_file, products = base + os.sep + "domain.yaml", base + os.sep + "products"
        # not the domain folder's own status: a change that matters to a scan changes
        # domain.yaml's or the products folder's (a folder removed: both are gone)
        listed = self._scan_status(products)
        names = index.listing(os.path.basename(base), listed) if index is not None else None
        if listed is None:
            names = []  # no products folder (as recorded: its creation is a change)
        elif names is None:  # listed after its status was taken: a change between shows
            names = _product_files(products)
        prefix = products + os.sep
        paths = [domain_file, *[prefix + name for name in names]]
        scanned = self._scanned
        if scanned.keys().isdisjoint(paths):  # the first scan: none recorded yet
            statuses = [status(path) for path in paths]
            with self._lock:
                if scanned.keys().isdisjoint(paths):
                    scanned.update(zip(paths, statuses, strict=True))
                    if self._fswatch is not None:
                        self._pending[True].extend(paths)
                    return DomainFiles(listed, names, paths, statuses)
        fresh = [(path, status(path)) for path in paths if path not in scanned]
        with self._lock:  # one lock for the domain's files: a scan records thousands
            for path, found in fresh:
                if path not in scanned:
                    scanned[path] = found
                    if self._fswatch is not None:
                        self._pending[True].append(path)
            return DomainFiles(listed, names, paths, [scanned[path] for path in paths])

    def _scan_status(self, path: str) -> Status:
        """The status a scan recorded of ``path``, recorded now if it was not."""
        found = self._scanned.get(path, ...)
        return self._record(path, scan=True, found=status(path)) if found is ... else found

    def scanned(self, path: Path) -> Status:
        """The status ``path`` had when a scan recorded it (``None``: absent, or not
        recorded)."""
        return self._scanned.get(str(path))

    def changed(self, *, scans: bool = False) -> bool:
        """Whether any file or folder read for the spec's content (and with ``scans``, by a
        scan of the whole mesh) differs from when it was read."""
        kinds = (False, True) if scans else (False,)
        if self._fswatch is not None:
            with self._checking:
                found = self._watched_change(self._fswatch, kinds)
            if found is not None:
                return found
        return any(status(path) != recorded for path, recorded in self._records(kinds))

    def _records(self, kinds: tuple[bool, ...]) -> list[tuple[Path | str, Status]]:
        with self._lock:
            seen: list[tuple[Path | str, Status]] = list(self._seen.items())
            if True in kinds:
                seen += self._scanned.items()
        return seen

    def _watched_change(self, watch: FolderWatch, kinds: tuple[bool, ...]) -> bool | None:
        """The answer with the watch's help: when no event came since a comparison of every
        path found none changed, only the paths recorded since are compared (once armed);
        None when the watch cannot tell (the caller stats every path)."""
        from meshsim.spec.fswatch import WatchUnavailable

        try:
            if self._epoch is None:
                self._epoch = watch.start()
            for _ in range(3):
                if self._epoch is None:  # not Linux, not a local file system, no inotify
                    raise WatchUnavailable("no watch")
                with self._lock:
                    arming = [(kind, key) for kind in kinds for key in self._pending[kind]]
                    self._pending.update({kind: [] for kind in kinds})
                self._arm(watch, arming)
                state = watch.drain()
                if state is None:
                    raise WatchUnavailable("the watch is closed")
                if state[0] == self._epoch:
                    break
                # watches were lost since these paths were armed: arm every one again
                self._epoch = state[0]
                with self._lock:
                    self._pending = {False: list(self._seen), True: list(self._scanned)}
            else:
                return None  # watches lost on every try: stat this time, arm the next
        except WatchUnavailable:  # a watch refused (max_user_watches), a path gone
            self._stop_watching()
            return None
        if all(self._clean[kind] == state for kind in kinds):
            with self._lock:
                compared = [(key, self._kept(scan, key)) for scan, key in arming]
        else:
            compared = self._records(kinds)
        found = self._compare(watch, compared)
        if found is None:  # a link or a mount among the paths: the watch cannot see them
            self._stop_watching()
        elif not found:
            for kind in kinds:
                self._clean[kind] = state
        return found

    def _kept(self, scan: bool, key: Path | str) -> Status:
        return self._scanned[str(key)] if scan else self._seen[Path(key)]

    def _arm(self, watch: FolderWatch, keys: list[tuple[bool, Path | str]]) -> None:
        """Watch each recorded path that was there (a file for any change, a folder for its
        entries too) and its folder for its name; WatchUnavailable for a path outside the
        mesh folder."""
        from meshsim.spec.fswatch import WatchUnavailable

        root = watch.root
        inside = root.rstrip(os.sep) + os.sep
        names: dict[str, list[str]] = {}
        for scan, key in keys:
            path = str(key)
            if path != root and not path.startswith(inside):
                raise WatchUnavailable(f"{path} is outside {root}")
            if self._kept(scan, key) is not None:
                watch.watch(path)
            if path != root:
                parent, name = os.path.split(path)
                names.setdefault(parent, []).append(name)
        for parent, wanted in names.items():
            watch.watch(parent, wanted)

    def _compare(
        self, watch: FolderWatch, compared: list[tuple[Path | str, Status]]
    ) -> bool | None:
        """Whether a path's status differs from the recorded one (by ``lstat``); None when
        a path is one whose changes the watch may not see: a link (as a stat follows it, the
        comparison is the stat's), on another device (a mount), or not watched."""
        for path, recorded in compared:
            info = _stat(os.lstat, path)
            if info is not None and stat.S_ISLNK(info.st_mode):
                return None
            if _of(info) != recorded:
                return True
            if info is not None and (info.st_dev != watch.device or not watch.watching(str(path))):
                return None
        return False

    def _stop_watching(self) -> None:
        """Stat on every check from now on."""
        with self._lock:
            self._fswatch = None
            self._pending = {False: [], True: []}

    @property
    def watched(self) -> bool:
        """Whether a watch answers the checks (armed by the first), else each stats every
        path."""
        return self._fswatch is not None and self._fswatch.active

    def stamp(self) -> str:
        """A digest of the files read for the spec's content and their recorded status: the
        same in every process that read the same unchanged files."""
        with self._lock:
            seen = sorted((str(path), recorded) for path, recorded in self._seen.items())
        return _digest(seen)

    def __len__(self) -> int:
        return len(self._seen)

    def __repr__(self) -> str:
        return f"SpecFiles({len(self._seen)} read, {len(self._scanned)} scanned)"


def _digest(records: list[tuple[str, Status]]) -> str:
    """A stamp of (path, status) records: the same wherever the same files are unchanged."""
    import hashlib

    return hashlib.sha256(repr(records).encode()).hexdigest()


def _product_files(folder: str) -> list[str]:
    """The names of the product files in a domain's ``products`` folder, sorted."""
    try:
        names = sorted(e.name for e in os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise SpecError([f"{folder}: cannot list: {exc.strerror}"]) from None
    return [name for name in names if name.endswith(".yaml")]
