"""One thread that interrupts DuckDB calls past their deadline.

A guarded engine call (:func:`meshsim.engine._guarded`) used to start a ``threading.Timer``
per call and join it afterwards: two thread switches per call, which on a loaded machine cost
milliseconds of a planning budget of two. Here every call registers its deadline with one
long-lived daemon thread and withdraws it when it returns; the thread holds a cursor only
while its call is registered (a thread holding one at interpreter exit makes DuckDB's
bindings print a 'nanobind: leaked instances' block). A call wakes the thread only if its
deadline comes before the thread's next wake: waking it for every call (a thread switch, and
the GIL handed over, while the call itself waits) cost a planning call 0.05 ms at p50, more
at p95; a thread that wakes for a deadline already withdrawn looks again and sleeps on.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
from typing import Any


class Watchdog:
    """Interrupts each watched cursor once its deadline passes (and says so)."""

    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._watched: dict[int, tuple[float, Any, threading.Event]] = {}
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None
        self._pid = 0
        #: when the thread wakes next (inf: not until notified); read and set under _wake
        self._next_wake = math.inf

    def watch(self, cursor: Any, timeout_s: float) -> tuple[int, threading.Event]:
        """Interrupt ``cursor`` in ``timeout_s`` seconds unless :meth:`release` comes first;
        the event is set when it was interrupted."""
        fired = threading.Event()
        due = time.monotonic() + timeout_s
        with self._wake:
            if self._thread is None or self._pid != os.getpid():  # none yet, or forked
                self._watched.clear()
                self._next_wake = math.inf
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="meshsim-watchdog", daemon=True
                )
                self._thread.start()
            token = next(self._tokens)
            self._watched[token] = (due, cursor, fired)
            if due < self._next_wake:
                self._wake.notify()
        return token, fired

    def release(self, token: int) -> None:
        """The call returned: its cursor is no longer watched (nor held)."""
        with self._wake:
            self._watched.pop(token, None)

    def _run(self) -> None:
        with self._wake:
            while True:
                now = time.monotonic()
                for token in [t for t, (due, _, _) in self._watched.items() if due <= now]:
                    _, cursor, fired = self._watched.pop(token)
                    fired.set()
                    cursor.interrupt()
                    del cursor
                due = min((d for d, _, _ in self._watched.values()), default=None)
                self._next_wake = math.inf if due is None else due
                self._wake.wait(None if due is None else max(due - now, 0.0))


WATCHDOG = Watchdog()
