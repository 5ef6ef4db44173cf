"""A storage backend wrapper that makes a chosen fraction of calls fail, for robustness tests.

:class:`FaultyBackend` wraps any :class:`~pyicechunk.storage.StorageBackend` and injects
failures per operation kind (``'get'``, ``'put'``, ``'put_if_absent'``, ...). Whether a call
fails is decided by hashing the seed, the operation, the key and how many times that operation
has been called on that key, so a run is reproducible from its seed even when calls interleave
differently between threads::

    from pyicechunk.storage import Storage, in_memory_storage
    from pyicechunk.testing.faults import FaultPlan, FaultyBackend

    inner = in_memory_storage().backend
    faulty = FaultyBackend(inner, FaultPlan(seed=7, rates={"put": 0.1, "get": 0.05}))
    repo = Repository.create(Storage.from_backend(faulty))

A failing write can fail before it reaches the inner backend (nothing happened) or after it
(the write landed but its acknowledgement was lost), which is what a dropped connection does to
a real object store. A conditional write whose acknowledgement is lost is recovered by the
write-id read-back of :class:`~pyicechunk.storage.StorageBackend` (the read-back is a
``'head'`` call, which can fail too); with ``FaultPlan(resend=True)`` it is first sent again
with the same write id, as an SDK's transparent retry does, so that the retry fails its
precondition against the write that landed.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pyicechunk.exceptions import IcechunkError
from pyicechunk.storage import (
    ByteRequest,
    ConditionalWrite,
    ObjectInfo,
    ObjectVersion,
    StorageBackend,
)

if TYPE_CHECKING:
    from pyicechunk.config import StorageSettings

__all__ = ["OPERATIONS", "FaultPlan", "FaultyBackend", "InjectedFault"]

_T = TypeVar("_T")

#: The operation kinds a :class:`FaultPlan` can name.
OPERATIONS = (
    "get",
    "get_versioned",
    "head",
    "exists",
    "list",
    "put",
    "put_if_absent",
    "put_if_version",
    "make_durable",
    "delete",
    "delete_many",
)
_WRITES = frozenset(
    {"put", "put_if_absent", "put_if_version", "make_durable", "delete", "delete_many"}
)

FaultKind = Literal["error", "oserror", "timeout"]


class InjectedFault(IcechunkError):
    """A transient storage failure injected by :class:`FaultyBackend`."""


# What the three fault kinds raise.
_INJECTED = (InjectedFault, ConnectionResetError, TimeoutError)


@dataclass(frozen=True)
class FaultPlan:
    """Which calls a :class:`FaultyBackend` makes fail, and how.

    Parameters
    ----------
    seed
        Makes the choice of failing calls reproducible.
    rates
        Fraction of calls (0 to 1) that fail, by operation kind (see :data:`OPERATIONS`);
        operations not named never fail.
    kind
        ``'error'`` raises :class:`InjectedFault` (an :class:`IcechunkError`), ``'oserror'``
        raises :class:`ConnectionResetError`, ``'timeout'`` waits ``delay`` seconds and then
        raises :class:`TimeoutError`.
    lost_ack
        Fraction of failing writes that fail after the inner backend completed them.
    delay
        Seconds a ``'timeout'`` fault waits before raising.
    resend
        Whether a conditional write whose acknowledgement was lost is sent once more with the
        same write id, whose answer (usually a failed precondition) is then returned instead
        of the fault.
    """

    seed: int = 0
    rates: Mapping[str, float] = field(default_factory=dict)
    kind: FaultKind = "error"
    lost_ack: float = 0.0
    delay: float = 0.05
    resend: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.rates) - set(OPERATIONS)
        if unknown:
            raise ValueError(
                f"unknown operation kinds {sorted(unknown)} in FaultPlan.rates; "
                f"use some of {list(OPERATIONS)}"
            )
        for name, value in [*self.rates.items(), ("lost_ack", self.lost_ack)]:
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"FaultPlan {name} is {value}; it must be between 0 and 1")
        if self.kind not in ("error", "oserror", "timeout"):
            raise ValueError(f"FaultPlan kind {self.kind!r}: use 'error', 'oserror' or 'timeout'")


class _State:
    """Call counts and the on/off switch, shared by a wrapper and its ``with_settings`` twins."""

    def __init__(self) -> None:
        self.enabled = True
        self.injected: Counter[str] = Counter()
        self.calls: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()


def _fraction(*parts: object) -> float:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class FaultyBackend(StorageBackend):
    """Wraps ``inner`` and makes the calls that ``plan`` selects fail.

    Parameters
    ----------
    inner
        The backend that does the real work.
    plan
        Which calls fail, and how.

    Attributes
    ----------
    injected
        How many faults were injected, by operation kind.
    """

    def __init__(self, inner: StorageBackend, plan: FaultPlan) -> None:
        self.inner = inner
        self.plan = plan
        self.read_only = inner.read_only
        self._state = _State()

    @property
    def injected(self) -> Counter[str]:
        return self._state.injected

    @property
    def enabled(self) -> bool:
        """Set to False to pass every call through (to set up or check a repository)."""
        return self._state.enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self._state.enabled = value

    def _decide(self, op: str, key: str) -> tuple[bool, bool]:
        """Whether this call fails, and if so whether after the inner call (a lost ack)."""
        rate = self.plan.rates.get(op, 0.0)
        if not self.enabled or rate == 0.0:
            return False, False
        state = self._state
        with state.lock:
            n = state.calls[op, key]
            state.calls[op, key] = n + 1
        if _fraction(self.plan.seed, op, key, n) >= rate:
            return False, False
        with state.lock:
            state.injected[op] += 1
        after = op in _WRITES and _fraction(self.plan.seed, "ack", op, key, n) < self.plan.lost_ack
        return True, after

    async def _fail(self, op: str, key: str) -> None:
        kind = self.plan.kind
        where = f"{op} {key!r}"
        if kind == "timeout":
            await asyncio.sleep(self.plan.delay)
            raise TimeoutError(f"injected timeout after {self.plan.delay} s in {where}")
        if kind == "oserror":
            raise ConnectionResetError(f"injected connection reset in {where}")
        raise InjectedFault(f"storage error: injected transient failure in {where}; retry")

    async def _run(
        self, op: str, key: str, call: Callable[[], Awaitable[_T]], *, resend: bool = False
    ) -> _T:
        fail, after = self._decide(op, key)
        if fail and not after:
            await self._fail(op, key)
        result = await call()
        if fail and resend:
            return await call()
        if fail:
            await self._fail(op, key)
        return result

    # -- StorageBackend ----------------------------------------------------------------------

    def supports_conditional_update(self) -> bool:
        return self.inner.supports_conditional_update()

    def default_settings(self) -> StorageSettings:
        return self.inner.default_settings()

    def with_settings(self, settings: StorageSettings) -> FaultyBackend:
        """The wrapper around ``inner.with_settings(settings)``, sharing this one's state.

        A shallow copy (not ``copy.copy``, which would go through ``__reduce__``): a subclass
        stays itself and shares its attributes with the original.
        """
        inner = self.inner.with_settings(settings)
        if inner is self.inner:
            return self
        twin = type(self).__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin.inner = inner
        return twin

    async def get(self, key: str, byte_range: ByteRequest | None = None) -> bytes:
        return await self._run("get", key, lambda: self.inner.get(key, byte_range))

    async def get_versioned(self, key: str) -> tuple[bytes, ObjectVersion]:
        return await self._run("get_versioned", key, lambda: self.inner.get_versioned(key))

    async def head(self, key: str) -> ObjectInfo | None:
        return await self._run("head", key, lambda: self.inner.head(key))

    async def exists(self, key: str) -> bool:
        return await self._run("exists", key, lambda: self.inner.exists(key))

    async def list(self, prefix: str) -> list[ObjectInfo]:
        return await self._run("list", prefix, lambda: self.inner.list(prefix))

    async def put(self, key: str, data: bytes | memoryview) -> None:
        await self._run("put", key, lambda: self.inner.put(key, data))

    async def _write_conditionally(self, write: ConditionalWrite) -> bool | ObjectVersion:
        inner = self.inner
        return await self._run(
            "put_if_absent" if write.version is None else "put_if_version",
            write.key,
            lambda: inner._write_conditionally(write),
            resend=self.plan.resend,
        )

    def _stamps_write_ids(self) -> bool:
        return self.inner._stamps_write_ids()

    async def _read_write_id(self, key: str) -> str | None:
        return await self._run("head", key, lambda: self.inner._read_write_id(key))

    def _may_have_landed(self, error: Exception) -> bool:
        # Every injected failure looks like a transport error to the caller.
        return isinstance(error, _INJECTED) or self.inner._may_have_landed(error)

    async def make_durable(self, keys: Sequence[str]) -> None:
        await self._run("make_durable", ",".join(keys), lambda: self.inner.make_durable(keys))

    async def delete(self, key: str) -> None:
        await self._run("delete", key, lambda: self.inner.delete(key))

    async def delete_many(self, keys: Sequence[str]) -> int:
        return await self._run("delete_many", ",".join(keys), lambda: self.inner.delete_many(keys))

    def _storage_fields(self) -> tuple[tuple[str, str], ...]:
        return self.inner._storage_fields()

    def __repr__(self) -> str:
        return f"FaultyBackend({self.inner!r}, {self.plan!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # A copy in another process starts its own call counts from zero.
        return (FaultyBackend, (self.inner, self.plan))
