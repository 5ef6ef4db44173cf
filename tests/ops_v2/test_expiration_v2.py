"""expire_snapshots on spec-2 repositories, run on pyicechunk and on icechunk 2.3.0 side by side.

Each scenario runs on both implementations; the results (released snapshots, ancestry, data,
diffs) and what the repository holds afterwards (snapshot list with parents and pruned logs,
refs, files: :func:`ops_v2_support.describe`) must be the same, and match FORMAT-V2 §12.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ops_v2_support import PRELUDE, run_scenario
from oracle import Both, equal, raises

LINEAR = """
repo = new_repo(path)
commit(repo, "c0", 0, create=True)
for i in range(1, 5):
    commit(repo, f"c{i}", i)
ids = {label: sid for sid, label in labels.items()}
times = {label: written(repo, sid) for sid, label in labels.items()}
first = named(repo.expire_snapshots(times["c2"]))
after_first = ancestry(repo, branch="main")
second = named(repo.expire_snapshots(times["c3"]))
after_second = ancestry(repo, branch="main")
nothing = named(repo.expire_snapshots(times["c0"]))
diff = repo.diff(from_snapshot_id=INITIAL, to_branch="main")
{
    "first": first, "second": second, "nothing": nothing,
    "after_first": after_first, "after_second": after_second,
    "new_arrays": sorted(diff.new_arrays),
    "chunks": {k: sorted(map(list, v)) for k, v in diff.updated_chunks.items()},
    "data": data(repo, branch="main"),
    "c3_parent": labels[repo.lookup_snapshot(ids["c3"]).parent_id],
    "kinds": [type(u.kind).__name__ for u in list(repo.ops_log())[:3]],
}
"""


def test_linear_history_expires_twice_the_same_way(both: Both, tmp_path: Path) -> None:
    ours, ours_files = run_scenario(both.ours, LINEAR, tmp_path / "ours")
    ref, ref_files = run_scenario(both.reference, LINEAR, tmp_path / "ref")
    assert equal(ours, ref), (ours, ref)
    assert ours_files == ref_files
    # FORMAT-V2 §12.1/§12.2: the released ids, re-parenting onto the root, accumulated logs.
    assert ours["first"] == ["c0", "c1"] and ours["second"] == ["c2"] and ours["nothing"] == []
    assert ours["after_first"] == ["c4", "c3", "c2", "init"]
    assert ours["after_second"] == ["c4", "c3", "init"]
    assert ours_files["snapshots"]["c3"] == ("init", ["c0", "c1", "c2"])
    assert "c2" not in ours_files["snapshots"]
    # Every chunk c0..c4 wrote is still in the diff from the root: the pruned logs count.
    assert ours["chunks"] == {"/a": [[i, 0] for i in range(5)]}
    assert ours["new_arrays"] == ["/a"]
    assert ours["kinds"] == ["ExpirationRan", "ExpirationRan", "ExpirationRan"]
    # Expiration rewrites no snapshot file and deletes nothing.
    assert len(ours_files["snapshot_files"]) == 6 and ours_files["transaction_logs"] == sorted(
        ["init", "c0", "c1", "c2", "c3", "c4"]
    )


REFS = """
repo = new_repo(path)
commit(repo, "c0", 0, create=True)
for i in range(1, 4):
    commit(repo, f"c{i}", i)
