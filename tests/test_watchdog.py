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


def test_one_thread_serves_every_call(monkeypatch) -> None:
    watchdog = Watchdog()
    started: list[threading.Thread] = []
    start = threading.Thread.start

    def counted(thread: threading.Thread) -> None:
        started.append(thread)
        start(thread)

    # counts the threads this watchdog starts, not the process's (other tests' threads end
    # at their own pace)
    monkeypatch.setattr(threading.Thread, "start", counted)
    for _ in range(50):
        token, _ = watchdog.watch(Cursor(), 30.0)
        watchdog.release(token)
    assert [t.name for t in started] == ["meshsim-watchdog"]


def test_a_call_is_interrupted_on_time_after_the_thread_slept_for_a_withdrawn_deadline() -> None:
    # the thread is not woken for a deadline later than its next wake: it must still find
    # this call's deadline when it wakes for one that was withdrawn in between
    watchdog = Watchdog()
    withdrawn, _ = watchdog.watch(Cursor(), 0.05)
    watchdog.release(withdrawn)
    late = Cursor()
    token, fired = watchdog.watch(late, 0.1)
    assert late.interrupted.wait(10) and fired.is_set()
    watchdog.release(token)


def test_an_earlier_deadline_wakes_a_thread_sleeping_towards_a_later_one() -> None:
    watchdog = Watchdog()
    kept, _ = watchdog.watch(Cursor(), 3600.0)
    early = Cursor()
    token, fired = watchdog.watch(early, 0.01)
    assert early.interrupted.wait(10) and fired.is_set()
    watchdog.release(token)
    watchdog.release(kept)
