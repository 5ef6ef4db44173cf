"""Processes that share nothing but the repository, each committing with a rebasing solver.

Each worker unpickles the same Repository object, opens its own writable session on ``main``
and commits with ``rebase_with=``; no locks or coordination besides the branch ref.
"""

from __future__ import annotations

import collections
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np
import zarr

import pyicechunk as icechunk
from pyicechunk import BasicConflictSolver, ConflictDetector, RebaseFailedError, VersionSelection

N_PROCS = 4
N_BLOCKS = 5
ROWS_PER_BLOCK = 3
# Fail on chunk clashes: appends from the same base write the same chunks, and either
# UseOurs or UseTheirs would silently drop one side's rows.
APPEND_SOLVER = BasicConflictSolver(on_chunk_conflict=VersionSelection.Fail, merge_metadata=True)


def _block(writer: int, seq: int) -> np.ndarray:
    """Rows tagged (writer, sequence number, row within the block)."""
    return np.array([[writer, seq, k] for k in range(ROWS_PER_BLOCK)], dtype="i4")


def _appender(repo: icechunk.Repository, writer: int) -> tuple[list[str], int]:
    snapshots = []
    retries = 0
    for seq in range(N_BLOCKS):
        while True:
            session = repo.writable_session("main")
            zarr.open_array(session.store, path="rows", mode="r+").append(
                _block(writer, seq), axis=0
            )
            try:
                snapshots.append(
                    session.commit(f"w{writer} block {seq}", rebase_with=APPEND_SOLVER)
                )
                break
            except RebaseFailedError:
                # another append landed in the same rows: append again at the new end
                retries += 1
    return snapshots, retries


def _region_writer(repo: icechunk.Repository, writer: int) -> list[str]:
    snapshots = []
    for seq in range(N_BLOCKS):
        session = repo.writable_session("main")
        start = (writer * N_BLOCKS + seq) * ROWS_PER_BLOCK
        array = zarr.open_array(session.store, path="rows", mode="r+")
        array[start : start + ROWS_PER_BLOCK] = _block(writer, seq)
        snapshots.append(session.commit(f"w{writer} block {seq}", rebase_with=ConflictDetector()))
    return snapshots


def _history(repo: icechunk.Repository) -> list[str]:
    return [s.id for s in repo.ancestry(branch="main")]


def _rows(repo: icechunk.Repository) -> np.ndarray:
    return zarr.open_array(repo.readonly_session("main").store, path="rows", mode="r")[:]


def test_concurrent_appends_all_land(tmp_path: Path) -> None:
    started = time.monotonic()
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(tmp_path / "repo")))
    session = repo.writable_session("main")
    zarr.create_array(
        session.store,
        name="rows",
        shape=(0, 3),
        chunks=(ROWS_PER_BLOCK, 3),
        dtype="i4",
        fill_value=-1,
        dimension_names=["time", "field"],
    )
    session.commit("setup")

    with mp.get_context("spawn").Pool(N_PROCS) as pool:
        results = pool.starmap(_appender, [(repo, w) for w in range(N_PROCS)])

    history = _history(repo)
    acknowledged = [sid for snapshots, _ in results for sid in snapshots]
    assert len(acknowledged) == N_PROCS * N_BLOCKS
    assert set(acknowledged) <= set(history)
    assert len(history) == 2 + N_PROCS * N_BLOCKS  # initial snapshot, setup, the appends

    rows = _rows(repo)
    assert rows.shape == (N_PROCS * N_BLOCKS * ROWS_PER_BLOCK, 3)
    expected = collections.Counter(
        tuple(row) for w in range(N_PROCS) for s in range(N_BLOCKS) for row in _block(w, s).tolist()
    )
    assert collections.Counter(tuple(row) for row in rows.tolist()) == expected
    # blocks stay whole, and each writer's blocks keep their order
    blocks = rows.reshape(-1, ROWS_PER_BLOCK, 3)
    for w in range(N_PROCS):
        mine = [b for b in blocks if b[0, 0] == w]
        assert [int(b[0, 1]) for b in mine] == list(range(N_BLOCKS))
    assert time.monotonic() - started < 40


def test_concurrent_region_writes_all_land(tmp_path: Path) -> None:
    started = time.monotonic()
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(tmp_path / "repo")))
    session = repo.writable_session("main")
    zarr.create_array(
        session.store,
        name="rows",
        shape=(N_PROCS * N_BLOCKS * ROWS_PER_BLOCK, 3),
        chunks=(ROWS_PER_BLOCK, 3),
        dtype="i4",
        fill_value=-1,
    )
    session.commit("setup")

    with mp.get_context("spawn").Pool(N_PROCS) as pool:
        results = pool.starmap(_region_writer, [(repo, w) for w in range(N_PROCS)])

    history = _history(repo)
    acknowledged = [sid for snapshots in results for sid in snapshots]
    assert len(set(acknowledged)) == N_PROCS * N_BLOCKS
    assert set(acknowledged) <= set(history)
    assert len(history) == 2 + N_PROCS * N_BLOCKS
    expected = np.concatenate([_block(w, s) for w in range(N_PROCS) for s in range(N_BLOCKS)])
    np.testing.assert_array_equal(_rows(repo), expected)
    assert time.monotonic() - started < 40
