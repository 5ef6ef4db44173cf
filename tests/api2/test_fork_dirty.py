"""Forking a session with uncommitted changes, on pyicechunk and icechunk 2.3.0: the fork starts
from an anonymous snapshot of those changes (named by no ref, listed in no history), reads them,
records only its own changes, and the merged session commits both (API-2 item 9)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from oracle import Both

SCENARIO = """
import pickle
repo = icechunk.Repository.create(make_storage(where), spec_version={spec})
s = repo.writable_session("main")
root = zarr.create_group(s.store)
root.create_array("a", shape=(4,), chunks=(2,), dtype="i4")[:] = [1, 1, 1, 1]
before = [x.message for x in repo.ancestry(branch="main")]
fork = pickle.loads(pickle.dumps(s.fork()))
seen_in_fork = zarr.open_array(fork.store, path="a", mode="r")[:].tolist()
fork_changes = [fork.has_uncommitted_changes, fork.snapshot_id != s.snapshot_id]
arr = zarr.open_array(fork.store, path="a", mode="r+")
arr[0:2] = [5, 5]
zarr.create_array(fork.store, name="b", shape=(2,), chunks=(2,), dtype="u1")[:] = 7
s.merge(fork)
s.commit("both")
r = repo.readonly_session("main")
[
    before,
    seen_in_fork,
    fork_changes,
    zarr.open_array(r.store, path="a", mode="r")[:].tolist(),
    zarr.open_array(r.store, path="b", mode="r")[:].tolist(),
    [x.message for x in repo.ancestry(branch="main")],
    sorted(repo.list_branches()),
]
"""


@pytest.mark.parametrize("spec", [1, 2])
def test_a_dirty_session_forks_and_merges_back(
    both: Both, storage_spec: Callable[..., Any], spec: int
) -> None:
    # Each implementation forks in a directory of its own (a fork is pickled, so not in memory).
    code = SCENARIO.format(spec=spec)
    ours = both.ours.run(code, where=storage_spec("local"))
    assert both.reference.run(code, where=storage_spec("local")) == ours
    before, in_fork, fork_changes, a, b, history, branches = ours
    assert in_fork == [1, 1, 1, 1] and fork_changes == [False, True]
    assert a == [5, 5, 1, 1] and b == [7, 7]
    assert history == ["both", "Repository initialized"] and before == history[1:]
    assert branches == ["main"]
