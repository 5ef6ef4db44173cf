"""Let obstore's runtime threads leave Python before the interpreter finalizes.

obstore runs every request on a tokio runtime whose threads Python did not start. They enter
Python to hand a result to the event loop awaiting it (``loop.call_soon_threadsafe``, whose write
to the loop's wake-up socket releases the GIL) and to call the getter of refreshable
credentials. From Python 3.11 to 3.13, a thread that tries to take the GIL while the interpreter
finalizes is ended with ``pthread_exit``; on a runtime thread that unwinds through Rust frames,
which must not be unwound, and the process aborts (SIGABRT) after the program has otherwise
finished. One result handed over just before exit is enough: the loop runs the callback, and the
program runs to its end, while the runtime thread still waits in the socket write to take the
GIL back. A credentials getter still running when the program ends does the same.

:func:`settle` runs at exit (registered by :func:`watch` when obstore is first loaded, so before
zarr's exit hook stops zarr's event loop). It waits, for a bounded time, until no thread has been
in one of those calls for a short quiet period. It knows them by the outermost frame of the
thread's stack: a thread that native code entered Python with has the called function there (a
``call_soon_threadsafe`` method, or a function given to :func:`watch`); a thread Python started
has its own bootstrap there, so other threads (zarr's loop, thread pools) never hold exit up.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import time
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

logger = logging.getLogger(__name__)

# The longest exit waits for runtime threads to leave Python; a thread still in such a call
# after that (a getter that hangs) no longer holds the exit up.
SETTLE_LIMIT_S = 5.0
# How long no such thread must be seen before exit goes on, once one was seen: a runtime
# thread whose getter call has just returned enters Python once more right after.
QUIET_S = 0.05
_POLL_S = 0.001

# The functions native threads call into Python through, besides call_soon_threadsafe, by code.
_entries: set[CodeType] = set()
_watching = False
_lock = threading.Lock()


def watch(*entries: Callable[..., Any]) -> None:
    """Have :func:`settle` run at interpreter exit, and wait for threads in ``entries`` too.

    The hook is registered once, however often this is called.
    """
    global _watching
    with _lock:
        _entries.update(f.__code__ for f in entries)
        if not _watching:
            atexit.register(settle)
            _watching = True


def _entered(frame: FrameType) -> bool:
    """Whether the stack that ``frame`` tops was entered through a watched call."""
    while frame.f_back is not None:
        frame = frame.f_back
    code = frame.f_code
    return code.co_name == "call_soon_threadsafe" or code in _entries


def threads_in_handover() -> int:
    """How many other threads are now in a call that native code entered Python with.

    :func:`sys._current_frames` lists a thread while it has a frame, also while it waits in
    that call to take the GIL back (a foreign thread has no Python state outside such calls).
    """
    me = threading.get_ident()
    return sum(
        1 for ident, frame in sys._current_frames().items() if ident != me and _entered(frame)
    )


def settle(limit: float = SETTLE_LIMIT_S, quiet: float = QUIET_S) -> bool:
    """Wait until no thread has been in a handover call for ``quiet`` seconds, at most ``limit``.

    Returns at once when none is (the usual exit). Sleeping releases the GIL, so a runtime
    thread waiting for it can finish handing over its result.

    Returns
    -------
    bool
        False if a thread was still in such a call after ``limit`` seconds.
    """
    if not threads_in_handover():
        return True
    deadline = time.monotonic() + limit
    calm_since: float | None = None
    while True:
        now = time.monotonic()
        if threads_in_handover():
            calm_since = None
        elif calm_since is None:
            calm_since = now
        elif now - calm_since >= quiet:
            return True
        if now >= deadline:
            logger.debug("exit: a native thread is still in a call into Python")
            return False
        time.sleep(_POLL_S)