ids = {label: sid for sid, label in labels.items()}
repo.create_branch("dev", ids["c0"])
commit(repo, "d1", 5, branch="dev")
repo.create_tag("t1", ids["c1"])
repo.create_tag("t_root", INITIAL)
repo.create_branch("same", ids["c3"])
s = repo.writable_session("main")
zarr.open_array(s.store, path="a", mode="r+")[6] = values(99)
commit(repo, "flushed", None, session=s, how="flush")
commit(repo, "c4", 4)
commit(repo, "c4_amended", 7, how="amend")
cut = utc_now()
commit(repo, "c5", 3)
kept = named(repo.expire_snapshots(cut))
kept_state = (sorted(repo.list_branches()), sorted(repo.list_tags()))
hist = {b: ancestry(repo, branch=b) for b in sorted(repo.list_branches())}
hist.update({t: ancestry(repo, tag=t) for t in sorted(repo.list_tags())})
gone = named(repo.expire_snapshots(cut, delete_expired_branches=delete_branches,
                                   delete_expired_tags=delete_tags))
{
    "kept": kept, "kept_state": kept_state, "hist": hist, "gone": gone,
    "refs": (sorted(repo.list_branches()), sorted(repo.list_tags())),
    "main": data(repo, branch="main"),
    "dev": data(repo, branch="dev") if "dev" in repo.list_branches() else None,
}
"""


def test_refs_protect_their_tips_unless_deleted(both: Both, tmp_path: Path) -> None:
    for delete_branches, delete_tags in ((True, True), (False, True)):
        where = tmp_path / f"{delete_branches}-{delete_tags}"
        params = {"delete_branches": delete_branches, "delete_tags": delete_tags}
        ours, ours_files = run_scenario(both.ours, REFS, where / "ours", **params)
        ref, ref_files = run_scenario(both.reference, REFS, where / "ref", **params)
        assert equal(ours, ref), (ours, ref)
        assert ours_files == ref_files
        # Tips of refs stay (main's always), everything else older than the cut goes:
        # detached and amended-away snapshots too; roots never.
        assert ours["kept"] == ["c0", "c2", "c4", "c4_amended", "flushed"]
        assert ours["hist"]["main"] == ["c5", "init"]
        assert ours["hist"]["same"] == ["c3", "init"] and ours["hist"]["t1"] == ["c1", "init"]
        assert ours["kept_state"] == (["dev", "main", "same"], ["t1", "t_root"])
        # c5 spans every ancestor up to the root, the ones refs keep (c1, c3) too.
        pruned = ["c0", "c1", "c2", "c3", "c4_amended"]
        assert ours_files["snapshots"]["c5"] == ("init", pruned)
        if delete_branches:
            assert ours["refs"] == (["main"], ["t_root"])
            assert ours["gone"] == ["c1", "c3", "d1"]
        else:
            assert ours["refs"] == (["dev", "main", "same"], ["t_root"])
            assert ours["gone"] == ["c1"]
        assert ours_files["deleted_tags"] == ["t1"]
        np.testing.assert_array_equal(ours["main"], ref["main"])


READ_ONLY = """
repo = new_repo(path)
repo.set_status(icechunk.RepoStatus(icechunk.RepoAvailability.read_only))
repo.expire_snapshots(utc_now())
"""


def test_a_read_only_repository_refuses_expiration(both: Both, tmp_path: Path) -> None:
    for impl in (both.ours, both.reference):
        impl.run(PRELUDE)
        impl.run("path = where", where=str(tmp_path / impl.name))
    with raises("ReadOnlyError", kind="read-only-repository"):
        both.same(READ_ONLY)


SHARED_TIP = """
repo = new_repo(path)
commit(repo, "c0", 0, create=True)
commit(repo, "c1", 1)
ids = {label: sid for sid, label in labels.items()}
repo.create_branch("same", ids["c1"])
repo.create_branch("old", ids["c0"])
repo.create_tag("on_main", ids["c1"])
gone = named(repo.expire_snapshots(utc_now(), delete_expired_branches=True,
                                   delete_expired_tags=True))
(gone, sorted(repo.list_branches()), sorted(repo.list_tags()), ancestry(repo, branch="main"))
"""


def test_refs_sharing_mains_expired_tip_go_and_the_tip_stays(both: Both, tmp_path: Path) -> None:
    seen = [
        run_scenario(impl, SHARED_TIP, tmp_path / impl.name) for impl in (both.ours, both.reference)
    ]
    assert equal(seen[0], seen[1]), seen
    (gone, branches, tags, main), files = seen[0]
    # main's tip is never released, but the other refs on it (expired) are deleted.
    assert (gone, branches, tags, main) == (["c0"], ["main"], [], ["c1", "init"])
    assert files["deleted_tags"] == ["on_main"]
