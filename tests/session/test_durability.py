"""A commit makes everything its snapshot references durable before the branch moves.

The branch moves with the write of ``refs/branch.<name>/ref.json`` in spec 1 and of ``repo`` in
spec 2 (whose backup copy in ``overwritten/`` is one more object that must be durable first).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import zarr

import pyicechunk as icechunk
from pyicechunk.storage import ObjectVersion, Storage
from pyicechunk.storage.local import LocalFileSystemBackend

# The object whose write moves a branch, per spec version.
REF_KEY = {1: "refs/branch.main/ref.json", 2: "repo"}


@pytest.fixture(params=[1, 2], ids=["spec1", "spec2"])
def spec_version(request: pytest.FixtureRequest) -> int:
    version: int = request.param
    return version


class RecordingBackend(LocalFileSystemBackend):
    """The real local backend, noting which objects were synced before each ref write."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.synced: set[str] = set()
        self.synced_before_ref: list[set[str]] = []

    async def make_durable(self, keys: Sequence[str]) -> None:
        await super().make_durable(keys)
        self.synced.update(keys)

    async def put_if_version(
        self, key: str, data: bytes, version: ObjectVersion, *, durable: Sequence[str] = ()
    ) -> bool:
        ok = await super().put_if_version(key, data, version, durable=durable)
        self.synced.update(durable)
        if key.startswith("refs/branch.") or key == "repo":
            self.synced_before_ref.append(set(self.synced))
        return ok


def objects(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_commit_syncs_every_new_object_it_references(tmp_path: Path, spec_version: int) -> None:
    root = tmp_path / "repo"
    backend = RecordingBackend(str(root))
    storage = Storage.from_backend(backend)
    config = icechunk.RepositoryConfig(inline_chunk_threshold_bytes=64)
    repo = icechunk.Repository.create(storage, config, spec_version=spec_version)
    before = objects(root)

    session = repo.writable_session("main")
    group = zarr.group(session.store)
    big = group.create_array("big", shape=(64,), chunks=(16,), dtype="f8", compressors=None)
    big[:] = np.arange(64.0)  # 128-byte chunks: native objects
    small = group.create_array("small", shape=(4,), chunks=(4,), dtype="i1")
    small[:] = 1  # inline
    sid = session.commit("data")

    created = objects(root) - before - {REF_KEY[spec_version]}
    assert any(k.startswith("chunks/") for k in created)
    assert any(k.startswith("overwritten/") for k in created) == (spec_version == 2)
    assert {f"snapshots/{sid}", f"transactions/{sid}"} <= created
    # Everything the commit created was synced before the ref write that published it.
    assert created <= backend.synced_before_ref[-1]

    # A second commit syncs only what it adds, and again before its ref write.
    previous = objects(root)
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="big", mode="r+")[:16] = -1.0
    sid2 = session.commit("more")
    created2 = objects(root) - previous - {REF_KEY[spec_version]}
    assert f"snapshots/{sid2}" in created2
    assert created2 <= backend.synced_before_ref[-1]


def test_flush_syncs_its_snapshot(tmp_path: Path, spec_version: int) -> None:
    root = tmp_path / "repo"
    backend = RecordingBackend(str(root))
    repo = icechunk.Repository.create(Storage.from_backend(backend), spec_version=spec_version)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(2,), chunks=(1,), dtype="i4")[:] = [1, 2]
    sid = session.flush("detached")
    assert {f"snapshots/{sid}", f"transactions/{sid}"} <= backend.synced


def test_commit_of_many_chunks_syncs_them_before_the_ref(tmp_path: Path, spec_version: int) -> None:
    # Hundreds of chunk files take the filesystem-wide sync path; the order rule is the same.
    root = tmp_path / "repo"
    backend = RecordingBackend(str(root))
    repo = icechunk.Repository.create(Storage.from_backend(backend), spec_version=spec_version)
    before = objects(root)
    session = repo.writable_session("main")
    arr = zarr.create_array(
        session.store, name="a", shape=(200, 128), chunks=(1, 128), dtype="f8", compressors=None
    )
    arr[:] = np.arange(200 * 128.0).reshape(200, 128)
    session.commit("many chunks")
    created = objects(root) - before - {REF_KEY[spec_version]}
    assert sum(k.startswith("chunks/") for k in created) == 200
    assert created <= backend.synced_before_ref[-1]
    reread = repo.readonly_session("main")
    np.testing.assert_array_equal(
        zarr.open_array(reread.store, path="a", mode="r")[:],
        np.arange(200 * 128.0).reshape(200, 128),
    )
