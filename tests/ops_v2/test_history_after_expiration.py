"""Diff, amend and rebase after a spec-2.1 expiration honour ``pruned_ancestor_tx_logs``
(FORMAT-V2 §12.2), on pyicechunk and on icechunk 2.3.0 alike.

A snapshot re-parented over expired ancestors describes, with its pruned logs before its own,
its change from its new parent: a diff over it lists what the expired commits did, an amend
of it keeps the list, and a rebase across it meets the expired commits' conflicts. A pruned log
that is gone (deleted by a pre-2.1 GC) is skipped by a diff and refused by a rebase.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from ops_v2_support import PRELUDE, describe
from oracle import Both, InProcess, Oracle, raises

HISTORY = """
repo = new_repo(path)
early = repo.writable_session("main")  # based on the initial snapshot, committed later
s = repo.writable_session("main")
zarr.create_array(s.store, name="b", shape=(4,), chunks=(1,), dtype="f8", fill_value=0.0)
commit(repo, "c0", 0, create=True, session=s)
for i in range(1, 4):
    commit(repo, f"c{i}", i)
ids = {label: sid for sid, label in labels.items()}
named(repo.expire_snapshots(written(repo, ids["c2"])))
"""


def _prepare(impl: InProcess | Oracle, path: Path) -> None:
    impl.run(PRELUDE)
    impl.run("path = Path(where)", where=str(path))
    assert impl.run(HISTORY) == ["c0", "c1"]


def _chunks(impl: InProcess | Oracle, code: str) -> dict[str, list[list[int]]]:
    return impl.run(f"{{k: sorted(map(list, v)) for k, v in ({code}).updated_chunks.items()}}")


Prepared = Callable[[], tuple[InProcess | Oracle, Path]]


@pytest.fixture(params=["pyicechunk", "icechunk2"])
def prepared(request: pytest.FixtureRequest, tmp_path: Path) -> Prepared:
    """Makes :data:`HISTORY` on one implementation, then the other (ids as ``impl``'s)."""

    def make() -> tuple[InProcess | Oracle, Path]:
        impl: InProcess | Oracle = request.getfixturevalue(
            {"pyicechunk": "pyic", "icechunk2": "ic2"}[request.param]
        )
        path = tmp_path / "repo"
        _prepare(impl, path)
        return impl, path

    return make


def test_diff_over_a_reparented_snapshot_lists_the_expired_changes(prepared: Prepared) -> None:
    impl, _ = prepared()
    assert _chunks(impl, "repo.diff(from_snapshot_id=INITIAL, to_branch='main')") == {
        "/a": [[0, 0], [1, 0], [2, 0], [3, 0]]
    }
    # From c2 (the re-parented one) on, only c3's change.
    assert _chunks(impl, "repo.diff(from_snapshot_id=ids['c2'], to_branch='main')") == {
        "/a": [[3, 0]]
    }
    assert impl.run("sorted(repo.diff(from_snapshot_id=INITIAL, to_branch='main').new_arrays)") == [
        "/a",
        "/b",
    ]


def test_amending_a_reparented_tip_keeps_its_pruned_logs(both: Both, tmp_path: Path) -> None:
    seen = []
    for impl in (both.ours, both.reference):
        path = tmp_path / impl.name
        impl.run(PRELUDE)
        impl.run("path = Path(where)", where=str(path))
        impl.run(HISTORY.replace("range(1, 4)", "range(1, 3)"))
        # c2 is main's tip and was re-parented: amend it.
        impl.run('commit(repo, "c2_amended", 5, how="amend")')
        chunks = _chunks(impl, "repo.diff(from_snapshot_id=INITIAL, to_branch='main')")
        seen.append((chunks, describe(path, impl.run("labels"))["snapshots"]))
    assert seen[0] == seen[1]
    chunks, snapshots = seen[0]
    assert snapshots["c2_amended"] == ("init", ["c0", "c1"])
    assert chunks == {"/a": [[0, 0], [1, 0], [2, 0], [5, 0]]}


REBASE = """
zarr.create_array(early.store, name="b", shape=(4,), chunks=(1,), dtype="f8", fill_value=0.0)
early.commit("early", rebase_with=icechunk.ConflictDetector())
"""


def test_a_rebase_across_a_reparented_snapshot_meets_the_expired_commits(
    prepared: Prepared,
) -> None:
    impl, _ = prepared()
    # Only c0, expired into c2's pruned list, created /b: the conflict comes from there.
    with raises("RebaseFailedError", kind="rebase-failed"):
        impl.run(REBASE)


def test_a_missing_pruned_log_is_skipped_by_diff_and_refused_by_rebase(prepared: Prepared) -> None:
    impl, path = prepared()
    (path / "transactions" / impl.run("ids['c0']")).unlink()
    # c0 created both arrays and wrote chunk 0: with its log gone, the diff misses that.
    assert _chunks(impl, "repo.diff(from_snapshot_id=INITIAL, to_branch='main')") == {
        "/a": [[1, 0], [2, 0], [3, 0]]
    }
    with raises("SessionStateError", kind="rebase-tx-log-pruned"):
        impl.run(REBASE)
    # The refused rebase changed nothing.
    assert impl.run("ancestry(repo, branch='main')") == ["c3", "c2", "init"]
