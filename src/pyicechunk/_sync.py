"""Run pyicechunk's coroutines from blocking code.

All I/O runs on zarr's background event loop, so zarr and pyicechunk share one loop and the
store's coroutines and the session's coroutines never cross loops. Unlike the reference, a
blocking call made from inside a running event loop (Jupyter, a web server, a coroutine) works:
if the caller is on some other loop we simply wait for zarr's loop, and if the caller is a
coroutine running on zarr's loop itself (waiting there would deadlock) the coroutine runs on a
private loop in a helper thread. Nothing in pyicechunk holds loop-bound state, which is what
makes the second case safe.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import os
import sys
import threading
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Concatenate, ParamSpec, TypeVar

from zarr.core.sync import _get_loop
from zarr.core.sync import sync as _zarr_sync

T = TypeVar("T")
C = TypeVar("C")
P = ParamSpec("P")

# Where pyicechunk's own frames and the event loop's come from, for caller_stacklevel.
_NOT_CALLERS = (
    os.path.dirname(os.path.abspath(__file__)) + os.sep,
    os.path.dirname(os.path.abspath(asyncio.__file__)) + os.sep,
)

_fallback_pool = concurrent.futures.ThreadPoolExecutor(
    max_workers=4, thread_name_prefix="pyicechunk-sync"
)


def sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion and return its result, from any thread or event loop."""
    loop = _get_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        return _fallback_pool.submit(asyncio.run, coro).result()
    return _zarr_sync(coro, loop=loop)


_own = threading.local()


def sync_here(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the calling thread's own event loop, or as :func:`sync` would.

    For short work that zarr does not take part in (a history walk, a ref update, opening a
    session, committing it): handing it to zarr's loop thread and waiting for the answer costs
    more than the work itself. Sessions are safe to use from both loops at once (their locks are
    thread locks, and waiters are woken on their own loop). A thread running an event loop of its
    own cannot run another one, so there this is :func:`sync`. The coroutine's first step runs
    without a task (see :func:`_run_eagerly`): most of these calls never wait, and then no turn
    of the loop is needed.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        loop: asyncio.AbstractEventLoop | None = getattr(_own, "loop", None)
        if loop is None or loop.is_closed():
            loop = _own.loop = asyncio.new_event_loop()
        return _run_eagerly(loop, coro)
    return sync(coro)


def _run_eagerly(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on ``loop``, its first step right here (as an eager task would).

    Most short operations (a ref update on local storage, say) never wait for anything: run as
    a task, they would pay for the task, two turns of the loop and their selector calls, more
    than a branch update itself costs. So the first step runs on this thread with ``loop`` as
    the running loop, in a copy of the caller's context (as a task's step would); if the
    coroutine finishes there, that is all. If it waits, a task on ``loop`` carries on with the
    same context, handing the coroutine's waits to the loop exactly as if the coroutine had
    been the task's from the start.
    """
    context = contextvars.copy_context()
    asyncio.events._set_running_loop(loop)
    try:
        try:
            waiting = context.run(coro.send, None)
        except StopIteration as done:
            result: T = done.value
            return result
    finally:
        asyncio.events._set_running_loop(None)
    task = loop.create_task(_carry_on(_Resumed(coro, waiting)), context=context)
    finished: T = loop.run_until_complete(task)
    return finished


class _Resumed:
    """The rest of a coroutine that ran up to its first wait (``waiting``) outside a task."""

    __slots__ = ("_coro", "_waiting")

    def __init__(self, coro: Coroutine[Any, Any, Any], waiting: object) -> None:
        self._coro = coro
        self._waiting = waiting

    def __await__(self) -> Generator[Any, None, Any]:
        coro, waiting = self._coro, self._waiting
        while True:
            # What the coroutine waits for goes to the task running this, and the task's
            # answer (a wake-up, or an exception such as a cancellation) back to it.
            try:
                yield waiting
            except BaseException as exc:
                step = functools.partial(coro.throw, exc)
            else:
                step = functools.partial(coro.send, None)
            try:
                waiting = step()
            except StopIteration as done:
                return done.value


async def _carry_on(resumed: _Resumed) -> Any:
    return await resumed


def blocking_twin(
    async_function: Callable[P, Coroutine[Any, Any, T]], doc: str, *, here: bool = False
) -> Callable[P, T]:
    """The blocking twin of ``async_function``, documented by ``doc``.

    It takes the same parameters (its signature and type hints are those of ``async_function``),
    is named without the ``_async`` suffix and runs ``async_function`` to completion with
    :func:`sync` (with :func:`sync_here` if ``here``). Assigned in a class body, it is a method
    like any other: one implementation serves the blocking and the async spelling of the API.
    """
    run = sync_here if here else sync

    @functools.wraps(async_function)
    def twin(*args: P.args, **kwargs: P.kwargs) -> T:
        return run(async_function(*args, **kwargs))

    twin.__name__ = async_function.__name__.removesuffix("_async")
    twin.__qualname__ = async_function.__qualname__.removesuffix("_async")
    twin.__doc__ = doc
    return twin


def blocking_class_twin(
    async_method: Callable[Concatenate[type[C], P], Coroutine[Any, Any, T]], doc: str
) -> classmethod[C, P, T]:
    """The blocking twin of the classmethod ``async_method``, as :func:`blocking_twin`.

    Assigned in the class body below ``async_method``, where the name is still the classmethod
    object (type checkers see the function it wraps).
    """
    function = async_method.__func__  # type: ignore[attr-defined]
    return classmethod(blocking_twin(function, doc))


def caller_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning issued by the calling function name its caller.

    The caller is the first frame outside pyicechunk and asyncio: the line that called the
    public method, whether it was awaited or run by its blocking twin (a coroutine run to
    completion on this thread has that line below the event loop's frames).
    """
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_NOT_CALLERS):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level
