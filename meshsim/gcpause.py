"""Hold off Python's cyclic garbage collector while meshsim builds large, long-lived object
graphs (a parsed spec, a workspace's state, an identity scan).

Such work allocates hundreds of thousands of containers that all survive. The collector runs
after every 700 allocations and, now and then, walks every object of the process, imported
modules included: on this machine it was 40% of opening a workspace and a session (95 ms of
0.25 s with the example's 1,000 consumers, 150 ms at 10,000 tables). Reference counting still
frees what dies at once; cycles made inside wait for the next collection after the pause, as
they would have waited for a threshold. The collector is paused once however deeply pauses
nest and whatever threads pause it, and resumed only if it ran before the outermost pause (a
caller that disabled it keeps it disabled).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

_lock = threading.Lock()
_depth = 0
_resume = False

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic collector off inside, restored as it was once the outermost pause ends."""
    global _depth, _resume
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _resume:
                gc.enable()


def pauses_collector(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` run with :func:`collector_paused`."""

    @wraps(fn)
    def paused(*args: P.args, **kwargs: P.kwargs) -> R:
        with collector_paused():
            return fn(*args, **kwargs)

    return paused
