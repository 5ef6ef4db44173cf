"""Processes that share nothing but the repository, each committing with a rebasing solver.

Each worker unpickles the same Repository object, opens its own writable session on ``main``
and commits with ``rebase_with=``; no locks or coordination besides the branch ref. Appenders
never handle conflicts themselves: the append rule of the solver stacks their rows.
"""

from __future__ import annotations

import collections
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import zarr

import pyicechunk as icechunk
from pyicechunk import BasicConflictSolver, ConflictDetector, VersionSelection

N_PROCS = 4
N_BLOCKS = 5
ROWS_PER_BLOCK = 3
SETUP_WRITER = 99
EPOCH = pd.Timestamp("2000-01-01")
# Fail on any chunk clash that the append rule does not settle, so that no rows can be lost.
APPEND_SOLVER = BasicConflictSolver(append_dim="time", on_chunk_conflict=VersionSelection.Fail)


def _block(writer: int, seq: int) -> np.ndarray:
    """Rows tagged (writer, sequence number, row within the block)."""
    return np.array([[writer, seq, k] for k in range(ROWS_PER_BLOCK)], dtype="i4")


def _stamps(rows: np.ndarray) -> pd.DatetimeIndex:
    """A distinct time stamp per row, computed from its tags."""
    seconds = rows[:, 0].astype("i8") * 10_000 + rows[:, 1] * 100 + rows[:, 2]
    return EPOCH + pd.to_timedelta(seconds, unit="s")


def _dataset(writer: int, seq: int) -> xr.Dataset:
    rows = _block(writer, seq)
    return xr.Dataset({"rows": (("time", "field"), rows)}, coords={"time": _stamps(rows)})


def _commit(session: icechunk.Session, message: str) -> str:
    return session.commit(message, rebase_with=APPEND_SOLVER, rebase_tries=1000)


def _zarr_appender(repo: icechunk.Repository, writer: int) -> list[str]:
    snapshots = []
    for seq in range(N_BLOCKS):
        session = repo.writable_session("main")
        zarr.open_array(session.store, path="rows", mode="r+").append(_block(writer, seq), axis=0)
        snapshots.append(_commit(session, f"w{writer} block {seq}"))
    return snapshots


def _xarray_appender(repo: icechunk.Repository, writer: int) -> list[str]:
    snapshots = []
    for seq in range(N_BLOCKS):
        session = repo.writable_session("main")
        _dataset(writer, seq).to_zarr(session.store, append_dim="time", consolidated=False)
        snapshots.append(_commit(session, f"w{writer} block {seq}"))
    return snapshots


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


def _check_appends(repo: icechunk.Repository, results: list[list[str]], rows: np.ndarray) -> None:
    history = _history(repo)
    acknowledged = [sid for snapshots in results for sid in snapshots]
    assert len(set(acknowledged)) == N_PROCS * N_BLOCKS
    assert set(acknowledged) <= set(history)
    assert len(history) == 2 + N_PROCS * N_BLOCKS  # initial snapshot, setup, the appends

    assert rows.shape == ((N_PROCS * N_BLOCKS + 1) * ROWS_PER_BLOCK, 3)
    np.testing.assert_array_equal(rows[:ROWS_PER_BLOCK], _block(SETUP_WRITER, 0))
    expected = collections.Counter(
        tuple(row) for w in range(N_PROCS) for s in range(N_BLOCKS) for row in _block(w, s).tolist()
    )
    assert collections.Counter(tuple(row) for row in rows[ROWS_PER_BLOCK:].tolist()) == expected
    # blocks stay whole, and each writer's blocks keep their order
    blocks = rows.reshape(-1, ROWS_PER_BLOCK, 3)
    for block in blocks:
        np.testing.assert_array_equal(block, _block(int(block[0, 0]), int(block[0, 1])))
    for w in range(N_PROCS):
        mine = [b for b in blocks if b[0, 0] == w]
        assert [int(b[0, 1]) for b in mine] == list(range(N_BLOCKS))


def test_concurrent_zarr_appends_all_land(tmp_path: Path) -> None:
    started = time.monotonic()
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(tmp_path / "repo")))
    session = repo.writable_session("main")
    array = zarr.create_array(
        session.store,
        name="rows",
        shape=(ROWS_PER_BLOCK, 3),
        chunks=(ROWS_PER_BLOCK, 3),
        dtype="i4",
        fill_value=-1,
        dimension_names=["time", "field"],
    )
    array[...] = _block(SETUP_WRITER, 0)
    session.commit("setup")

    with mp.get_context("spawn").Pool(N_PROCS) as pool:
        results = pool.starmap(_zarr_appender, [(repo, w) for w in range(N_PROCS)])

    _check_appends(repo, results, _rows(repo))
    assert time.monotonic() - started < 40


def test_concurrent_xarray_appends_all_land(tmp_path: Path) -> None:
    started = time.monotonic()
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(tmp_path / "repo")))
    session = repo.writable_session("main")
    _dataset(SETUP_WRITER, 0).to_zarr(
        session.store,
        consolidated=False,
        encoding={
            "rows": {"chunks": (ROWS_PER_BLOCK, 3), "fill_value": -1},
            "time": {"chunks": (ROWS_PER_BLOCK,), "units": "seconds since 2000-01-01"},
        },
    )
    session.commit("setup")

    with mp.get_context("spawn").Pool(N_PROCS) as pool:
        results = pool.starmap(_xarray_appender, [(repo, w) for w in range(N_PROCS)])

    ds = xr.open_zarr(repo.readonly_session("main").store, consolidated=False).load()
    rows = ds["rows"].values
    _check_appends(repo, results, rows)
    # every time stamp stayed with the row it was written with
    np.testing.assert_array_equal(ds["time"].values, _stamps(rows).values)
    assert ds.indexes["time"].is_unique
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
