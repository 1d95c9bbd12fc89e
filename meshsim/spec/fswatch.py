"""Linux inotify on a mesh folder's spec files, so that "no spec file changed" costs no stat.

:meth:`meshsim.spec.watch.SpecFiles.changed` stats every file a load or a scan recorded: 8,000
files at 10,000 products, about 14 ms, in every catalog decision of a long-lived process. A
:class:`FolderWatch` asks the kernel (inotify, through ``ctypes`` on libc: no dependency) to
report every change to those files and their folders, so that a check with no event since the
last one answers "unchanged" without a stat; an event sends the check back to the stats, which
stay the ground truth. This module only reports; :class:`~meshsim.spec.watch.SpecFiles`
decides (it arms each path: watches it, *then* compares its status once).

What is watched: each spec file itself (any write, attribute or link-count change, whichever
folder it was made through: a hard link elsewhere too), each folder for its entries (a file
created, deleted, renamed or replaced), and the folders above the mesh folder for the one name
below each (a mesh folder renamed away and another put in its place; an event about another
name, anywhere in ``/tmp``, is none). An event about a file nobody recorded (an editor's swap
file being written) is none either.

Where events cannot be trusted, there is no watch (the caller stats, as without one): not
Linux; no inotify (a libc without it, the user's instances all taken, :data:`MAX_INSTANCES`
in this process); a mesh folder on a file system not known to be local (looked up in
``/proc/self/mountinfo``: a change made by another machine on NFS, SMB or a FUSE file system
raises no event here). The caller stops trusting it for its files when a path is a symbolic
link (its target changes without an event), on another device than the mesh folder (a mount
inside it) or refused a watch (``max_user_watches``). Lost watches and lost events raise the
:attr:`FolderWatch.epoch`, after which every path is armed again (and so compared): a watched
path deleted or replaced, the kernel's queue overflowed (a new inotify instance), the mount
table changed (``/proc/self/mountinfo`` polls as changed: something mounted over a folder
raises no inotify event), a forked child (which starts its own rather than read its parent's
events). What inotify does not report at all: writes through a shared memory map of a file,
which no editor makes.
"""

from __future__ import annotations

import errno
import os
import select
import struct
import sys
import threading
import weakref
from collections.abc import Iterable
from typing import Any

#: file systems whose changes are all made by this kernel, so that inotify sees each one
LOCAL_FILE_SYSTEMS = frozenset(
    {
        "bcachefs",
        "btrfs",
        "exfat",
        "ext2",
        "ext3",
        "ext4",
        "f2fs",
        "jfs",
        "ntfs3",
        "overlay",
        "ramfs",
        "reiserfs",
        "tmpfs",
        "vfat",
        "xfs",
        "zfs",
    }
)

#: inotify instances a process holds at most: the kernel's limit (``max_user_instances``,
#: 128 by default) is per user, shared by all of its processes; a spec past it is stat'ed
MAX_INSTANCES = 32

# <sys/inotify.h>
IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
#: everything that changes an entry's status (times, size, inode) or a folder's entries
MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
)
#: what a folder above the mesh folder is watched for: its one entry renamed, removed,
#: replaced or its attributes changed (not the writes to other files, as in /tmp)
ABOVE_MASK = IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF
ABOVE_MASK |= IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW
_ENTRIES = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name

_instances = 0  # inotify instances open in this process (MAX_INSTANCES)
_open_lock = threading.Lock()


class WatchUnavailable(Exception):
    """A path could not be watched (no such path, the kernel's limit of watches, the watch
    closed): the caller stats instead."""


