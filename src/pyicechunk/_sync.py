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
from collections.abc import Coroutine
from typing import Any, TypeVar

from zarr.core.sync import _get_loop
from zarr.core.sync import sync as _zarr_sync

T = TypeVar("T")

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
