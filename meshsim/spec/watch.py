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
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from meshsim.errors import SpecError

Status = tuple[int, int, int, int] | None


def status(path: str | Path) -> Status:
    """``path``'s (mtime, ctime, size, inode), or None when nothing is there."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:  # a link to itself (ELOOP), a folder it may not search
        raise SpecError([f"{path}: cannot read: {exc.strerror}"]) from None
    return (info.st_mtime_ns, info.st_ctime_ns, info.st_size, info.st_ino)


class SpecFiles:
    """The spec files and folders a load consulted, each with its status when first read."""

    def __init__(self) -> None:
        self._seen: dict[Path, Status] = {}
        self._scanned: dict[str, Status] = {}  # by path text: a scan records thousands
        #: the files :meth:`watch_domain` recorded of each domain folder
        self._domains: dict[Path, tuple[Path, ...]] = {}
        self._lock = threading.Lock()

    def watch(self, path: Path, *, scan: bool = False) -> None:
        """Record ``path`` as read now (call before reading it; the first record stays);
        ``scan``: read by a scan of the whole mesh, not for the spec's content."""
        seen: dict[Any, Status] = self._scanned if scan else self._seen
        key = str(path) if scan else path
        if key in seen:
            return
        found = status(path)
        with self._lock:
            seen.setdefault(key, found)

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

    def scan_domain(self, folder: Path) -> list[tuple[str, Status]]:
        """Record, for a scan, what :meth:`watch_domain` records of ``folder``; return its
        spec files in the order a load reads them (domain.yaml, then the products by name),
        each with its status. Path text, not :class:`Path`: a scan records every file."""
        base = str(folder)
        domain_file, products = os.path.join(base, "domain.yaml"), os.path.join(base, "products")
        self.watch(folder, scan=True)
        if self._scanned[base] is None:
            return []
        self.watch(Path(products), scan=True)
        files = [domain_file, *(os.path.join(products, n) for n in _product_files(products))]
        found = []
        for path in files:
            recorded = self._scanned.get(path, ...)
            if recorded is ...:
                recorded = status(path)
                with self._lock:
                    recorded = self._scanned.setdefault(path, recorded)
            found.append((path, recorded))
        return found

    def scanned(self, path: Path) -> Status:
        """The status ``path`` had when a scan recorded it (``None``: absent, or not
        recorded)."""
        return self._scanned.get(str(path))

    def changed(self, *, scans: bool = False) -> bool:
        """Whether any file or folder read for the spec's content (and with ``scans``, by a
        scan of the whole mesh) differs from when it was read."""
        with self._lock:
            seen: list[tuple[str | Path, Status]] = list(self._seen.items())
            if scans:
                seen += self._scanned.items()
        return any(status(path) != recorded for path, recorded in seen)

    def stamp(self) -> str:
        """A digest of the files read for the spec's content and their recorded status: the
        same in every process that read the same unchanged files."""
        import hashlib

        with self._lock:
            seen = sorted((str(path), recorded) for path, recorded in self._seen.items())
        return hashlib.sha256(repr(seen).encode()).hexdigest()

    def __len__(self) -> int:
        return len(self._seen)

    def __repr__(self) -> str:
        return f"SpecFiles({len(self._seen)} read, {len(self._scanned)} scanned)"


def _product_files(folder: str) -> list[str]:
    """The names of the product files in a domain's ``products`` folder, sorted."""
    try:
        names = sorted(e.name for e in os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise SpecError([f"{folder}: cannot list: {exc.strerror}"]) from None
    return [name for name in names if name.endswith(".yaml")]
