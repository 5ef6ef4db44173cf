"""In-memory storage backend: a dictionary shared by every handle on the same store.

Conditional writes keep their write id with the entry, as an object store keeps it in user
metadata, so lost-response recovery (see :mod:`pyicechunk.storage`) works here too when a
wrapper such as the fault injector loses a response.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pyicechunk.exceptions import ObjectNotFoundError
from pyicechunk.storage import (
    ConditionalWrite,
    ObjectInfo,
    ObjectVersion,
    StorageBackend,
    _check_key,
    logger,
)
from pyicechunk.storage.byte_range import ByteRequest
from pyicechunk.storage.byte_range import resolve as resolve_range

if TYPE_CHECKING:
    from pyicechunk.config import StorageSettings

__all__ = ["InMemoryBackend"]


@dataclass(frozen=True, slots=True)
class _Entry:
    data: bytes
    version: int
    last_modified: datetime
    write_id: str | None


class _Objects:
    """The contents of one in-memory store.

    A threading lock (not an asyncio one) guards it because handles may be used from several
    event loops and threads at once; no await ever happens while it is held.
    """

    def __init__(self, token: str) -> None:
        self.token = token
        self.entries: dict[str, _Entry] = {}
        self.lock = threading.Lock()
        # One counter for the whole store, so a deleted and re-created key never repeats a version.
        self.versions = itertools.count(1)

    def write(self, key: str, data: bytes | memoryview, write_id: str | None = None) -> None:
        self.entries[key] = _Entry(bytes(data), next(self.versions), datetime.now(UTC), write_id)


# Pickled handles carry only the token; unpickling in the same process finds the live store
# here. Weak values, so a store disappears once no handle refers to it.
_registry: weakref.WeakValueDictionary[str, _Objects] = weakref.WeakValueDictionary()
_registry_lock = threading.Lock()


def _new_objects(token: str) -> _Objects:
    objects = _Objects(token)
    _registry[token] = objects
    return objects


def _restore(token: str) -> InMemoryBackend:
    with _registry_lock:
        objects = _registry.get(token)
        if objects is None:
            logger.warning(
                "in-memory storage is process-local: this unpickled handle refers to a store "
                "that does not exist in this process, so it starts empty; use local filesystem "
                "or object storage to share a repository between processes"
            )
            objects = _new_objects(token)
    return InMemoryBackend._with_objects(objects)


class InMemoryBackend(StorageBackend):
    """Objects kept in a dictionary of this process.

    Versions are values of a per-store counter and ``last_modified`` is the time of the write.
    """

    read_only = False

    def __init__(self) -> None:
        with _registry_lock:
            self._objects = _new_objects(secrets.token_hex(16))

    @classmethod
    def _with_objects(cls, objects: _Objects) -> InMemoryBackend:
        backend = cls.__new__(cls)
        backend._objects = objects
        return backend

    def supports_conditional_update(self) -> bool:
        return True

    def _entry(self, key: str) -> _Entry:
        _check_key(key)
        entry = self._objects.entries.get(key)
        if entry is None:
            raise ObjectNotFoundError(key)
        return entry

    async def get(self, key: str, byte_range: ByteRequest | None = None) -> bytes:
        data = self._entry(key).data
        if byte_range is None:
            return data
        start, stop = resolve_range(byte_range, len(data), key)
        return data[start:stop]

    async def get_versioned(self, key: str) -> tuple[bytes, ObjectVersion]:
        entry = self._entry(key)
        return entry.data, ObjectVersion(str(entry.version))

    async def put(self, key: str, data: bytes | memoryview) -> None:
        _check_key(key)
        with self._objects.lock:
            self._objects.write(key, data)

    async def _write_conditionally(self, write: ConditionalWrite) -> bool | ObjectVersion:
        _check_key(write.key)
        with self._objects.lock:
            entry = self._objects.entries.get(write.key)
            if write.version is None:
                if entry is not None:
                    return False
            elif entry is None or str(entry.version) != write.version.token:
                return False
            self._objects.write(write.key, write.data, write.write_id)
            return ObjectVersion(str(self._objects.entries[write.key].version))

    def _stamps_write_ids(self) -> bool:
        return True

    def _may_have_landed(self, error: Exception) -> bool:
        # Nothing is lost between a dictionary and its caller: an error means no write.
        return False

    async def _read_write_id(self, key: str) -> str | None:
        _check_key(key)
        entry = self._objects.entries.get(key)
        return None if entry is None else entry.write_id

    async def delete(self, key: str) -> None:
        await self.delete_many([key])

    async def delete_many(self, keys: Sequence[str]) -> int:
        for key in keys:
            _check_key(key)
        with self._objects.lock:
            return sum(self._objects.entries.pop(key, None) is not None for key in keys)

    async def exists(self, key: str) -> bool:
        _check_key(key)
        return key in self._objects.entries

    async def head(self, key: str) -> ObjectInfo | None:
        _check_key(key)
        entry = self._objects.entries.get(key)
        if entry is None:
            return None
        return ObjectInfo(key, len(entry.data), entry.last_modified)

    async def list(self, prefix: str) -> list[ObjectInfo]:
        with self._objects.lock:
            items = [
                ObjectInfo(key, len(entry.data), entry.last_modified)
                for key, entry in self._objects.entries.items()
                if key.startswith(prefix)
            ]
        items.sort(key=lambda info: info.key)
        return items

    def default_settings(self) -> StorageSettings:
        return self._local_settings(1)

    def __repr__(self) -> str:
        return "InMemoryObjectStoreBackend"

    def _storage_fields(self) -> tuple[tuple[str, str], ...]:
        return (("type", "in-memory"),)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (self._objects.token,))
