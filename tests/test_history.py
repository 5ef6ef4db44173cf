"""The history walk and what is built on it (history.py), over a real spec-1 history."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import numpy as np
import pytest

from pyicechunk.asset_manager import AssetManager
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.ids import new_snapshot_id
from pyicechunk.format.snapshot import Snapshot
from pyicechunk.format.transaction_log import TransactionLog
from pyicechunk.format.repo_info import SnapshotInfo as ListedSnapshot
from pyicechunk.history import (
    HistoryEntry,
    HistorySource,
    HistoryWalk,
    as_of,
    combine_transaction_logs,
    path_between,
)
from pyicechunk.repo_state.spec1 import Spec1State
from pyicechunk.storage.memory import InMemoryBackend

T = TypeVar("T")


def _run(awaitable: Awaitable[T]) -> T:
    async def wait() -> T:
        return await awaitable

    return asyncio.run(wait())


async def _chain(length: int) -> tuple[HistorySource, AssetManager, list[Snapshot]]:
    """A root and ``length`` descendants, oldest first, flushed at 0, 10, 20, ... µs."""
    backend = InMemoryBackend()
    assets = AssetManager(backend)
    state = Spec1State(backend, assets, conditional_create=True, conditional_update=True)
    chain: list[Snapshot] = []
    parent: bytes | None = None
    for i in range(length + 1):
        snapshot = Snapshot(new_snapshot_id(), parent, (), 10 * i, f"s{i}", {}, ())
        await assets.write_snapshot(snapshot)
        chain.append(snapshot)
        parent = snapshot.id
    return await state.history(), assets, chain


def test_the_walk_goes_back_to_the_root() -> None:
    async def check() -> None:
        history, _, chain = await _chain(3)
        walked = [e.message async for e in HistoryWalk(history, chain[-1].id)]
        assert walked == ["s3", "s2", "s1", "s0"]

    _run(check())


def test_path_between_two_snapshots() -> None:
    async def check() -> None:
        history, _, chain = await _chain(4)
        path = await path_between(history, chain[1].id, chain[4].id)
        assert path is not None and [s.id for _, s in path] == [s.id for s in chain[4:1:-1]]
        assert await path_between(history, chain[2].id, chain[2].id) == []
        assert await path_between(history, chain[4].id, chain[1].id) is None

    _run(check())


def test_as_of_finds_the_newest_snapshot_not_after_a_time() -> None:
    async def check() -> None:
        history, _, chain = await _chain(3)
        found = await as_of(history, chain[-1].id, 25)
        assert found is not None and found.id == chain[2].id
        root = await as_of(history, chain[-1].id, 0)
        assert root is not None and root.id == chain[0].id
        assert await as_of(history, chain[-1].id, -1) is None

    _run(check())


def test_take_known_stops_where_a_snapshot_must_be_read() -> None:
    async def check() -> None:
        history, assets, chain = await _chain(4)
        # A second handle on the same storage has read only the two newest snapshots.
        cold = AssetManager(assets.backend)
        for snapshot in chain[-2:]:
            await cold.fetch_snapshot(snapshot.id)
        walk = HistoryWalk(type(history)(cold), chain[-1].id)
        assert [e.message for e in walk.take_known(10)] == ["s4", "s3"]
        assert not walk.done and walk.take_known(10) == []
        assert [e.message for e in await walk.take(10)] == ["s2", "s1", "s0"]
        assert walk.done

    _run(check())


def test_a_loop_is_damage_not_a_hang() -> None:
    async def check() -> None:
        history, assets, chain = await _chain(2)
        looped = Snapshot(chain[0].id, chain[2].id, (), 0, "s0", {}, ())
        await assets.write_snapshot(looped)  # the root now points at the tip
        with pytest.raises(IcechunkError, match="loops"):
            async for _ in HistoryWalk(history, chain[2].id):
                pass

    _run(check())


def test_amend_combines_two_logs() -> None:
    a, b, c = (bytes([i]) * 8 for i in (1, 2, 3))
    earlier = TransactionLog(
        id=b"\0" * 12,
        new_arrays=[a, b],
        updated_chunks={a: np.array([[0], [1]], dtype=np.uint32)},
    )
    later = TransactionLog(
        id=b"\1" * 12,
        new_arrays=[c],
        deleted_arrays=[b],
        updated_arrays=[a],
        updated_chunks={a: np.array([[1], [2]], dtype=np.uint32), b: np.zeros((1, 1), np.uint32)},
    )
    combined = combine_transaction_logs(earlier, later, b"\2" * 12)
    assert combined.id == b"\2" * 12
    # b was created and deleted within the amended commit: it never existed for anyone else.
    assert combined.new_arrays == [a, c]
    assert combined.deleted_arrays == []
    assert combined.updated_arrays == []  # a is new: its update is part of its creation
    assert set(combined.updated_chunks) == {a}
    assert combined.updated_chunks[a].tolist() == [[0], [1], [2]]


class _Listing(HistorySource):
    """A history held whole in memory, as spec 2's snapshot list is."""

    def __init__(self, entries: dict[bytes, ListedSnapshot]) -> None:
        super().__init__(AssetManager(InMemoryBackend()))
        self.listing = entries

    async def entry(self, snapshot_id: bytes) -> HistoryEntry:
        raise AssertionError("a walk over a listing takes its entries as they are")


def _listed_chain(length: int) -> list[ListedSnapshot]:
    chain: list[ListedSnapshot] = []
    parent: bytes | None = None
    for i in range(length + 1):
        chain.append(ListedSnapshot(new_snapshot_id(), parent, 10 * i, f"s{i}"))
        parent = chain[-1].id
    return chain


def test_a_walk_over_a_listing_hands_out_its_entries_in_batches() -> None:
    chain = _listed_chain(4)
    walk = HistoryWalk(_Listing({s.id: s for s in chain}), chain[-1].id)
    first = walk.take_listed(2)
    assert [s.message for s in first] == ["s4", "s3"]
    assert first[0] is chain[-1] and not walk.done
    assert [s.message for s in walk.take_listed(10)] == ["s2", "s1", "s0"]
    assert walk.done and walk.take_listed(10) == []


def test_a_walk_over_a_damaged_listing_names_the_damage() -> None:
    chain = _listed_chain(3)
    listing = {s.id: s for s in chain}
    looped = dict(listing)
    looped[chain[0].id] = ListedSnapshot(chain[0].id, chain[3].id, 0, "s0")
    with pytest.raises(IcechunkError, match="loops: the parent of snapshot") as caught:
        HistoryWalk(_Listing(looped), chain[3].id).take_listed(100)
    assert caught.value.kind == "invalid-file-format"
    del listing[chain[1].id]
    with pytest.raises(IcechunkError, match="the repository is damaged") as caught:
        HistoryWalk(_Listing(listing), chain[3].id).take_listed(100)
    assert caught.value.kind == "invalid-file-format"
    with pytest.raises(IcechunkError, match="snapshot not found") as caught:
        HistoryWalk(_Listing(listing), chain[1].id).take_listed(100)
    assert caught.value.kind == "snapshot-not-found"
