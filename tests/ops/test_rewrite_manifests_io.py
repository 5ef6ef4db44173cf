"""What a manifest rewrite reads and writes: every new manifest in one batch, and a manifest
carried over unchanged encodes to the old one's bytes with only its id replaced."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import zarr

import pyicechunk as icechunk
from pyicechunk.format.header import FileType, open_object
from pyicechunk.format.ids import decode_id
from pyicechunk.storage import Storage
from pyicechunk.storage.local import LocalFileSystemBackend

ARRAYS = 5


class _BatchRecorder(LocalFileSystemBackend):
    """The real local backend, noting the keys of each batch of writes."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.batches: list[list[str]] = []

    async def put_many(self, items: Sequence[tuple[str, bytes | memoryview]]) -> None:
        self.batches.append([key for key, _ in items])
        await super().put_many(items)


def _content(root: Path, manifest_id: str) -> bytes:
    key = f"manifests/{manifest_id}"
    return open_object((root / key).read_bytes(), FileType.MANIFEST, key).content


@pytest.mark.parametrize("spec_version", [1, 2])
def test_rewrite_writes_one_batch_of_identical_manifests(tmp_path: Path, spec_version: int) -> None:
    root = tmp_path / "repo"
    repo = icechunk.Repository.create(
        icechunk.local_filesystem_storage(str(root)), spec_version=spec_version
    )
    session = repo.writable_session("main")
    for i in range(ARRAYS):
        arr = zarr.create_array(session.store, name=f"a{i}", shape=(6,), chunks=(2,), dtype="i4")
        arr[: 2 * (i % 3 + 1)] = np.arange(2 * (i % 3 + 1)) + i  # 1 to 3 chunks, inline
    tip = session.commit("arrays")
    old = {m.id for m in repo.lookup_snapshot(tip).manifests}

    # A cold repository: the old manifests are read from storage, not from a cache.
    backend = _BatchRecorder(str(root))
    cold = icechunk.Repository.open(Storage.from_backend(backend))
    new = cold.rewrite_manifests("rewrite", branch="main")
    written = {m.id for m in cold.lookup_snapshot(new).manifests}
    assert len(backend.batches) == 1
    assert sorted(backend.batches[0]) == sorted(f"manifests/{m}" for m in written)
    assert len(written) == ARRAYS and written.isdisjoint(old)

    # Each new manifest is an old one with another id: the same refs, encoded the same way.
    by_body = {}
    for manifest_id in old:
        content = _content(root, manifest_id)
        by_body[content.replace(decode_id(manifest_id, 12), b"\0" * 12)] = manifest_id
    for manifest_id in written:
        content = _content(root, manifest_id)
        assert content.replace(decode_id(manifest_id, 12), b"\0" * 12) in by_body
    store = cold.readonly_session("main").store
    for i in range(ARRAYS):
        n = 2 * (i % 3 + 1)
        np.testing.assert_array_equal(zarr.open_array(store, path=f"a{i}")[:n], np.arange(n) + i)
