"""Store tests: run ``async def`` tests on zarr's I/O loop, and build fresh stores.

No pytest asyncio plugin is installed; zarr's own `StoreTests` and our tests are coroutines,
so this hook drives them through `pyicechunk._sync.sync`, the loop zarr itself uses for stores.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from pyicechunk import Repository, in_memory_storage
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
    """Make the core of a fresh session on a new in-memory repository (writable by default)."""

    def make(read_only: bool = False) -> Any:
        repo = Repository.create(in_memory_storage())
        session = repo.readonly_session("main") if read_only else repo.writable_session("main")
        return session.store._core

    return make


@pytest.fixture
def store() -> IcechunkStore:
    """The store of a fresh writable session on a new in-memory repository."""
    return Repository.create(in_memory_storage()).writable_session("main").store
