"""Store tests: run ``async def`` tests on zarr's I/O loop, and build fresh stores.

No pytest asyncio plugin is installed; zarr's own `StoreTests` and our tests are coroutines,
so this hook drives them through `pyicechunk._sync.sync`, the loop zarr itself uses for stores.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
from _fake_core import FakeCore

from pyicechunk._sync import sync
from pyicechunk.store import IcechunkStore


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    sync(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True


@pytest.fixture
def new_core() -> Callable[..., Any]:
    """Make a fresh session core: writable unless ``read_only=True``."""

    def make(read_only: bool = False) -> Any:
        return FakeCore(read_only=read_only, containers=("s3://bucket/",))

    return make


@pytest.fixture
def store(new_core: Callable[..., Any]) -> IcechunkStore:
    """A store over a fresh writable session."""
    return IcechunkStore(new_core(), for_fork=False)
