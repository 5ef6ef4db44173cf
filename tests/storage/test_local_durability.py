"""The local backend's durability setting: durable (the default) syncs, durable=False never does.

The sync calls are counted by wrapping ``os.fsync``, ``os.fdatasync`` and the backend's
``syncfs`` and write-back hooks with counters that call the real functions, so every write
really happens. A non-durable commit must make no sync call at all and still be atomic and safe
under concurrent commits; a process killed right after a non-durable commit leaves that commit
readable (the page cache outlives the process).
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import pyicechunk as icechunk
import pyicechunk.storage.local as local
import pyicechunk.storage.local_dirs as local_dirs
from pyicechunk.exceptions import IcechunkError
from pyicechunk.storage import Storage, StorageBackend
from pyicechunk.storage.local import DURABLE_ENV_VAR, LocalFileSystemBackend
from pyicechunk.testing.storage import StorageTests

SPECS = [pytest.param(1, id="spec1"), pytest.param(2, id="spec2")]


class TestNonDurableLocalFileSystemStorage(StorageTests):
    """Every storage guarantee (conditional writes, listings, deletes) holds without syncing."""

    @pytest.fixture
    def storage_backend(self, tmp_path: Path) -> StorageBackend:
        return LocalFileSystemBackend(str(tmp_path / "repo"), durable=False)


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Counts of the sync calls made while the test runs (the real calls still happen)."""
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def counting(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            with lock:
                counts[name] += 1
            return real(*args)

        return call

    monkeypatch.setattr(os, "fsync", counting("fsync", os.fsync))
    monkeypatch.setattr(os, "fdatasync", counting("fdatasync", os.fdatasync))
    for hook in ("_syncfs", "_start_writeback"):
        real = getattr(local, hook)
        if real is not None:
            monkeypatch.setattr(local, hook, counting(hook, real))
    yield counts


def _commit(repo: icechunk.Repository, name: str, chunks: int) -> str:
    session = repo.writable_session("main")
    array = zarr.create_array(
        session.store, name=name, shape=(chunks, 512), chunks=(1, 512), dtype="f8"
    )
    array[:] = np.arange(chunks * 512, dtype="f8").reshape(chunks, 512)
    return session.commit(f"write {name}")


@pytest.mark.parametrize("spec_version", SPECS)
def test_durable_commits_sync_and_non_durable_make_no_sync_call(
    tmp_path: Path, syncs: Counter[str], spec_version: int
) -> None:
    per_commit: dict[bool, list[int]] = {}
    for durable in (True, False):
        path = str(tmp_path / str(durable))
        storage = icechunk.local_filesystem_storage(path, durable=durable)
        repo = icechunk.Repository.create(storage, spec_version=spec_version)
        counts = []
        # A small commit (per-file fdatasync) and a large one (one syncfs on Linux).
        for name, chunks in (("small", 2), ("large", 40)):
            syncs.clear()
            _commit(repo, name, chunks)
            counts.append(sum(syncs.values()))
        # Expiration rewrites a snapshot (spec 1) or updates `repo` (spec 2).
        syncs.clear()
        tip = repo.lookup_snapshot(repo.lookup_branch("main"))
        assert repo.expire_snapshots(tip.written_at)
        counts.append(sum(syncs.values()))
        syncs.clear()
        repo.create_branch("dev", repo.lookup_branch("main"))
        repo.create_tag("v1", repo.lookup_branch("main"))
        repo.delete_branch("dev")
        repo.delete_tag("v1")
        repo.garbage_collect(repo.lookup_snapshot(repo.lookup_branch("main")).written_at)
        counts.append(sum(syncs.values()))
        per_commit[durable] = counts
        # Whatever the setting, the data is all there.
        reopened = icechunk.Repository.open(icechunk.local_filesystem_storage(path))
        large = zarr.open_array(reopened.readonly_session("main").store, path="large", mode="r")
        np.testing.assert_array_equal(large[:].ravel(), np.arange(40 * 512, dtype="f8"))
    print(f"sync calls (small commit, large commit, expire, refs + gc): {per_commit}")
    assert all(count > 0 for count in per_commit[True])
    assert per_commit[False] == [0, 0, 0, 0]


def test_environment_variable_sets_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def backend(storage: Storage) -> LocalFileSystemBackend:
        assert isinstance(storage.backend, LocalFileSystemBackend)
        return storage.backend

    path = str(tmp_path)
    monkeypatch.delenv(DURABLE_ENV_VAR, raising=False)
    assert backend(icechunk.local_filesystem_storage(path)).durable
    for value, expected in (("0", False), (" Off ", False), ("no", False), ("1", True), ("", True)):
        monkeypatch.setenv(DURABLE_ENV_VAR, value)
        assert backend(icechunk.local_filesystem_storage(path)).durable is expected
        assert backend(Storage.new_local_filesystem(path)).durable is expected
    # An explicit keyword wins over the environment.
    monkeypatch.setenv(DURABLE_ENV_VAR, "0")
    assert backend(icechunk.local_filesystem_storage(path, durable=True)).durable
    monkeypatch.setenv(DURABLE_ENV_VAR, "sometimes")
    with pytest.raises(IcechunkError, match="PYICECHUNK_DURABLE must be") as info:
        icechunk.local_filesystem_storage(path)
    assert info.value.kind == "storage-config"
    assert backend(icechunk.local_filesystem_storage(path, durable=False)).durable is False


def test_repr_shows_only_the_non_default_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DURABLE_ENV_VAR, raising=False)
    durable = icechunk.local_filesystem_storage(str(tmp_path))
    assert repr(durable) == f"<icechunk.Storage>\ntype: local filesystem\npath: {tmp_path}\n"
    fast = icechunk.local_filesystem_storage(str(tmp_path), durable=False)
    expected = f"<icechunk.Storage>\ntype: local filesystem\npath: {tmp_path}\ndurable: false\n"
    assert repr(fast) == expected
    assert repr(fast.backend).endswith(", durable=false)")
    # A copy keeps the setting it was made with, whatever its process's environment says.
    monkeypatch.setenv(DURABLE_ENV_VAR, "1")
    assert repr(pickle.loads(pickle.dumps(fast))) == expected


