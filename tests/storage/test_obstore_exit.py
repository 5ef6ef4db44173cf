"""The exit hook's wait for threads that native code entered Python with (obstore_exit)."""

from __future__ import annotations

import _thread
import threading
import time

from pyicechunk.storage import obstore_exit


def test_settle_returns_at_once_when_no_thread_is_in_a_handover_call() -> None:
    busy = threading.Event()
    done = threading.Event()

    def call_soon_threadsafe() -> None:  # started by Python: its bootstrap is outermost
        busy.set()
        done.wait(10)

    thread = threading.Thread(target=call_soon_threadsafe)
    thread.start()
    busy.wait(10)
    try:
        assert obstore_exit.threads_in_handover() == 0
        start = time.monotonic()
        assert obstore_exit.settle(limit=5.0)
        assert time.monotonic() - start < 0.5
    finally:
        done.set()
        thread.join()


def test_settle_waits_for_a_handover_call_and_gives_up_at_its_limit() -> None:
    busy = threading.Event()
    release = threading.Event()
    finished = threading.Event()

    # A thread without threading's bootstrap, like a runtime thread calling into Python: the
    # called function is the outermost frame of its stack.
    def call_soon_threadsafe() -> None:
        busy.set()
        release.wait(10)
        finished.set()

    _thread.start_new_thread(call_soon_threadsafe, ())
    busy.wait(10)
    try:
        assert obstore_exit.threads_in_handover() == 1
        start = time.monotonic()
        assert not obstore_exit.settle(limit=0.2)
        assert time.monotonic() - start >= 0.2
    finally:
        release.set()
    assert obstore_exit.settle(limit=5.0)
    assert finished.is_set()
    assert obstore_exit.threads_in_handover() == 0


def test_watched_functions_count_as_handover_calls() -> None:
    busy = threading.Event()
    release = threading.Event()

    def getter() -> None:
        busy.set()
        release.wait(10)

    _thread.start_new_thread(getter, ())
    busy.wait(10)
    try:
        assert obstore_exit.threads_in_handover() == 0
        obstore_exit.watch(getter)
        assert obstore_exit.threads_in_handover() == 1
    finally:
        release.set()
    assert obstore_exit.settle(limit=5.0)
