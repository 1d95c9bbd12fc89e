"""An exclusive lock between processes (and threads), held on a lock file.

Used where several meshsim processes may do the same write at once and must take turns:
the catalog backup and the export of the audit log to Delta.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_THREAD_LOCKS: dict[str, threading.Lock] = {}
_GUARD = threading.Lock()

#: How long a bounded wait (``exclusive(..., bounded=True)``) waits for the lock.
LOCK_TIMEOUT_S = 30.0
_POLL_S = 0.05


class LockTimeout(TimeoutError):
    """The lock at ``path`` was held by another process (or thread) for longer than the
    bounded wait."""

    def __init__(self, path: Path, waited: float) -> None:
        super().__init__(f"'{path}' has been held by another process for more than {waited:g} s")
        self.path = path
        self.waited = waited


@contextmanager
def exclusive(path: Path, *, bounded: bool = False) -> Iterator[None]:
    """Hold the lock named by ``path`` (created if needed) until the block ends.

    ``flock`` excludes other processes; the per-path thread lock excludes other threads of
    this one, since each thread opens its own descriptor. With ``bounded``, raise
    :class:`LockTimeout` after :data:`LOCK_TIMEOUT_S` instead of waiting forever (a stopped
    process keeps its lock until it is killed).
    """
    with _GUARD:
        thread_lock = _THREAD_LOCKS.setdefault(str(path), threading.Lock())
    limit = LOCK_TIMEOUT_S
    deadline = time.monotonic() + limit
    if not thread_lock.acquire(timeout=limit if bounded else -1):
        raise LockTimeout(path, limit)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            _lock(fd, path, deadline if bounded else None, limit)
            yield
        finally:
            os.close(fd)
    finally:
        thread_lock.release()


def _lock(fd: int, path: Path, deadline: float | None, limit: float) -> None:
    if deadline is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise LockTimeout(path, limit) from None
            time.sleep(_POLL_S)
