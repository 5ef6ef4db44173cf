"""Helpers shared by the API-parity tests (imported as ``parity``).

Every test in this folder receives the implementation under test as the ``ic`` fixture and uses
only ``ic.<name>``, zarr and numpy, so the same test body runs against the reference (icechunk
1.1.21) and against pyicechunk.  Where pyicechunk deliberately behaves differently, the test
looks the difference up in :data:`DIFFERS` and asserts the behaviour each side intends.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine
from types import ModuleType
from typing import Any, TypeVar

import numpy as np
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.buffer.cpu import Buffer

IMPLEMENTATIONS = ["icechunk", "pyicechunk"]
INITIAL_SNAPSHOT_ID = "1CECHNKREP0F1RSTCMT0"

# Behaviours where pyicechunk intentionally departs from icechunk 1.1.21.  The tests that
# touch one of these assert the reference's behaviour under the "icechunk" param and ours under
# the "pyicechunk" param.
DIFFERS: dict[str, str] = {
    "readonly_store_delete": (
        "store.delete/delete_dir/clear on a read-only session raise 'cannot write to read-only "
        "store' in pyicechunk; the reference silently mutates the session's in-memory view"
    ),
    "get_partial_values_missing_key": (
        "get_partial_values returns None for a missing key in pyicechunk; the reference raises "
        "TypeError"
    ),
    "compression_config_repr": (
        "CompressionConfig's repr shows the algorithm that is set in pyicechunk; the reference "
        "always prints algorithm=None"
    ),
    "typed_errors": (
        "pyicechunk's errors are icechunk 2.x's typed tree: ConflictError and RebaseFailedError "
        "are IcechunkError subclasses, every error has a kind, args are (message, kind) when a "
        'kind was given, and reprs are qualified (icechunk.IcechunkError(message="m", '
        'kind="unknown"))'
    ),
    "reprs_2x": (
        "pyicechunk prints icechunk 2.x's structured reprs: SnapshotInfo, ManifestFileInfo, "
        "Session, IcechunkStore and Repository as <icechunk.Class> blocks (the commit message "
        "whole); config classes have 2.x's repr (the qualified constructor call, one field a "
        "line, every field) and str() block"
    ),
    "fork_errors_2x": (
        "pyicechunk raises icechunk 2.x's errors where a fork cannot act: commit/amend on a "
        "fork SessionStateError commit-not-allowed, flush IcechunkError (kind unknown), merging "
        "a plain session into a fork SessionStateError merge-not-allowed, forking a read-only "
        "session SessionStateError cannot-fork-read-only-session, and a session merges plain "
        "sessions as well as forks; 1.1.21 raises TypeError / ValueError"
    ),
    "fork_dirty_2x": (
        "pyicechunk forks a session with uncommitted changes as icechunk 2.x does (the fork "
        "starts from an anonymous snapshot of them); 1.1.21 refuses with a ValueError"
    ),
    "amend_and_allow_empty": (
        "pyicechunk has Session.amend and commit(allow_empty=True) (icechunk 2.x features); "
        "1.1.21 has neither"
    ),
}

T = TypeVar("T")


def is_ours(ic: ModuleType) -> bool:
    """True when ``ic`` is pyicechunk (for the tests keyed by :data:`DIFFERS`)."""
    return ic.__name__ == "pyicechunk"


def differs(ic: ModuleType, key: str) -> bool:
    """Whether ``ic`` takes pyicechunk's side of the documented difference ``key``."""
    assert key in DIFFERS, f"undocumented difference {key!r}"
    return is_ours(ic)


def create_repo(ic: ModuleType, storage: Any, **kwargs: Any) -> Any:
    """``ic.Repository.create(storage, **kwargs)`` in the format icechunk 1.1.21 writes.

    pyicechunk creates spec-2 repositories by default, as icechunk 2.x does; this suite compares
    with 1.1.21, so pyicechunk's side asks for spec 1 (``spec_version=1``).
    """
    if is_ours(ic):
        kwargs.setdefault("spec_version", 1)
    return ic.Repository.create(storage, **kwargs)


def on_spec_2(ic: ModuleType, repo: Any) -> bool:
    """Whether ``repo`` is a spec-2 repository (only pyicechunk's can be, in this suite).

    The storage matrix runs these tests on spec 2 as well; where icechunk 2.x deliberately
    answers differently from 1.1.21 (its messages, ref names with ``/``), they assert 2.x's
    answer there.
    """
    return is_ours(ic) and int(repo.spec_version) == 2


def msg(text: str) -> str:
    """A ``pytest.raises(match=...)`` pattern for a literal message fragment."""
    return re.escape(text)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous test code."""
    return asyncio.run(coro)


def buf(data: bytes) -> Buffer:
    """A zarr CPU buffer holding ``data``."""
    return Buffer.from_bytes(data)


def proto() -> Any:
    """The default zarr buffer prototype, as the store's read methods expect it."""
    return default_buffer_prototype()


async def collect(ait: Any) -> list[Any]:
    """Drain an async iterator into a list."""
    return [x async for x in ait]


def commit_array(
    repo: Any,
    path: str = "a",
    values: np.ndarray | None = None,
    chunks: tuple[int, ...] = (1,),
    message: str = "write array",
    branch: str = "main",
) -> str:
    """Create root group + array ``path`` with ``values`` on ``branch`` and commit it."""
    data = np.arange(1, 5, dtype="i4") if values is None else values
    session = repo.writable_session(branch)
    root = zarr.open_group(session.store, mode="a")
    arr = root.create_array(path, shape=data.shape, chunks=chunks, dtype=data.dtype)
    arr[...] = data
    return str(session.commit(message))


def write_values(
    repo: Any, path: str, selection: Any, value: Any, message: str, branch: str = "main"
) -> str:
    """Write ``value`` into ``path[selection]`` on ``branch`` and commit."""
    session = repo.writable_session(branch)
    arr = zarr.open_array(session.store, path=path, mode="r+")
    arr[selection] = value
    return str(session.commit(message))
