"""Conformance tests for :class:`~pyicechunk.storage.StorageBackend` implementations.

Subclass :class:`StorageTests` in a test module and override the ``storage_backend`` fixture to
return a new, empty backend::

    class TestMyBackend(StorageTests):
        @pytest.fixture
        def storage_backend(self, tmp_path):
            return MyBackend(tmp_path)

Each test runs its coroutine with :func:`asyncio.run`, so no pytest plugin for asyncio is needed,
and every test uses a fresh event loop, which also checks that backends keep no loop-bound state.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import pickle
import threading
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from pyicechunk.exceptions import IcechunkError, ObjectNotFoundError
from pyicechunk.storage import (
    ByteRequest,
    ObjectVersion,
    OffsetByteRequest,
    RangeByteRequest,
    Storage,
    StorageBackend,
    SuffixByteRequest,
)
from pyicechunk.testing.faults import FaultPlan, FaultyBackend, InjectedFault

__all__ = ["StorageTests"]

_T = TypeVar("_T")
_S = TypeVar("_S")


def _async_test(test: Callable[..., Coroutine[Any, Any, _T]]) -> Callable[..., _T]:
    """Run an async test method on a new event loop (pytest sees the original signature)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> _T:
        return asyncio.run(test(*args, **kwargs))

    return run


def _async_tests(suite: type[_S]) -> type[_S]:
    """Make every ``async def test_*`` of ``suite`` a test that runs it with :func:`_async_test`."""
    for name, member in list(vars(suite).items()):
        if name.startswith("test_") and inspect.iscoroutinefunction(member):
            setattr(suite, name, _async_test(member))
    return suite


_DATA = bytes(range(256)) * 4  # 1 KiB with every byte value, so ranges are recognisable


async def _increment(backend: StorageBackend, key: str) -> int:
    """Add one to a decimal counter object with get_versioned + put_if_version, retrying.

    Returns how many compare-and-swap attempts lost.
    """
    lost = 0
    while True:
        data, version = await backend.get_versioned(key)
        if await backend.put_if_version(key, str(int(data) + 1).encode(), version):
            return lost
        lost += 1


