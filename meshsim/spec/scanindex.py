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
whose status differs (listing a thousand folders cost more than statting their files). The
index is kept per domain folder, so that an unchanged domain is one comparison of its files'
statuses, not one lookup per file (a scan of 7,000 files spent twice its stats' time in them).

A file (or folder) changed within :data:`SETTLE_NS` of being read is not remembered:
file-system times are coarse, so a second write in the same tick with the same size would keep
its status, and the index would answer for the bytes of the first (or a folder's listing).
The index is a cache: unreadable, not a regular file (a link, a FIFO), too large, of another
mesh folder or of another key, not the user's own or writable by others (it is written
owner-only), it is ignored and written again, through a new temporary file
(never a name planted in the workspace); where the workspace cannot be written (a read-only
workspace), the scan reads every file, as before.
"""

from __future__ import annotations

import os
import stat
import time
from itertools import repeat
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from meshsim.files import replace_file
from meshsim.spec.watch import Status

#: how long after its last change a file's status is trusted to stand for its bytes
SETTLE_NS = 2_000_000_000
_VERSION = 3

#: an index larger than this is not one meshsim wrote (about 100 bytes a spec file)
MAX_INDEX_BYTES = 64 * 1024 * 1024
_NAME_BYTES = 255

Stat4 = tuple[int, int, int, int]


class _Domain(BaseModel):
    """What a scan found in one domain folder: the status its ``products`` folder had when
    listed (None: not remembered) and the product file names listed; the status of
    domain.yaml and of each product file, in that order (None: not remembered), and whether
    its bytes mentioned the key."""

    model_config = ConfigDict(extra="forbid", strict=False)

    listing: Stat4 | None
    names: list[str]
    files: list[Stat4 | None]
    mentions: list[bool]


class _IndexFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)

    version: int
    root: str
    key: str
    domains: dict[str, _Domain]


class ScanIndex:
    """What one mesh folder's spec files said of one key, loaded from ``path``."""

    def __init__(self, path: Path, root: Path, key: str) -> None:
        self.path = path
        self.root = str(root)
        self.key = key
        self._domains = self._read()
        self._asked: set[str] = set()
        self._changed = False

    def _read(self) -> dict[str, _Domain]:
        try:
            found = _IndexFile.model_validate_json(_read_index(self.path))
        except (OSError, ValidationError, ValueError):
            return {}
        if (found.version, found.root, found.key) != (_VERSION, self.root, self.key):
            return {}
        if not all(_sound(name, entry) for name, entry in found.domains.items()):
            return {}  # not what a scan writes: forged or damaged, so ignored
        return found.domains

    def listing(self, domain: str, status: Status) -> list[str] | None:
        """The product file names the ``products`` folder of ``domain`` (a folder name) held
        when it had ``status`` (``None``: not known)."""
        self._asked.add(domain)
        entry = self._domains.get(domain)
        if entry is None or status is None or entry.listing != status:
            return None
        return entry.names

    def known(
        self, domain: str, listed: Status, names: list[str], statuses: list[Status]
    ) -> tuple[list[bool | None], bool]:
        """Whether each of the files of ``domain`` (domain.yaml, then the product files
        ``names``, listed after the ``products`` folder had status ``listed``) mentioned the
        key when it had its status in ``statuses`` (``None``: not known); and whether the
        index holds exactly this of the domain already (nothing to :meth:`remember`)."""
        self._asked.add(domain)
        entry = self._domains.get(domain)
        if entry is None:
            return [None] * len(statuses), False
        if entry.names == names and entry.files == statuses:  # an unchanged domain
            return list(entry.mentions), entry.listing == listed
        kept_by_name = zip(entry.files, entry.mentions, strict=True)
        before = dict(zip(["", *entry.names], kept_by_name, strict=True))
        found: list[bool | None] = []
        for name, status in zip(["", *names], statuses, strict=True):
            kept = before.get(name)
            same = kept is not None and status is not None and kept[0] == status
            found.append(kept[1] if same and kept is not None else None)
        return found, False

    def remember(
        self,
        domain: str,
        listed: Status,
        names: list[str],
        statuses: list[Status],
        mentions: list[bool],
    ) -> None:
        """Note what the files of ``domain`` said, each read when it had its status, and the
        names its ``products`` folder held, listed after it had status ``listed``: each
        status only once it has settled."""
        if not all(map(_storable, [domain, *names])):
            return
        now = time.time_ns()
        entry = _Domain(
            listing=listed if listed is not None and _settled(listed, now) else None,
            names=names,
            files=[s if s is not None and _settled(s, now) else None for s in statuses],
            mentions=mentions,
        )
        if entry.listing is None and not any(entry.files):  # nothing settled to remember
            if self._domains.pop(domain, None) is not None:
                self._changed = True
        elif self._domains.get(domain) != entry:
            self._domains[domain] = entry
            self._changed = True

    def save(self) -> None:
        """Write what the domains asked about said (atomically) if any changed; a workspace
        that cannot be written keeps none."""
        gone = [name for name in self._domains if name not in self._asked]
        for name in gone:  # a domain removed, or one a scan no longer reaches
            del self._domains[name]
        if not (self._changed or gone):
            return
        data = _IndexFile(version=_VERSION, root=self.root, key=self.key, domains=self._domains)
        try:
            replace_file(self.path, data.model_dump_json().encode(), mode=0o600)
        except OSError:  # a read-only workspace
            return
        self._changed = False


def _sound(domain: str, entry: _Domain) -> bool:
    """Whether an entry is one a scan writes: plain file names (no path, no NUL, not too
    long), a status and a mark for domain.yaml and each product file."""
    names = [domain, *entry.names]
    if not len(entry.files) == len(entry.mentions) == len(names):
        return False
    joined = "".join(names)  # one text: a domain of many files is checked in a few calls
    if "/" in joined or "\0" in joined or os.sep in joined:
        return False
    if max(map(len, names)) > _NAME_BYTES or domain in ("", ".", ".."):
        return False
    return all(map(str.endswith, entry.names, repeat(".yaml")))


def _storable(name: str) -> bool:
    """Whether a path name survives the index's JSON (a name that is not UTF-8 does not)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _settled(status: tuple[int, int, int, int], now: int) -> bool:
    """Whether a path with ``status`` last changed long enough before ``now`` for the status
    to stand for its content (a second change in the same clock tick could keep the same
    status)."""
    return now - max(status[0], status[1]) >= SETTLE_NS


def _read_index(path: Path) -> bytes:
    """The bytes of the index, opened as the audit journal is: not through a link, never
    waiting on a FIFO, and ValueError for anything but a regular file of a bounded size."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_INDEX_BYTES:
            raise ValueError(f"{path} is not a scan index")
        if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            # another user's, or one others may write: not trusted to say what files say
            raise ValueError(f"{path} is not this user's scan index")
        with os.fdopen(os.dup(fd), "rb") as handle:
            # not read(MAX_INDEX_BYTES + 1): that allocates the whole bound up front
            data = handle.read(info.st_size + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_INDEX_BYTES:
        raise ValueError(f"{path} is not a scan index")
    return data
