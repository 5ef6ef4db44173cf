from __future__ import annotations

import asyncio
import gc
import logging
import pickle
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import icechunk
import pytest

from pyicechunk.storage import Storage, StorageBackend, in_memory_storage
from pyicechunk.storage.memory import InMemoryBackend
from pyicechunk.testing.storage import StorageTests


class TestInMemoryStorage(StorageTests):
    @pytest.fixture
    def storage_backend(self) -> StorageBackend:
        return InMemoryBackend()


def test_repr() -> None:
    # icechunk 2.x's block (tests/reprs2 compares it with icechunk 2.3.0's).
    assert repr(in_memory_storage()) == "<icechunk.Storage>\ntype: in-memory\n"
    assert repr(Storage.new_in_memory()) == "<icechunk.Storage>\ntype: in-memory\n"


def test_each_call_is_a_new_store() -> None:
    first, second = in_memory_storage(), in_memory_storage()
    asyncio.run(first._backend.put("a", b"1"))
    assert asyncio.run(second._backend.exists("a")) is False


_CHILD = """
import asyncio, logging, pickle, sys
messages = []
handler = logging.Handler()
handler.emit = lambda record: messages.append(record.getMessage())
logging.getLogger("pyicechunk.storage").addHandler(handler)
storage = pickle.loads(sys.stdin.buffer.read())
print(repr(storage).replace("\\n", " | "))
print(len(asyncio.run(storage._backend.list(""))))
again = pickle.loads(pickle.dumps(storage))
asyncio.run(storage._backend.put("x", b"1"))
print(asyncio.run(again._backend.exists("x")))
print(len(messages))
print(messages[0])
"""


def test_unpickled_in_another_process_is_empty_and_warns() -> None:
    storage = in_memory_storage()
    asyncio.run(storage._backend.put("refs/branch.main/ref.json", b"{}"))
    result = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=pickle.dumps(storage),
        capture_output=True,
        check=True,
        timeout=60,
    )
    lines = result.stdout.decode().splitlines()
    # Empty store in the child; copies made there share the child's store; one warning only.
    assert lines[:4] == ["<icechunk.Storage> | type: in-memory | ", "0", "True", "1"]
    assert lines[4].startswith("in-memory storage is process-local")


def _warnings_while(action: Callable[[], object]) -> list[logging.LogRecord]:
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("pyicechunk.storage")
    logger.addHandler(handler)
    try:
        action()
    finally:
        logger.removeHandler(handler)
    return records


def test_same_process_unpickling_shares_and_does_not_warn() -> None:
    storage = in_memory_storage()
    asyncio.run(storage._backend.put("a", b"1"))
    copies: list[Storage] = []
    records = _warnings_while(lambda: copies.append(pickle.loads(pickle.dumps(storage))))
    assert records == []
    assert asyncio.run(copies[0]._backend.get("a")) == b"1"


def test_store_is_freed_with_its_last_handle() -> None:
    storage = in_memory_storage()
    asyncio.run(storage._backend.put("a", b"1"))
    pickled = pickle.dumps(storage)
    del storage
    gc.collect()
    copies: list[Storage] = []
    records = _warnings_while(lambda: copies.append(pickle.loads(pickled)))
    assert [r.levelname for r in records] == ["WARNING"]
    assert asyncio.run(copies[0]._backend.exists("a")) is False


def test_in_memory_default_settings_match_reference() -> None:
    ours = in_memory_storage().default_settings()
    theirs = icechunk.in_memory_storage().default_settings()

    def values(s: Any) -> tuple[Any, ...]:
        # Compared field by field: the config reprs are icechunk 2.x's, not 1.1's.
        c, r = s.concurrency, s.retries
        return (
            c.max_concurrent_requests_for_object,
            c.ideal_concurrent_request_size,
            r.max_tries,
            r.initial_backoff_ms,
            r.max_backoff_ms,
            s.unsafe_use_conditional_create,
            s.unsafe_use_conditional_update,
            s.unsafe_use_metadata,
            s.storage_class,
            s.metadata_storage_class,
            s.chunks_storage_class,
        )

    assert values(ours) == values(theirs)