@_async_tests
class StorageTests:
    """Behaviour every storage backend must have; subclass and override ``storage_backend``."""

    @pytest.fixture
    def storage_backend(self) -> StorageBackend:
        """A new, empty, writable backend; subclasses must override this fixture."""
        raise NotImplementedError("override the storage_backend fixture in the subclass")

    # --- plain reads and writes -----------------------------------------------------------

    async def test_get_missing_raises_object_not_found(
        self, storage_backend: StorageBackend
    ) -> None:
        with pytest.raises(ObjectNotFoundError) as info:
            await storage_backend.get("chunks/NOPE")
        assert info.value.key == "chunks/NOPE"
        with pytest.raises(ObjectNotFoundError):
            await storage_backend.get_versioned("refs/branch.main/ref.json")
        with pytest.raises(ObjectNotFoundError):
            await storage_backend.get("chunks/NOPE", RangeByteRequest(0, 1))

    async def test_put_then_get(self, storage_backend: StorageBackend) -> None:
        await storage_backend.put("chunks/A", _DATA)
        await storage_backend.put("empty", b"")
        await storage_backend.put("a/b/c/d/e", b"deep")
        assert await storage_backend.get("chunks/A") == _DATA
        assert await storage_backend.get("empty") == b""
        assert await storage_backend.get("a/b/c/d/e") == b"deep"
        assert (await storage_backend.get_versioned("chunks/A"))[0] == _DATA

    async def test_put_overwrites(self, storage_backend: StorageBackend) -> None:
        await storage_backend.put("config.yaml", b"first version, longer")
        await storage_backend.put("config.yaml", b"second")
        assert await storage_backend.get("config.yaml") == b"second"

    async def test_put_accepts_bytes_like(self, storage_backend: StorageBackend) -> None:
        await storage_backend.put("a", bytearray(b"from bytearray"))  # type: ignore[arg-type]
        await storage_backend.put("b", memoryview(b"from memoryview"))
        assert await storage_backend.get("a") == b"from bytearray"
        assert await storage_backend.get("b") == b"from memoryview"

    @pytest.mark.parametrize(
        ("byte_range", "expected"),
        [
            (RangeByteRequest(10, 20), slice(10, 20)),
            (RangeByteRequest(0, 1), slice(0, 1)),
            (RangeByteRequest(1000, 5000), slice(1000, 1024)),
            (RangeByteRequest(7, 7), slice(7, 7)),
            (RangeByteRequest(1024, 1030), slice(1024, 1024)),
            (OffsetByteRequest(0), slice(0, None)),
            (OffsetByteRequest(1000), slice(1000, None)),
            (OffsetByteRequest(1024), slice(1024, None)),
            (SuffixByteRequest(5), slice(1019, None)),
            (SuffixByteRequest(0), slice(1024, None)),
            (SuffixByteRequest(4096), slice(0, None)),
        ],
    )
    async def test_get_byte_range(
        self, storage_backend: StorageBackend, byte_range: ByteRequest, expected: slice
    ) -> None:
        await storage_backend.put("chunks/R", _DATA)
        assert await storage_backend.get("chunks/R", byte_range) == _DATA[expected]

    @pytest.mark.parametrize(
        ("byte_range", "message"),
        [
            (RangeByteRequest(1025, 1030), "starts at byte 1025 but the object has only 1024"),
            (OffsetByteRequest(2048), "starts at byte 2048 but the object has only 1024"),
            (RangeByteRequest(5, 2), "start=5, end=2"),
            (RangeByteRequest(-1, 2), "start=-1"),
            (OffsetByteRequest(-3), "offset=-3 is negative"),
            (SuffixByteRequest(-3), "suffix=-3 is negative"),
        ],
    )
    async def test_bad_byte_range_raises(
        self, storage_backend: StorageBackend, byte_range: ByteRequest, message: str
    ) -> None:
        await storage_backend.put("chunks/R", _DATA)
        with pytest.raises(IcechunkError, match="invalid byte range for object chunks/R") as info:
            await storage_backend.get("chunks/R", byte_range)
        assert message in info.value.message
        assert not isinstance(info.value, ObjectNotFoundError)

    @pytest.mark.parametrize("key", ["", "/abs", "a//b", "../escape", "a/../../b", "a/./b", "a/"])
    async def test_invalid_keys_rejected(self, storage_backend: StorageBackend, key: str) -> None:
        for operation in (
            storage_backend.put(key, b"x"),
            storage_backend.put_if_absent(key, b"x"),
            storage_backend.get(key),
            storage_backend.exists(key),
            storage_backend.delete(key),
        ):
            with pytest.raises(IcechunkError, match="invalid storage key"):
                await operation
        assert await storage_backend.list("") == []

    # --- conditional writes ---------------------------------------------------------------

    async def test_put_if_absent(self, storage_backend: StorageBackend) -> None:
        key = "refs/tag.v1/ref.json"
        assert await storage_backend.put_if_absent(key, b"one")
        assert not await storage_backend.put_if_absent(key, b"two")
        assert await storage_backend.get(key) == b"one"
        await storage_backend.delete(key)
        assert await storage_backend.put_if_absent(key, b"three")
        assert await storage_backend.get(key) == b"three"

    async def test_put_if_absent_race_has_one_winner(self, storage_backend: StorageBackend) -> None:
        key = "refs/branch.race/ref.json"
        payloads = [f"writer {i}".encode() for i in range(32)]
        won = await asyncio.gather(*(storage_backend.put_if_absent(key, p) for p in payloads))
        assert sum(won) == 1
        assert await storage_backend.get(key) == payloads[won.index(True)]

    async def test_put_if_version_swaps_once(self, storage_backend: StorageBackend) -> None:
        key = "refs/branch.main/ref.json"
        await storage_backend.put(key, b"v1")
        data, version = await storage_backend.get_versioned(key)
        assert data == b"v1"
        assert await storage_backend.put_if_version(key, b"v2", version)
        # The version read before the swap is stale now.
        assert not await storage_backend.put_if_version(key, b"v3", version)
        data, newer = await storage_backend.get_versioned(key)
        assert (data, newer != version) == (b"v2", True)
        assert await storage_backend.put_if_version(key, b"v4", newer)
        assert await storage_backend.get(key) == b"v4"

    async def test_put_copy_holds_the_version_read(self, storage_backend: StorageBackend) -> None:
        await storage_backend.put("repo", b"state one")
        data, version = await storage_backend.get_versioned("repo")
        await storage_backend.put_copy("overwritten/a", data, source="repo", version=version)
        # The source moved on after the read: the copy still holds what was read.
        assert await storage_backend.put_if_version("repo", b"state two", version)
        await storage_backend.put_copy("overwritten/b", data, source="repo", version=version)
        await storage_backend.put_copy("overwritten/c", b"given", source="repo", version=None)
        assert await storage_backend.get("overwritten/a") == b"state one"
        assert await storage_backend.get("overwritten/b") == b"state one"
        assert await storage_backend.get("overwritten/c") == b"given"
        assert await storage_backend.get("repo") == b"state two"

    async def test_version_changes_on_identical_rewrite(
        self, storage_backend: StorageBackend
    ) -> None:
        key = "config.yaml"
        await storage_backend.put(key, b"same")
        _, before = await storage_backend.get_versioned(key)
        await storage_backend.put(key, b"same")
        _, after = await storage_backend.get_versioned(key)
        assert before != after
        assert not await storage_backend.put_if_version(key, b"lost update", before)
        assert await storage_backend.get(key) == b"same"

    async def test_put_if_version_on_missing_object(self, storage_backend: StorageBackend) -> None:
        key = "refs/branch.gone/ref.json"
        assert not await storage_backend.put_if_version(key, b"x", ObjectVersion("1"))
        await storage_backend.put(key, b"x")
        _, version = await storage_backend.get_versioned(key)
        await storage_backend.delete(key)
        assert not await storage_backend.put_if_version(key, b"y", version)
        assert not await storage_backend.exists(key)

    async def test_concurrent_compare_and_swap_loses_no_update(
        self, storage_backend: StorageBackend
    ) -> None:
        key = "counter"
        await storage_backend.put(key, b"0")
        assert storage_backend.supports_conditional_update()
        await asyncio.gather(*(_increment(storage_backend, key) for _ in range(40)))
        assert await storage_backend.get(key) == b"40"

    def test_compare_and_swap_from_threads_and_loops(self, storage_backend: StorageBackend) -> None:
        """Each thread runs its own event loop against the same backend object."""
        key = "counter"
        asyncio.run(storage_backend.put(key, b"0"))
        errors: list[BaseException] = []

        def worker() -> None:
            async def increments() -> None:
                for _ in range(15):
                    await _increment(storage_backend, key)

            try:
                asyncio.run(increments())
            except BaseException as e:  # reported by the main thread
                errors.append(e)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert asyncio.run(storage_backend.get(key)) == b"60"

    # --- lost responses to conditional writes ---------------------------------------------

    async def test_conditional_writes_carry_write_ids(
        self, storage_backend: StorageBackend
    ) -> None:
        key = "refs/branch.main/ref.json"
        assert await storage_backend._read_write_id(key) is None  # no object
        assert await storage_backend.put_if_absent(key, b"1")
        created = await storage_backend._read_write_id(key)
        _, version = await storage_backend.get_versioned(key)
        assert await storage_backend.put_if_version(key, b"2", version)
        updated = await storage_backend._read_write_id(key)
        if storage_backend._stamps_write_ids():
            assert created is not None and updated is not None
            assert uuid.UUID(created).version == uuid.UUID(updated).version == 4
            assert created != updated  # one id per write
        else:
            assert created is None and updated is None
        await storage_backend.put(key, b"3")  # unconditional writes carry none
        assert await storage_backend._read_write_id(key) is None

    @pytest.mark.parametrize("resend", [False, True], ids=["lost", "lost-then-resent"])
    async def test_lost_response_to_a_conditional_write_is_success(
        self, storage_backend: StorageBackend, resend: bool
    ) -> None:
        """The write lands and its response is lost (and with ``resend`` the same write is sent
        again and fails its precondition against itself): the call still succeeds, once."""
        plan = FaultPlan(
            rates={"put_if_absent": 1.0, "put_if_version": 1.0}, lost_ack=1.0, resend=resend
        )
        lossy = FaultyBackend(storage_backend, plan)
        key = "refs/tag.v1/ref.json"
        if not storage_backend._stamps_write_ids():
            # Nothing to recognise the write by: the loss surfaces as before.
            if resend:
                assert not await lossy.put_if_absent(key, b"one")
            else:
                with pytest.raises(InjectedFault):
                    await lossy.put_if_absent(key, b"one")
            assert await storage_backend.get(key) == b"one"
            return
        assert await lossy.put_if_absent(key, b"one")
        _, version = await storage_backend.get_versioned(key)
        assert await lossy.put_if_version(key, b"two", version)
        assert await storage_backend.get(key) == b"two"
        assert lossy.injected["put_if_absent"] == lossy.injected["put_if_version"] == 1

    @pytest.mark.parametrize("resend", [False, True], ids=["lost", "lost-then-resent"])
    async def test_lost_response_to_a_genuine_conflict_is_no_success(
        self, storage_backend: StorageBackend, resend: bool
    ) -> None:
        """Another writer's object fails the precondition: never taken for our own write."""
        key = "refs/tag.v1/ref.json"
        assert await storage_backend.put_if_absent(key, b"theirs")
        _, stale = await storage_backend.get_versioned(key)
        assert await storage_backend.put_if_version(key, b"theirs again", stale)
        plan = FaultPlan(
            rates={"put_if_absent": 1.0, "put_if_version": 1.0}, lost_ack=1.0, resend=resend
        )
        lossy = FaultyBackend(storage_backend, plan)
        for attempt in (lossy.put_if_absent(key, b"mine"), lossy.put_if_version(key, b"m", stale)):
            if resend:  # the resent write's failed precondition is the answer
                assert not await attempt
            else:  # only the transport error is known: it stands
                with pytest.raises(InjectedFault):
                    await attempt
        assert await storage_backend.get(key) == b"theirs again"

    async def test_failed_read_back_is_an_error_not_an_answer(
        self, storage_backend: StorageBackend
    ) -> None:
        key = "refs/tag.v1/ref.json"
        plan = FaultPlan(rates={"put_if_absent": 1.0, "head": 1.0}, lost_ack=1.0, resend=True)
        lossy = FaultyBackend(storage_backend, plan)
        if not storage_backend._stamps_write_ids():
            assert not await lossy.put_if_absent(key, b"one")  # no read-back is attempted
            return
        with pytest.raises(IcechunkError, match="reading the object back") as info:
            await lossy.put_if_absent(key, b"one")
        assert f"check {key} before retrying" in info.value.message
        assert await storage_backend.get(key) == b"one"  # it did land; nobody guessed

    # --- delete, exists, head, list -------------------------------------------------------

    async def test_delete(self, storage_backend: StorageBackend) -> None:
        await storage_backend.put("chunks/A", b"a")
        await storage_backend.delete("chunks/A")
        assert not await storage_backend.exists("chunks/A")
        with pytest.raises(ObjectNotFoundError):
            await storage_backend.get("chunks/A")
        await storage_backend.delete("chunks/A")  # missing is fine
        await storage_backend.delete("never/existed")

    async def test_delete_many_counts_deleted(self, storage_backend: StorageBackend) -> None:
        keys = ["chunks/A", "chunks/B", "manifests/C", "snapshots/D"]
        for key in keys:
            await storage_backend.put(key, key.encode())
        deleted = await storage_backend.delete_many([*keys[:3], "chunks/MISSING", "nodir/X"])
        assert deleted == 3
        assert [info.key for info in await storage_backend.list("")] == ["snapshots/D"]
        assert await storage_backend.delete_many([]) == 0

    async def test_exists_and_head(self, storage_backend: StorageBackend) -> None:
        before = datetime.now(UTC) - timedelta(seconds=2)
        await storage_backend.put("manifests/M", _DATA)
        after = datetime.now(UTC) + timedelta(seconds=2)
        assert await storage_backend.exists("manifests/M")
        assert not await storage_backend.exists("manifests/N")
        assert not await storage_backend.exists("manifests")  # a prefix is not an object
        info = await storage_backend.head("manifests/M")
        assert info is not None
        assert (info.key, info.size) == ("manifests/M", len(_DATA))
        assert info.last_modified.tzinfo is not None
        assert before <= info.last_modified <= after
        assert await storage_backend.head("manifests/N") is None
        assert await storage_backend.head("manifests") is None

    async def test_list_sorted_with_prefixes(self, storage_backend: StorageBackend) -> None:
        keys = [
            "snapshots/1CECHNKREP0F1RSTCMT0",
            "refs/tag.v1/ref.json",
            "refs/branch.main/ref.json",
            "refs/branch.dev/ref.json",
            "refs/tag.v1/ref.json.deleted",
            "chunks/B",
            "chunks/A",
            "chunks/AB",
            "config.yaml",
            "chunksX",
        ]
        for size, key in enumerate(keys):
            await storage_backend.put(key, b"x" * size)

        async def listed(prefix: str) -> list[str]:
            return [info.key for info in await storage_backend.list(prefix)]

        assert await listed("") == sorted(keys)
        assert await listed("refs/") == sorted(k for k in keys if k.startswith("refs/"))
        assert await listed("refs/branch.") == [
            "refs/branch.dev/ref.json",
            "refs/branch.main/ref.json",
        ]
        assert await listed("chunks/") == ["chunks/A", "chunks/AB", "chunks/B"]
        assert await listed("chunks/A") == ["chunks/A", "chunks/AB"]
        assert await listed("chunks") == ["chunks/A", "chunks/AB", "chunks/B", "chunksX"]
        assert await listed("refs/tag.v1/ref.json") == [
            "refs/tag.v1/ref.json",
            "refs/tag.v1/ref.json.deleted",
        ]
        assert await listed("transactions/") == []
        assert await listed("nothing") == []
        sizes = {info.key: info.size for info in await storage_backend.list("")}
        assert sizes == {key: size for size, key in enumerate(keys)}

    async def test_list_empty_store(self, storage_backend: StorageBackend) -> None:
        assert await storage_backend.list("") == []
        assert await storage_backend.list("refs/") == []

    # --- handles --------------------------------------------------------------------------

    async def test_pickled_backend_sees_the_same_objects(
        self, storage_backend: StorageBackend
    ) -> None:
        await storage_backend.put("refs/branch.main/ref.json", b"before")
        copy = pickle.loads(pickle.dumps(storage_backend))
        assert type(copy) is type(storage_backend)
        assert repr(copy) == repr(storage_backend)
        assert await copy.get("refs/branch.main/ref.json") == b"before"
        await copy.put("chunks/NEW", b"written through the copy")
        assert await storage_backend.get("chunks/NEW") == b"written through the copy"

    def test_storage_handle_pickles(self, storage_backend: StorageBackend) -> None:
        storage = Storage.from_backend(storage_backend)
        asyncio.run(storage_backend.put("config.yaml", b"shared"))
        copy = pickle.loads(pickle.dumps(storage))
        assert isinstance(copy, Storage)
        assert repr(copy) == repr(storage)
        assert repr(storage).startswith("<icechunk.Storage>\ntype: ")
        assert asyncio.run(copy.backend.get("config.yaml")) == b"shared"

    def test_is_writable(self, storage_backend: StorageBackend) -> None:
        assert storage_backend.read_only is False
