"""Which spec files mention a key, remembered between processes by each file's status.

The identity check needs every domain that may bind owners to OS users
(:meth:`meshsim.spec.lazy.LazyDomains.mentioning`), which read the bytes of every spec file once
per process: 335 ms at 5,000 products, in every one-shot command that authenticates. A
:class:`ScanIndex` in the workspace keeps, per file, the status it had when it was read
(modification and change times, size, inode: :func:`meshsim.spec.watch.status`) and whether
its bytes mentioned the key; a later process reads only the files whose status differs, and
stats the others (which the scan does anyway, to notice a change later).

A file changed within :data:`SETTLE_NS` of being read is not remembered: file-system times
are coarse, so a second write in the same tick with the same size would keep its status, and
the index would answer for the bytes of the first. The index is a cache: unreadable, not a
regular file (a link, a FIFO), too large, of another mesh folder or of another key, it is
ignored and written again, through a new temporary file (never a name planted in the
workspace); where the workspace cannot be written (a read-only workspace), the scan reads
every file, as before.
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
_VERSION = 1

#: an index larger than this is not one meshsim wrote (about 100 bytes a spec file)
MAX_INDEX_BYTES = 64 * 1024 * 1024

#: a file's status and whether its bytes mentioned the key
Mark = tuple[int, int, int, int, bool]


class _IndexFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)

    version: int
    root: str
    key: str
    files: dict[str, Mark]


class ScanIndex:
    """The marks of one mesh folder's spec files for one key, loaded from ``path``."""

    def __init__(self, path: Path, root: Path, key: str) -> None:
        self.path = path
        self.root = str(root)
        self.key = key
        self._marks = self._read()
        self._asked: set[str] = set()
        self._changed = False

    def _read(self) -> dict[str, Mark]:
        try:
            found = _IndexFile.model_validate_json(_read_index(self.path))
        except (OSError, ValidationError, ValueError):
            return {}
        if (found.version, found.root, found.key) != (_VERSION, self.root, self.key):
            return {}
        return found.files

    def mentions(self, file: str, status: Status) -> bool | None:
        """Whether ``file`` mentioned the key when it had ``status`` (``None``: not known)."""
        self._asked.add(self._name(file))
        mark = self._marks.get(self._name(file))
        if mark is None or status is None or mark[:4] != status:
            return None
        return mark[4]

    def remember(self, file: str, status: Status, mentions: bool) -> None:
        """Note what ``file``'s bytes, read when it had ``status``, said."""
        if status is None or time.time_ns() - max(status[0], status[1]) < SETTLE_NS:
            return
        mark = (*status, mentions)
        if self._marks.get(self._name(file)) != mark:
            self._marks[self._name(file)] = mark
            self._changed = True

    def _name(self, file: str) -> str:
        return file[len(self.root) + 1 :] if file.startswith(self.root + os.sep) else file

    def save(self) -> None:
        """Write the marks of the files asked about (atomically) if any changed; a
        workspace that cannot be written keeps none."""
        gone = [name for name in self._marks if name not in self._asked]
        for name in gone:  # a file removed, or one a scan no longer reaches
            del self._marks[name]
        if not (self._changed or gone):
            return
        data = _IndexFile(version=_VERSION, root=self.root, key=self.key, files=self._marks)
        try:
            replace_file(self.path, data.model_dump_json().encode())
        except OSError:  # a read-only workspace
            return
        self._changed = False


def _read_index(path: Path) -> bytes:
    """The bytes of the index, opened as the audit journal is: not through a link, never
    waiting on a FIFO, and ValueError for anything but a regular file of a bounded size."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_INDEX_BYTES:
            raise ValueError(f"{path} is not a scan index")
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(MAX_INDEX_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_INDEX_BYTES:
        raise ValueError(f"{path} is not a scan index")
    return data
