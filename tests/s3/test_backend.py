"""The obstore backend against a real S3 server (moto in its own process)."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import pytest
from s3_helpers import s3_kwargs

from pyicechunk.config import StorageConcurrencySettings, StorageSettings
from pyicechunk.storage import (
    ObjectVersion,
    RangeByteRequest,
    Storage,
    StorageBackend,
    SuffixByteRequest,
)
from pyicechunk.testing.storage import StorageTests


class TestS3Backend(StorageTests):
    @pytest.fixture
    def storage_backend(self, s3_storage_handle: Storage) -> StorageBackend:
        return s3_storage_handle._backend

    def test_version_changes_on_identical_rewrite(self, storage_backend: StorageBackend) -> None:
        """S3 ETags are content hashes: an identical rewrite keeps the version (unlike files).

        That ABA case is harmless for refs (the same bytes name the same snapshot); a
        different rewrite must still invalidate the version.
        """

        async def run() -> None:
            key = "config.yaml"
            await storage_backend.put(key, b"same")
            _, before = await storage_backend.get_versioned(key)
            await storage_backend.put(key, b"same")
            _, after = await storage_backend.get_versioned(key)
            assert before == after
            await storage_backend.put(key, b"different")
            assert not await storage_backend.put_if_version(key, b"lost update", before)
            assert await storage_backend.get(key) == b"different"

        asyncio.run(run())

    def test_storage_handle_pickles(self, storage_backend: StorageBackend) -> None:
        storage = Storage.from_backend(storage_backend)
        asyncio.run(storage_backend.put("config.yaml", b"shared"))
        copy = pickle.loads(pickle.dumps(storage))
        assert repr(copy) == repr(storage)
        assert repr(storage).startswith("<icechunk.Storage>\ntype: S3 (native)\nbucket: ")
        assert asyncio.run(copy._backend.get("config.yaml")) == b"shared"


def test_large_reads_split_into_concurrent_ranges(s3_server: Any, s3_bucket: str) -> None:
    from pyicechunk.storage import s3_storage

    backend = s3_storage(**s3_kwargs(s3_server, s3_bucket, "big"))._backend
    settings = StorageSettings(
        concurrency=StorageConcurrencySettings(
            max_concurrent_requests_for_object=3, ideal_concurrent_request_size=1000
        )
    )
    small_parts = backend.with_settings(settings)
    data = bytes(range(256)) * 40  # 10240 bytes: 1 request + up to 3 parallel parts
    asyncio.run(small_parts.put("chunks/X", data))
    assert asyncio.run(small_parts.get("chunks/X")) == data
    assert asyncio.run(small_parts.get("chunks/X", RangeByteRequest(5, 9000))) == data[5:9000]
    assert asyncio.run(small_parts.get("chunks/X", SuffixByteRequest(4000))) == data[-4000:]
    assert asyncio.run(small_parts.get("chunks/X", RangeByteRequest(10240, 10240))) == b""
    asyncio.run(small_parts.put("chunks/EMPTY", b""))
    assert asyncio.run(small_parts.get("chunks/EMPTY")) == b""
    # with_settings keeps the store and travels in pickles with its settings
    copy = pickle.loads(pickle.dumps(small_parts))
    assert asyncio.run(copy.get("chunks/X")) == data
    assert copy._eff.ideal_concurrent_request_size == 1000  # type: ignore[attr-defined]


def test_unconditional_settings_fall_back_to_plain_puts(s3_server: Any, s3_bucket: str) -> None:
    from pyicechunk.storage import s3_storage

    backend = s3_storage(**s3_kwargs(s3_server, s3_bucket, "p"))._backend
    plain = backend.with_settings(
        StorageSettings(unsafe_use_conditional_create=False, unsafe_use_conditional_update=False)
    )
    asyncio.run(plain.put("refs/x", b"1"))
    assert asyncio.run(plain.put_if_absent("refs/x", b"2")) is True
    assert asyncio.run(plain.put_if_version("refs/x", b"3", ObjectVersion("stale"))) is True
    assert asyncio.run(plain.get("refs/x")) == b"3"
    assert not plain.supports_conditional_update()
    # the default backend refuses both
    assert asyncio.run(backend.put_if_absent("refs/x", b"4")) is False
    assert asyncio.run(backend.put_if_version("refs/x", b"5", ObjectVersion("stale"))) is False
