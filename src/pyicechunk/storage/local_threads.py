"""Which thread runs a local filesystem call: the shared worker pool, and locks never waited for
elsewhere.

The local backend (:mod:`pyicechunk.storage.local`) makes a small call on the event loop's
thread and everything else in this pool. A call made on the loop's thread must not wait for
another process, so a lock that is held there raises :class:`_LockBusy`, and the backend makes
the same call again in a worker, which waits.
"""

from __future__ import annotations

import fcntl
import os
import threading
from concurrent.futures import ThreadPoolExecutor

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _get_executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                # Filesystem calls mostly wait on the disk (fsync above all), not on the CPU,
                # so the pool has many more threads than there are cores.
                _executor = ThreadPoolExecutor(
                    max_workers=32, thread_name_prefix="pyicechunk-fs", initializer=_mark_worker
                )
    return _executor


_worker = threading.local()


def _mark_worker() -> None:
    _worker.may_wait = True


class _LockBusy(Exception):
    """A lock was held by someone else, on a thread that must not wait (the event loop's).

    Raised before the call changed anything (or after undoing what it did), so that the same
    call can be made again in a worker, which waits for the lock.
    """


def _flock(fd: int) -> None:
    """Take the exclusive lock of ``fd``: waiting for it in a worker, never on another thread."""
    if getattr(_worker, "may_wait", False):
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _LockBusy from None


def _forget_executor() -> None:
    # A forked child inherits the pool object but none of its threads; work queued there would
    # wait forever, so the child starts a pool of its own.
    global _executor
    _executor = None


os.register_at_fork(after_in_child=_forget_executor)
