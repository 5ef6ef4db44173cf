"""rewrite_manifests (both commit methods) and chunk storage statistics on spec-2 repositories,
on pyicechunk and on icechunk 2.3.0 side by side."""

from __future__ import annotations

from pathlib import Path

from ops_v2_support import PRELUDE, describe
from oracle import Both, equal, raises

SCENARIO = """
import warnings

config = icechunk.RepositoryConfig(inline_chunk_threshold_bytes=100)
repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(path)), config,
                                  spec_version=2)
s = repo.writable_session("main")
zarr.create_array(s.store, name="small", shape=(6,), chunks=(2,), dtype="i1")[:] = 7
commit(repo, "c0", 0, create=True, session=s)
commit(repo, "c1", 1)
repo.create_branch("dev", repo.lookup_branch("main"))
commit(repo, "d1", 2, branch="dev")


def stats():
    st = repo.chunk_storage_stats()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        total = repo.total_chunks_storage()
    return {
        "native": st.native_bytes, "virtual": st.virtual_bytes, "inlined": st.inlined_bytes,
        "total": total, "warned": [w.category.__name__ for w in caught],
    }


def chunk_files():
    return sum(p.stat().st_size for p in (Path(path) / "chunks").iterdir())


before = stats()
rewritten = repo.rewrite_manifests("rw", branch="main", metadata={"who": "me"})
labels[rewritten] = "rw"
amended = repo.rewrite_manifests("rw2", branch="main", commit_method="amend")
labels[amended] = "rw2"
info = repo.lookup_snapshot(amended)
after_rewrite = stats()
main = ancestry(repo, branch="main")
diff = repo.diff(from_snapshot_id=labels_by_name("c1"), to_branch="main")
expired = named(repo.expire_snapshots(utc_now()))
gc = summary(repo.garbage_collect(utc_now()))
{
    "before": before, "after_rewrite": after_rewrite, "after_gc": stats(),
    "main": main,
    "main_after_gc": ancestry(repo, branch="main"),
    "meta": info.metadata, "message": info.message,
    "diff_empty": not (diff.updated_chunks or diff.new_arrays or diff.updated_arrays),
    "data": data(repo, branch="main"),
    "small": zarr.open_array(repo.readonly_session("main").store, path="small", mode="r")[:],
    "kind": type(next(iter(repo.ops_log())).kind).__name__,
    "expired": expired,
    "gc": {k: v for k, v in gc.items() if k != "bytes_deleted"},
    "native_is_chunk_files": stats()["native"] == chunk_files(),
}
"""


def test_rewrite_manifests_and_statistics_agree(both: Both, tmp_path: Path) -> None:
    seen = []
    for impl in (both.ours, both.reference):
        path = tmp_path / impl.name
        impl.run(PRELUDE)
        impl.run("def labels_by_name(n):\n    return {v: k for k, v in labels.items()}[n]")
        result = impl.run(SCENARIO, path=str(path))
        seen.append((result, describe(path, impl.run("labels"))))
    (ours, ours_files), (ref, ref_files) = seen
    assert equal(ours, ref), (ours, ref)
    assert ours_files == ref_files
    assert ours["main"] == ["rw2", "c1", "c0", "init"]
    assert ours["main_after_gc"] == ["rw2", "init"] and ours["expired"] == ["c0", "c1", "rw"]
    assert ours["meta"]["__icechunk"]["splitting_config"]["split_sizes"]
    assert ours["message"] == "rw2" and ours["kind"] == "GCRan" and ours["diff_empty"]
    assert ours["before"]["warned"] == ["DeprecationWarning"]
    assert ours["before"]["total"] == ours["before"]["native"] > 0
    assert ours["before"]["inlined"] > 0 and ours["before"]["virtual"] == 0
    assert ours["native_is_chunk_files"]


def test_rewrite_manifests_refuses_an_unknown_commit_method(both: Both, tmp_path: Path) -> None:
    for impl in (both.ours, both.reference):
        impl.run(PRELUDE)
        impl.run("repo = new_repo(where)", where=str(tmp_path / impl.name))
    with raises("ValueError"):
        both.same("repo.rewrite_manifests('m', branch='main', commit_method='bogus')")
