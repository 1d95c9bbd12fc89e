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


class CountingWatchdog(Watchdog):
    """Counts the times a watch woke the thread."""

    def __init__(self) -> None:
        super().__init__()
        self.wakes = 0
        notify = self._wake.notify

        def counted(n: int = 1) -> None:
            self.wakes += 1
            notify(n)

        self._wake.notify = counted  # type: ignore[method-assign]


def test_a_later_deadline_does_not_wake_the_thread_and_an_earlier_one_does() -> None:
    watchdog = CountingWatchdog()
    first, _ = watchdog.watch(Cursor(), 60.0)
    watchdog.release(first)
    woken = watchdog.wakes
    for _ in range(20):  # each query's deadline is later than the one the thread sleeps to
        token, _ = watchdog.watch(Cursor(), 60.0)
        watchdog.release(token)
    assert watchdog.wakes == woken
    soon = Cursor()
    token, fired = watchdog.watch(soon, 0.01)  # sooner than it sleeps to: it is woken
    assert watchdog.wakes == woken + 1
    assert soon.interrupted.wait(10) and fired.is_set()
    watchdog.release(token)
