"""The one watchdog thread that interrupts guarded DuckDB calls past their deadline."""

from __future__ import annotations

import threading

from meshsim.watchdog import Watchdog


class Cursor:
    def __init__(self) -> None:
        self.interrupted = threading.Event()

    def interrupt(self) -> None:
        self.interrupted.set()


def test_a_call_past_its_deadline_is_interrupted_and_a_released_one_never_is() -> None:
    watchdog = Watchdog()
    late, on_time = Cursor(), Cursor()
    kept, kept_fired = watchdog.watch(on_time, 60.0)
    token, fired = watchdog.watch(late, 0.01)
    assert late.interrupted.wait(10) and fired.is_set()
    watchdog.release(token)
    watchdog.release(kept)
    assert not on_time.interrupted.is_set() and not kept_fired.is_set()
    assert watchdog._watched == {}  # no cursor is held once its call returned


def test_one_thread_serves_every_call() -> None:
    watchdog = Watchdog()
    before = threading.active_count()
    for _ in range(50):
        token, _ = watchdog.watch(Cursor(), 30.0)
        watchdog.release(token)
    assert threading.active_count() == before + 1
