"""Commits on storage that fails at random: nothing acknowledged is lost, nothing dangles."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
import zarr

import pyicechunk
from pyicechunk.asset_manager import AssetManager
from pyicechunk.ops.reachability import reachable_snapshots
from pyicechunk.repo_state.spec1 import Spec1State
from pyicechunk.storage import Storage, StorageBackend
from pyicechunk.storage.keys import chunk_key
from pyicechunk.testing.faults import OPERATIONS, FaultPlan, FaultyBackend, InjectedFault

N_COMMITS = 30
CHUNK = 4
RATES = {  # about a third of the commits fail
    "get": 0.05,
    "get_versioned": 0.1,
    "head": 0.05,
    "list": 0.05,
    "put": 0.06,
    "put_if_absent": 0.15,
    "put_if_version": 0.15,
    "make_durable": 0.1,
}
FAILURES = (pyicechunk.IcechunkError, OSError)


def _chunk_values(i: int) -> np.ndarray:
    return np.arange(CHUNK, dtype="i8") + 1000 * (i + 1)


class RefWalker:
    """Reads every snapshot, manifest and chunk that a branch or tag reaches.

    Objects are immutable and nothing here deletes any, so an object read once is not read
    again by later walks.
    """

    def __init__(self, backend: StorageBackend) -> None:
        self.backend = backend
        self.assets = AssetManager(backend)
        self.state = Spec1State(
            backend, self.assets, conditional_create=True, conditional_update=True
        )
        self.seen_manifests: set[bytes] = set()
        self.seen_chunks: set[bytes] = set()

    async def walk(self) -> None:
        backend = self.backend
        refs = await self.state.refs()
        for branch in refs.branches:
            await self.state.branch_tip(branch)
        for tag in refs.tags:
            await self.state.tag_target(tag)
        chunks = set()
        for snapshot in await reachable_snapshots(self.state):
            for info in snapshot.manifest_files:
                if info.id in self.seen_manifests:
                    continue
                manifest = await self.assets.fetch_manifest(info.id, info.size_bytes)
                self.seen_manifests.add(info.id)
                for array in manifest.arrays:
                    chunks.update(bytes(row) for row in array.native_chunk_ids())
        new = sorted(chunks - self.seen_chunks)
        found = await asyncio.gather(*(backend.get(chunk_key(c)) for c in new))
        assert all(len(data) > 0 for data in found)
        self.seen_chunks.update(new)


def _run_commits(faulty: FaultyBackend) -> tuple[dict[str, int], list[int]]:
    """30 single-writer commits through the faulty backend.

    Returns the acknowledged commits (id -> commit number) and the numbers of those that raised.
    """
    faulty.enabled = False
    repo = pyicechunk.Repository.create(Storage.from_backend(faulty))
    session = repo.writable_session("main")
    root = zarr.open_group(session.store, mode="w")
    root.create_array("a", shape=(N_COMMITS * CHUNK,), chunks=(CHUNK,), dtype="i8", fill_value=-1)
    session.commit("setup")
    faulty.enabled = True

    walker = RefWalker(faulty.inner)
    acknowledged: dict[str, int] = {}
    raised: list[int] = []
    for i in range(N_COMMITS):
        try:
            if raised and raised[-1] == i - 1:
                repo = pyicechunk.Repository.open(Storage.from_backend(faulty))
            session = repo.writable_session("main")
            arr = zarr.open_array(session.store, path="a", mode="r+")
            arr[i * CHUNK : (i + 1) * CHUNK] = _chunk_values(i)
            arr.attrs["last"] = i
            acknowledged[session.commit(f"c{i}")] = i
        except FAILURES:
            raised.append(i)
        if i % 10 == 9 and acknowledged:
            try:
                repo.create_tag(f"t{i}", list(acknowledged)[-1])
            except FAILURES:
                pass  # a tag that failed to be created may or may not exist; both are checked
        if raised and raised[-1] == i:
            # the repository opens (without faults) after every failure, and nothing dangles
            pyicechunk.Repository.open(Storage.from_backend(faulty.inner)).list_branches()
            asyncio.run(walker.walk())
    faulty.enabled = False
    return acknowledged, raised


def _verify_history(inner: StorageBackend, acknowledged: dict[str, int]) -> None:
    repo = pyicechunk.Repository.open(Storage.from_backend(inner))
    history = list(repo.ancestry(branch="main"))
    assert history[-1].message == "Repository initialized"
    assert history[-2].message == "setup"
    landed = [int(s.message[1:]) for s in reversed(history[:-2])]
    assert landed == sorted(landed)  # commits land in the order they were made
    assert {s.id for s in history} >= set(acknowledged)  # nothing acknowledged is lost
    # the tip holds exactly the landed commits' chunks
    tip = zarr.open_array(repo.readonly_session("main").store, path="a", mode="r")
    expected = np.full(N_COMMITS * CHUNK, -1, dtype="i8")
    for j in landed:
        expected[j * CHUNK : (j + 1) * CHUNK] = _chunk_values(j)
    np.testing.assert_array_equal(tip[:], expected)
    # every landed commit (acknowledged or with a lost acknowledgement) is complete: its own
    # chunk and attribute, and nothing of the commits after it
    for snap in history[:-2]:
        i = int(snap.message[1:])
        if snap.id in acknowledged:
            assert acknowledged[snap.id] == i
        arr = zarr.open_array(repo.readonly_session(snapshot_id=snap.id).store, path="a", mode="r")
        assert arr.attrs["last"] == i
        mine_and_next = arr[i * CHUNK : (i + 2) * CHUNK]
        np.testing.assert_array_equal(mine_and_next[:CHUNK], _chunk_values(i))
        assert (mine_and_next[CHUNK:] == -1).all()
    asyncio.run(RefWalker(inner).walk())


@pytest.mark.parametrize(
    ("kind", "fault", "seed"),
    [
        ("memory", "error", 1),
        ("memory", "oserror", 2),
        ("local", "error", 3),
        ("local", "timeout", 4),
        ("s3", "error", 5),
        ("s3", "timeout", 6),
    ],
)
def test_commits_land_completely_or_raise(
    new_storage: Any, kind: str, fault: Any, seed: int
) -> None:
    inner = new_storage(kind)._backend
    faulty = FaultyBackend(
        inner, FaultPlan(seed=seed, rates=RATES, kind=fault, lost_ack=0.5, delay=0.01)
    )
    acknowledged, raised = _run_commits(faulty)
    # the plan made some commits fail and let others through
    assert sum(faulty.injected.values()) > 0
    assert 0 < len(raised) < N_COMMITS
    assert len(acknowledged) + len(raised) == N_COMMITS
    _verify_history(inner, acknowledged)


def test_same_seed_same_faults() -> None:
    def outcomes(seed: int) -> list[str]:
        plan = FaultPlan(seed=seed, rates=dict.fromkeys(OPERATIONS, 0.3))
        faulty = FaultyBackend(pyicechunk.in_memory_storage()._backend, plan)
        seen = []
        for n in range(40):
            try:
                asyncio.run(faulty.put(f"chunks/{n % 7}", b"x"))
                seen.append("ok")
            except InjectedFault:
                seen.append("fault")
        return seen

    first = outcomes(11)
    assert first == outcomes(11)
    assert 0 < first.count("fault") < 40
    assert first != outcomes(12)


def test_lost_acknowledgements() -> None:
    inner = pyicechunk.in_memory_storage()._backend
    plan = FaultPlan(rates={"put": 1.0, "put_if_absent": 1.0}, lost_ack=1.0)
    faulty = FaultyBackend(inner, plan)
    # a plain write lands and still raises: it has nothing to be recognised by
    with pytest.raises(InjectedFault, match="put 'chunks/x'"):
        asyncio.run(faulty.put("chunks/x", b"1"))
    assert asyncio.run(inner.get("chunks/x")) == b"1"
    # a conditional write's write id shows that it landed: the lost response is a success
    assert asyncio.run(faulty.put_if_absent("refs/x", b"1"))
    assert asyncio.run(inner.get("refs/x")) == b"1"
    assert faulty.injected == {"put": 1, "put_if_absent": 1}
    before = FaultyBackend(inner, FaultPlan(rates={"put": 1.0}, kind="oserror"))
    with pytest.raises(ConnectionResetError):
        asyncio.run(before.put("refs/y", b"1"))
    assert not asyncio.run(inner.exists("refs/y"))


def test_plan_validation() -> None:
    with pytest.raises(ValueError, match="unknown operation kinds"):
        FaultPlan(rates={"gett": 0.1})
    with pytest.raises(ValueError, match="between 0 and 1"):
        FaultPlan(rates={"get": 1.5})
    with pytest.raises(ValueError, match="kind"):
        FaultPlan(kind="boom")  # type: ignore[arg-type]
