"""An exclusive lock between processes (and threads), held on a lock file.

Used where several meshsim processes may do the same write at once and must take turns:
the catalog backup and the export of the audit log to Delta.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_THREAD_LOCKS: dict[str, threading.Lock] = {}
_GUARD = threading.Lock()


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold the lock named by ``path`` (created if needed) until the block ends.

    ``flock`` excludes other processes; the per-path thread lock excludes other threads of
    this one, since each thread opens its own descriptor.
    """
    with _GUARD:
        thread_lock = _THREAD_LOCKS.setdefault(str(path), threading.Lock())
    with thread_lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