@pytest.mark.parametrize("spec_version", SPECS)
def test_concurrent_non_durable_commits_lose_nothing(
    tmp_path: Path, syncs: Counter[str], spec_version: int
) -> None:
    storage = icechunk.local_filesystem_storage(str(tmp_path), durable=False)
    repo = icechunk.Repository.create(storage, spec_version=spec_version)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="log", shape=(0,), chunks=(1,), dtype="i4")
    session.commit("empty log")
    writers, rounds = 3, 3
    solver = icechunk.BasicConflictSolver(append_dim=0)
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        try:
            append(writer)
        except BaseException as e:
            errors.append(e)

    def append(writer: int) -> None:
        for i in range(rounds):
            session = repo.writable_session("main")
            log = zarr.open_array(session.store, path="log", mode="r+")
            log.resize((log.shape[0] + 1,))
            log[-1] = writer * rounds + i
            session.commit(f"{writer}/{i}", rebase_with=solver)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    log = zarr.open_array(repo.readonly_session("main").store, path="log", mode="r")
    assert sorted(log[:].tolist()) == list(range(writers * rounds))
    assert len(list(repo.ancestry(branch="main"))) == 2 + writers * rounds
    assert sum(syncs.values()) == 0


_KILLED_WRITER = """
import sys, time
import numpy as np, zarr
import pyicechunk as icechunk

repo = icechunk.Repository.create(
    icechunk.local_filesystem_storage(sys.argv[1], durable=False), spec_version=int(sys.argv[2])
)
session = repo.writable_session("main")
array = zarr.create_array(session.store, name="a", shape=(8, 256), chunks=(1, 256), dtype="f8")
array[:] = np.arange(8 * 256, dtype="f8").reshape(8, 256)
print(session.commit("before the kill"), flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("spec_version", SPECS)
def test_non_durable_commit_survives_a_process_kill(tmp_path: Path, spec_version: int) -> None:
    path = str(tmp_path / "repo")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    writer = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, path, str(spec_version)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert writer.stdout is not None
        snapshot_id = writer.stdout.readline().strip()
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(60)
    assert writer.returncode == -signal.SIGKILL
    assert snapshot_id, "the writer died before its commit returned"
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(path))
    assert repo.lookup_branch("main") == snapshot_id
    array = zarr.open_array(repo.readonly_session("main").store, path="a", mode="r")
    np.testing.assert_array_equal(array[:].ravel(), np.arange(8 * 256, dtype="f8"))


def test_deletes_sync_refs_not_garbage(tmp_path: Path, syncs: Counter[str]) -> None:
    backend = LocalFileSystemBackend(str(tmp_path), durable=True)
    garbage = [f"chunks/{i:020}" for i in range(20)]

    async def write_then_delete(keys: list[str]) -> int:
        await asyncio.gather(*(backend.put(key, b"x") for key in keys))
        syncs.clear()
        return await backend.delete_many(keys)

    # Unreferenced objects coming back after a power loss are collected again: no sync.
    assert asyncio.run(write_then_delete(garbage)) == 20
    assert sum(syncs.values()) == 0
    # A deleted ref must stay deleted: its directory is synced.
    assert asyncio.run(write_then_delete(["refs/branch.dev/ref.json"])) == 1
    assert syncs["fsync"] == 1


def test_a_durable_create_syncs_the_file_and_its_directory(
    tmp_path: Path, syncs: Counter[str]
) -> None:
    backend = LocalFileSystemBackend(str(tmp_path), durable=True)

    async def create(key: str, data: bytes) -> Counter[str]:
        syncs.clear()
        assert await backend.put_if_absent(key, data)
        return Counter(syncs)

    # The content before its name appears, then the name: one call, in one worker. The first
    # object below refs/ also makes two directories, each an entry of its parent: two syncs more.
    assert asyncio.run(create("refs/tag.v1/ref.json", b'{"snapshot":"x"}')) == {"fsync": 4}
    # In a directory that is there already, only the file and its name.
    assert asyncio.run(create("refs/tag.v1/other.json", b'{"snapshot":"x"}')) == {"fsync": 2}
    # A tombstone is empty: the directory's sync alone makes it durable.
    assert asyncio.run(create("refs/tag.v1/ref.json.deleted", b"")) == {"fsync": 1}


def test_new_directories_are_made_durable_only_when_durable(tmp_path: Path) -> None:
    synced: list[str] = []
    real = local_dirs._fsync_directory

    def recording(directory: str) -> None:
        synced.append(os.path.relpath(directory, tmp_path))
        real(directory)

    for durable in (False, True):
        root = tmp_path / f"durable-{durable}"
        root.mkdir()
        synced.clear()
        backend = LocalFileSystemBackend(str(root), durable=durable)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(local_dirs, "_fsync_directory", recording)
            asyncio.run(backend.put("chunks/deep/er/key", b"x" * 10))
        # Each new directory's entry is synced in its parent (the put's own data is synced
        # later, by the commit's barrier): chunks/ in the root, deep/ in chunks/, er/ in deep/.
        expected = [
            f"durable-{durable}/chunks/deep",
            f"durable-{durable}/chunks",
            f"durable-{durable}",
        ]
        assert sorted(synced) == (sorted(expected) if durable else [])
        assert (root / "chunks" / "deep" / "er" / "key").read_bytes() == b"x" * 10
