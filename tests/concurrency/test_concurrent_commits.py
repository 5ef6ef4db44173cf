"""Several OS processes committing to one branch of a local-filesystem repository.

The reference loses commits here (its local backend overwrites refs unconditionally); we must
not: every acknowledged commit is in the ancestry and every process's data is readable.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
import pytest
import zarr

import pyicechunk as icechunk

N_PROCS = 4
N_COMMITS = int(os.environ.get("PYICECHUNK_STRESS_COMMITS", "25"))


def _writer(path: str, proc: int, n_commits: int) -> int:
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(path))
    conflicts = 0
    for i in range(n_commits):
        while True:
            session = repo.writable_session("main")
            array = zarr.open_array(session.store, path=f"p{proc}", mode="r+")
            array[i] = proc * 1000 + i
            try:
                session.commit(f"proc {proc} commit {i}", metadata={"proc": proc, "i": i})
                break
            except icechunk.ConflictError:
                conflicts += 1
    return conflicts


def test_four_processes_commit_to_one_branch(tmp_path: Path) -> None:
    path = str(tmp_path / "repo")
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(path))
    session = repo.writable_session("main")
    root = zarr.group(session.store)
    for proc in range(N_PROCS):
        root.create_array(f"p{proc}", shape=(N_COMMITS,), chunks=(1,), dtype="i8", fill_value=-1)
    setup = session.commit("setup")

    ctx = mp.get_context("spawn")
    with ctx.Pool(N_PROCS) as pool:
        conflicts = pool.starmap(_writer, [(path, p, N_COMMITS) for p in range(N_PROCS)])

    history = list(repo.ancestry(branch="main"))
    new = history[: history.index(next(h for h in history if h.id == setup))]
    assert len(new) == N_PROCS * N_COMMITS
    seen = {(h.metadata["proc"], h.metadata["i"]) for h in new}
    assert seen == {(p, i) for p in range(N_PROCS) for i in range(N_COMMITS)}
    # Parents chain without gaps: each new snapshot's parent is the next older one.
    for newer, older in zip(history, history[1:], strict=False):
        assert newer.parent_id == older.id

    group = zarr.open_group(repo.readonly_session(branch="main").store, mode="r")
    for proc in range(N_PROCS):
        expected = proc * 1000 + np.arange(N_COMMITS)
        np.testing.assert_array_equal(group[f"p{proc}"][:], expected)
    # The processes really did race (otherwise this test proves nothing).
    assert sum(conflicts) > 0 or N_COMMITS < 5


@pytest.mark.slow
def test_many_processes_stress(tmp_path: Path) -> None:
    path = str(tmp_path / "repo")
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(path))
    session = repo.writable_session("main")
    root = zarr.group(session.store)
    n_procs, n_commits = 8, 100
    for proc in range(n_procs):
        root.create_array(f"p{proc}", shape=(n_commits,), chunks=(1,), dtype="i8", fill_value=-1)
    session.commit("setup")
    with mp.get_context("spawn").Pool(n_procs) as pool:
        pool.starmap(_writer, [(path, p, n_commits) for p in range(n_procs)])
    assert len(list(repo.ancestry(branch="main"))) == 2 + n_procs * n_commits
