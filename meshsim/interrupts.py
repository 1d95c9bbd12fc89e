"""Ctrl-C while governed SQL runs: cancel the statement, keep the audit record.

DuckDB notices SIGINT only at some points of a statement, and Python's default handler
raises KeyboardInterrupt wherever the main thread happens to be (in the middle of writing an
audit record, say). :func:`cancellable` instead remembers the signal, and a watcher thread,
woken by it even while DuckDB holds the main thread (``signal.set_wakeup_fd``), interrupts
the running statements (:func:`meshsim.engine.interrupt_queries`) until the block ends; the
statement then fails with :class:`meshsim.engine.QueryCancelled`, audited like any failure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def cancellable(*, reraise: bool = False) -> Iterator[threading.Event]:
    """A block whose queries Ctrl-C cancels; yields the event set by Ctrl-C. With
    ``reraise``, a block ended by a cancelled query raises KeyboardInterrupt (the command
    line then says ``Interrupted.`` and exits 130) rather than the query's error."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted  # signals reach the main thread only
        return
    from meshsim.engine import interrupt_queries

    done = threading.Event()
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)

    def remember(signum: int, frame: object) -> None:
        interrupted.set()

    def watch() -> None:
        os.read(read_fd, 1)  # the signal's wake-up byte, or the one written at the end
        while not done.is_set():
            if interrupted.is_set():
                interrupt_queries()
            done.wait(0.05)

    previous = signal.signal(signal.SIGINT, remember)
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    watcher = threading.Thread(target=watch, name="meshsim-ctrl-c", daemon=True)
    watcher.start()
    try:
        yield interrupted
    except Exception:
        if reraise and interrupted.is_set():
            raise KeyboardInterrupt from None
        raise
    finally:
        done.set()
        signal.set_wakeup_fd(previous_fd)
        signal.signal(signal.SIGINT, previous)
        os.write(write_fd, b"x")
        watcher.join()
        os.close(read_fd)
        os.close(write_fd)
    if reraise and interrupted.is_set():
        raise KeyboardInterrupt
