"""Which spec files mention a key, remembered between processes by each file's status.

The identity check needs every domain that may bind owners to OS users
(:meth:`meshsim.spec.lazy.LazyDomains.mentioning`), which read the bytes of every spec file once
per process: 335 ms at 5,000 products, in every one-shot command that authenticates. A
:class:`ScanIndex` in the workspace keeps, per file, the status it had when it was read
(modification and change times, size, inode: :func:`meshsim.spec.watch.status`) and whether
its bytes mentioned the key; a later process reads only the files whose status differs, and
stats the others (which the scan does anyway, to notice a change later). It also keeps each
``products`` folder's product file names with the folder's status: a folder's status changes
when an entry is added, removed or renamed in it, so a later process lists only the folders
whose status differs (listing a thousand folders cost more than statting their files).

A file (or folder) changed within :data:`SETTLE_NS` of being read is not remembered:
file-system times are coarse, so a second write in the same tick with the same size would keep
its status, and the index would answer for the bytes of the first (or a folder's listing).
The index is a cache: unreadable, not a regular file (a link, a FIFO), too large, of another
mesh folder or of another key, it is ignored and written again, through a new temporary file
(never a name planted in the workspace); where the workspace cannot be written (a read-only
workspace), the scan reads every file, as before.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from meshsim.files import replace_file
from meshsim.spec.watch import Status

#: how long after its last change a file's status is trusted to stand for its bytes
SETTLE_NS = 2_000_000_000
_VERSION = 2

#: an index larger than this is not one meshsim wrote (about 100 bytes a spec file)
MAX_INDEX_BYTES = 64 * 1024 * 1024

#: a file's status and whether its bytes mentioned the key
Mark = tuple[int, int, int, int, bool]
#: a folder's status and the names of the product files it held
Listing = tuple[int, int, int, int, list[str]]


class _IndexFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)

    version: int
    root: str
    key: str
    files: dict[str, Mark]
    listings: dict[str, Listing]


class ScanIndex:
    """The marks of one mesh folder's spec files for one key, loaded from ``path``."""

    def __init__(self, path: Path, root: Path, key: str) -> None:
        self.path = path
        self.root = str(root)
        self._inside = self.root + os.sep
        self.key = key
        self._marks, self._listings = self._read()
        self._asked: set[str] = set()
        self._listed: set[str] = set()
        self._changed = False

    def _read(self) -> tuple[dict[str, Mark], dict[str, Listing]]:
        try:
            found = _IndexFile.model_validate_json(_read_index(self.path))
        except (OSError, ValidationError, ValueError):
            return {}, {}
        if (found.version, found.root, found.key) != (_VERSION, self.root, self.key):
            return {}, {}
        return found.files, found.listings

    def known(self, files: list[tuple[str, Status]]) -> list[bool | None]:
        """Whether each ``(file, status)`` mentioned the key when it had that status
        (``None``: not known); one call for a domain's files."""
        inside, cut, marks, asked = self._inside, len(self._inside), self._marks, self._asked
        names = [file[cut:] if file.startswith(inside) else file for file, _ in files]
        asked.update(names)
        found: list[bool | None] = []
        for name, (_, status) in zip(names, files, strict=True):
            mark = marks.get(name)
            if mark is not None and status is not None and mark[:4] == status:
                found.append(mark[4])
            else:
                found.append(None)
        return found

    def remember(self, file: str, status: Status, mentions: bool) -> None:
        """Note what ``file``'s bytes, read when it had ``status``, said."""
        if status is None or not _settled(status) or not _storable(file):
            return
        mark = (*status, mentions)
        name = self._name(file)
        if self._marks.get(name) != mark:
            self._marks[name] = mark
            self._changed = True

    def listing(self, folder: str, status: Status) -> list[str] | None:
        """The product file names ``folder`` held when it had ``status`` (``None``: not
        known)."""
        name = self._name(folder)
        self._listed.add(name)
        found = self._listings.get(name)
        if found is None or status is None or tuple(found[:4]) != status:
            return None
        return found[4]

    def remember_listing(self, folder: str, status: Status, names: list[str]) -> None:
        """Note the product file names ``folder`` held, listed after it had ``status``."""
        if status is None or not _settled(status) or not all(map(_storable, [folder, *names])):
            return
        name = self._name(folder)
        listing = (*status, names)
        if self._listings.get(name) != listing:
            self._listings[name] = listing
            self._changed = True

    def _name(self, file: str) -> str:
        return file[len(self._inside) :] if file.startswith(self._inside) else file

    def save(self) -> None:
        """Write the marks of the files asked about (atomically) if any changed; a
        workspace that cannot be written keeps none."""
        gone = [name for name in self._marks if name not in self._asked]
        for name in gone:  # a file removed, or one a scan no longer reaches
            del self._marks[name]
        unlisted = [name for name in self._listings if name not in self._listed]
        for name in unlisted:
            del self._listings[name]
        if not (self._changed or gone or unlisted):
            return
        data = _IndexFile(
            version=_VERSION,
            root=self.root,
            key=self.key,
            files=self._marks,
            listings=self._listings,
        )
        try:
            replace_file(self.path, data.model_dump_json().encode())
        except OSError:  # a read-only workspace
            return
        self._changed = False


def _storable(name: str) -> bool:
    """Whether a path name survives the index's JSON (a name that is not UTF-8 does not)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _settled(status: tuple[int, int, int, int]) -> bool:
    """Whether a path with ``status`` last changed long enough ago for the status to stand for
    its content (a second change in the same clock tick could keep the same status)."""
    return time.time_ns() - max(status[0], status[1]) >= SETTLE_NS


def _read_index(path: Path) -> bytes:
    """The bytes of the index, opened as the audit journal is: not through a link, never
    waiting on a FIFO, and ValueError for anything but a regular file of a bounded size."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_INDEX_BYTES:
            raise ValueError(f"{path} is not a scan index")
        with os.fdopen(os.dup(fd), "rb") as handle:
            # not read(MAX_INDEX_BYTES + 1): that allocates the whole bound up front
            data = handle.read(info.st_size + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_INDEX_BYTES:
        raise ValueError(f"{path} is not a scan index")
    return data