class FolderWatch:
    """inotify on the folders and files of one mesh folder (``root``, absolute and resolved),
    started when first used, shared by the :class:`meshsim.spec.watch.SpecFiles` of one
    :class:`meshsim.mesh.Mesh` (a reload reuses it) and closed with it.

    :meth:`drain` answers with ``(epoch, generation)``: ``generation`` grows with every event
    that concerns a watched path, ``epoch`` whenever watches were lost (a watched file or folder
    deleted or replaced, events dropped, the mount table changed), after which a path armed
    before must be armed again."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.fspath(root)
        #: the mesh folder's device: a path on another one is a mount inside the mesh
        self.device: int | None = None
        self.epoch = 0
        self.generation = 0
        self._fd = -1
        self._mounts = -1  # /proc/self/mountinfo, polled: a mount or unmount anywhere
        self._state = "new"  # then "open", or "off": events cannot be trusted here
        self._instance = 0  # counts the inotify instances opened (a reset opens another)
        self._pid = os.getpid()  # the process that opened it
        self._add_watch: Any = None
        self._remove_watch: Any = None
        self._wds: dict[str, int] = {}  # each watched path's watch descriptor
        self._paths: dict[int, set[str]] = {}  # the paths of a descriptor (hard links)
        self._children: dict[str, set[str]] = {}  # the watched paths in each folder
        #: per descriptor: the entry names that matter, and whether every entry does
        self._interest: dict[int, tuple[set[bytes], bool]] = {}
        self._poll = select.poll()
        self._closer: weakref.finalize | None = None
        self._lock = threading.Lock()

    def start(self) -> int | None:
        """Open the watch if need be; its epoch, or None where it cannot be trusted."""
        with self._lock:
            return self.epoch if self._open() else None

    def _open(self) -> bool:
        if self._state == "open" and self._pid != os.getpid():
            self._reset()  # a forked child: reading the parent's events would take them away
        if self._state == "new":
            self._state = "open" if self._begin() else "off"
        return self._state == "open"

    def _begin(self) -> bool:
        """Start inotify and watch the folders above the mesh folder, each for its one entry;
        False where that cannot be or its events cannot be trusted."""
        if sys.platform != "linux":
            return False
        import ctypes  # here: a command that never checks twice does not import it

        try:
            self.device = os.stat(self.root).st_dev
            mounts = os.open("/proc/self/mountinfo", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            local = file_system_type(_read_all(mounts), self.root) in LOCAL_FILE_SYSTEMS
            libc = ctypes.CDLL(None, use_errno=True)
            init, add, remove = libc.inotify_init1, libc.inotify_add_watch, libc.inotify_rm_watch
        except (OSError, AttributeError):  # a libc without inotify
            local = False
        if not local:
            os.close(mounts)
            return False
        add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        remove.argtypes = [ctypes.c_int, ctypes.c_int]
        global _instances
        with _open_lock:
            fd = init(os.O_NONBLOCK | os.O_CLOEXEC) if _instances < MAX_INSTANCES else -1
            if fd < 0:  # EMFILE: the user's instances are all taken
                os.close(mounts)
                return False
            _instances += 1
        self._fd, self._mounts, self._pid = fd, mounts, os.getpid()
        self._instance += 1
        self._add_watch, self._remove_watch = add, remove
        self._poll = select.poll()
        self._poll.register(mounts, select.POLLPRI | select.POLLERR)
        self._closer = weakref.finalize(self, _close_fds, fd, mounts)
        path = self.root
        while True:
            parent, name = os.path.split(path)
            if not name:
                return True
            try:
                self._add(parent, [name], every_entry=False, mask=ABOVE_MASK)
            except WatchUnavailable:
                self._close()
                return False
            path = parent

    def watch(self, path: str, names: Iterable[str] = ()) -> None:
        """Report the changes to ``path`` (a file, or a folder and its entries); with
        ``names``, only those of the folder ``path``'s entries of those names (a change to
        the folder itself, to the entries, is reported if it is watched without names too).
        A link is watched itself, not its target. WatchUnavailable when the kernel refuses (no
        such path, the user's watches all taken) or the watch is closed."""
        with self._lock:
            if not self._open():
                raise WatchUnavailable("the watch is closed")
            self._add(path, names, every_entry=not names, mask=MASK | IN_DONT_FOLLOW)

    def _add(self, path: str, names: Iterable[str], *, every_entry: bool, mask: int) -> None:
        wd = self._wds.get(path)
        if wd is None:
            wd = self._add_watch(self._fd, os.fsencode(path), mask)
            if wd < 0:
                from ctypes import get_errno

                code = get_errno()
                if code not in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
                    # the user's watches all taken (ENOSPC): a part of the mesh watched is of
                    # no use, and its watches are the user's other programs' too
                    self._close()
                raise WatchUnavailable(f"{path}: {os.strerror(code)}")
            self._wds[path] = wd
            self._paths.setdefault(wd, set()).add(path)
            self._children.setdefault(os.path.dirname(path), set()).add(path)
        wanted, every = self._interest.setdefault(wd, (set(), False))
        wanted.update(os.fsencode(n) for n in names)
        if every_entry and not every:
            self._interest[wd] = (wanted, True)

    @property
    def active(self) -> bool:
        """Whether the watch is open (or not started yet), not closed or off."""
        return self._state != "off"

    def watching(self, path: str) -> bool:
        """Whether ``path`` is watched now (armed since its last change)."""
        return path in self._wds

    def drain(self) -> tuple[int, int] | None:
        """Read every event since the last drain; ``(epoch, generation)`` after them, or None
        when the watch is closed or off."""
        with self._lock:
            if not self._open():
                return None
            if self._poll.poll(0):  # the mount table changed: whatever is watched may not be
                self._reset()
            while self._state == "open":
                try:
                    data = os.read(self._fd, 65536)
                except BlockingIOError:
                    break
                except OSError:
                    self._reset()
                    continue
                self._events(data)
            if self._state != "open":
                return None
            return self.epoch, self.generation

    def _events(self, data: bytes) -> None:
        instance, offset, concerns = self._instance, 0, False
        while offset < len(data):
            wd, mask, _, size = _EVENT.unpack_from(data, offset)
            name = data[offset + _EVENT.size : offset + _EVENT.size + size].rstrip(b"\0")
            offset += _EVENT.size + size
            if mask & IN_Q_OVERFLOW:
                self._reset()  # events were lost: nothing is known
            elif mask & (IN_IGNORED | IN_UNMOUNT):  # the kernel dropped the watch
                paths = list(self._paths.get(wd, ()))  # none: one this watch removed
                for path in paths:
                    self._forget(path)
                concerns = concerns or bool(paths)
            else:
                wanted, every = self._interest.get(wd, (set(), True))
                if name and mask & _ENTRIES:  # an entry created, removed or replaced
                    for folder in list(self._paths.get(wd, ())):
                        self._forget(os.path.join(folder, os.fsdecode(name)))
                if not name:  # the path itself
                    concerns = concerns or every
                else:
                    concerns = concerns or name in wanted or (every and bool(mask & _ENTRIES))
            if self._instance != instance or self._state != "open":
                return  # started over: the rest is of the instance closed
        if concerns:
            self.generation += 1

    def _forget(self, path: str) -> None:
        """Stop watching ``path`` and whatever is under it (another inode may be there now,
        to be armed again); the mesh folder or one above it: start over."""
        if path not in self._wds:
            return
        if path == self.root or self.root.startswith(path.rstrip("/") + "/"):
            self._reset()
            return
        self._drop(path)
        self.epoch += 1

    def _drop(self, path: str) -> None:
        wd = self._wds.pop(path, None)
        if wd is None:
            return
        self._children.get(os.path.dirname(path), set()).discard(path)
        for child in self._children.pop(path, set()):
            self._drop(child)
        paths = self._paths.get(wd, set())
        paths.discard(path)
        if not paths:  # the last path of its inode
            self._paths.pop(wd, None)
            self._interest.pop(wd, None)
            self._remove_watch(self._fd, wd)

    def _reset(self) -> None:
        """Start over on a new inotify instance (every path to be armed again)."""
        self._close()
        self.epoch += 1
        self._state = "new"
        self._open()

    def _close(self) -> None:
        if self._closer is not None:
            self._closer()
            self._closer = None
        self._fd = self._mounts = -1
        self._wds, self._paths, self._interest, self._children = {}, {}, {}, {}
        self._state = "off"

    def close(self) -> None:
        """Close the inotify instance for good: checks stat from now on."""
        with self._lock:
            self._close()


def _close_fds(fd: int, mounts: int) -> None:
    global _instances
    os.close(fd)
    os.close(mounts)
    with _open_lock:
        _instances -= 1


def _read_all(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def file_system_type(mountinfo: str, path: str) -> str | None:
    """The type of the file system ``path`` (absolute, resolved) is on, from the text of
    ``/proc/self/mountinfo`` (the mount point that is the longest prefix of it, the last one
    mounted there); None when no mount holds it."""
    found: tuple[int, str] | None = None
    for line in mountinfo.splitlines():
        fields, _, after = line.partition(" - ")
        parts, kinds = fields.split(), after.split()
        if len(parts) < 5 or not kinds:
            continue
        point = _unescape(parts[4])
        inside = point == "/" or path == point or path.startswith(point.rstrip("/") + "/")
        if inside and (found is None or len(point) >= found[0]):
            found = (len(point), kinds[0])
    return found[1] if found is not None else None


def _unescape(field: str) -> str:
    """A mountinfo path: spaces, tabs, newlines and backslashes are written as octal escapes."""
    if "\\" not in field:
        return field
    return field.encode().decode("unicode_escape").encode("latin-1").decode("utf-8", "replace")
