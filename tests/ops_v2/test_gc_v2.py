"""garbage_collect on spec-2 repositories, run on pyicechunk and on icechunk 2.3.0 side by side.

Both implementations run each scenario; their GC summaries (counts; bytes are each
implementation's own object sizes, checked against the files that went), the objects that
survive, the snapshot list and the refs afterwards must be the same, and match FORMAT-V2 §12.3.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from ops_v2_support import PRELUDE, deleted_bytes, describe, files, run_scenario
from oracle import Both, InProcess, equal, raises

import pyicechunk
from pyicechunk.ops.gc import written_before
from pyicechunk.storage import ObjectInfo

EXPIRED_THEN_COLLECTED = """
repo = new_repo(path)
commit(repo, "c0", 0, create=True)
for i in range(1, 5):
    commit(repo, f"c{i}", i)
ids = {label: sid for sid, label in labels.items()}
expired = named(repo.expire_snapshots(written(repo, ids["c2"])))
def on_disk():
    root = Path(path)
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
before = on_disk()
dry = summary(repo.garbage_collect(utc_now(), dry_run=True))
{"expired": expired, "dry": dry, "dry_changed": on_disk() != before}
"""

COLLECT = """
real = summary(repo.garbage_collect(cutoff or utc_now()))
fresh = open_repo(path)
{
    "real": real,
    "main": ancestry(fresh, branch="main"),
    "data": data(fresh, branch="main"),
    "chunks": {k: sorted(map(list, v)) for k, v in
               fresh.diff(from_snapshot_id=INITIAL, to_branch="main").updated_chunks.items()},
    "kinds": [type(u.kind).__name__ for u in list(fresh.ops_log())[:2]],
}
"""


def _counts(summary: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in summary.items() if k != "bytes_deleted"}


def _collect(impl: InProcess, path: Path, cutoff: dt.datetime | None = None) -> dict:
    before = files(path)
    out = impl.run(COLLECT, cutoff=cutoff)
    after = files(path)
    # Bytes are the implementation's own sizes: they must be those of the files that went.
    assert out["real"]["bytes_deleted"] == deleted_bytes(before, after)
    # overwritten/ is never collected; the one new copy is GCRan's backup of the old state.
    assert {k for k in before if k.startswith("overwritten/")} <= set(after)
    assert sum(k.startswith("overwritten/") for k in after) == 1 + sum(
        k.startswith("overwritten/") for k in before
    )
    out["real"] = _counts(out["real"])
    return out


def test_expired_snapshots_go_and_their_transaction_logs_stay(both: Both, tmp_path: Path) -> None:
    seen = []
    for impl in (both.ours, both.reference):
        path = tmp_path / impl.name / "repo"
        prepared, _ = run_scenario(impl, EXPIRED_THEN_COLLECTED, path)
        before = files(path)
        prepared["dry"] = _counts(prepared["dry"])
        collected = _collect(impl, path)
        assert files(path) != before
        seen.append((prepared, collected, describe(path, impl.run("labels"))))
    (ours, ours_gc, ours_files), (ref, ref_gc, ref_files) = seen
    assert equal(ours, ref) and equal(ours_gc, ref_gc), (ours, ref, ours_gc, ref_gc)
    assert ours_files == ref_files
    # A dry run counts the same and changes nothing (no ops-log entry either).
    assert ours["dry"] == ours_gc["real"] and not ours["dry_changed"]
    assert ours_gc["real"]["snapshots_deleted"] == 2
    # The logs of c0 and c1 are in c2's pruned list: kept, though their snapshots are gone.
    # (This is why icechunk 2.3.0 deletes no transaction logs after an expiration.)
    assert ours_gc["real"]["transaction_logs_deleted"] == 0
    assert ours_files["snapshot_files"] == sorted(["init", "c2", "c3", "c4"])
    assert ours_files["transaction_logs"] == sorted(["init", "c0", "c1", "c2", "c3", "c4"])
    assert ours_gc["kinds"] == ["GCRan", "ExpirationRan"]
    assert ours_gc["chunks"] == {"/a": [[i, 0] for i in range(5)]}


SPEC1 = """
repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(path)),
                                  icechunk.RepositoryConfig(inline_chunk_threshold_bytes=0),
                                  spec_version=1)
commit(repo, "c0", 0, create=True)
for i in range(1, 5):
    commit(repo, f"c{i}", i)
ids = {label: sid for sid, label in labels.items()}
expired = named(repo.expire_snapshots(written(repo, ids["c2"])))
(expired, summary(repo.garbage_collect(utc_now())))
"""


def test_spec1_deletes_the_transaction_logs_spec2_keeps(pyic: InProcess, tmp_path: Path) -> None:
    """The same history on spec 1 has no pruned lists: the expired snapshots' logs go too."""
    pyic.run(PRELUDE)
    expired, real = pyic.run(SPEC1, path=str(tmp_path / "v1"))
    assert expired == ["c0", "c1"]
    assert real["snapshots_deleted"] == 2 and real["transaction_logs_deleted"] == 2


UNREACHABLE = """
repo = new_repo(path)
commit(repo, "c0", 0, create=True)
commit(repo, "c1", 1)
commit(repo, "c2", 2)
commit(repo, "c3", 3)
ids = {label: sid for sid, label in labels.items()}
repo.reset_branch("main", ids["c0"])
# c2's file looks new (written after the cutoff), so GC keeps it though no ref reaches it;
# its parent c1 goes, and c2 then hangs from c0, its nearest kept ancestor.
future = time.time() + 3600
os.utime(path / "snapshots" / ids["c2"], (future, future))
None
"""


def test_recent_unreferenced_snapshots_stay_on_their_nearest_kept_ancestor(
    both: Both, tmp_path: Path
) -> None:
    seen = []
    for impl in (both.ours, both.reference):
        path = tmp_path / impl.name / "repo"
        impl.run(PRELUDE)
        impl.run("path = Path(where)", where=str(path))
        impl.run(UNREACHABLE)
        collected = _collect(impl, path)
        c2 = impl.run("data(open_repo(path), snapshot_id=ids['c2'])")
        seen.append((collected, describe(path, impl.run("labels")), c2))
    (ours, ours_files, ours_c2), (ref, ref_files, ref_c2) = seen
    assert equal(ours, ref), (ours, ref)
    assert ours_files == ref_files
    np.testing.assert_array_equal(ours_c2, ref_c2)
    assert ours_files["snapshots"]["c2"] == ("c0", ["c1"])
    assert "c1" not in ours_files["snapshots"] and "c3" not in ours_files["snapshots"]
    assert ours_files["snapshot_files"] == sorted(["init", "c0", "c2"])
    # c1's log stays for c2's pruned list; c3's goes with it.
    assert ours_files["transaction_logs"] == sorted(["init", "c0", "c1", "c2"])
    assert ours["real"]["snapshots_deleted"] == 2


def test_nothing_old_enough_still_records_the_run(both: Both, tmp_path: Path) -> None:
    seen = []
    for impl in (both.ours, both.reference):
        path = tmp_path / impl.name / "repo"
        impl.run(PRELUDE)
        impl.run("path = Path(where)", where=str(path))
        impl.run(UNREACHABLE.replace("future = time.time() + 3600", "future = time.time()"))
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        collected = _collect(impl, path, cutoff)
        seen.append((collected, describe(path, impl.run("labels"))))
    assert equal(seen[0], seen[1]), seen
    (ours, ours_files), _ = seen
    assert set(ours["real"].values()) == {0}
    assert sorted(ours_files["snapshots"]) == sorted(["init", "c0", "c1", "c2", "c3"])
    assert ours["kinds"][0] == "GCRan"


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_read_only_repository_refuses_collection(
    both: Both, tmp_path: Path, dry_run: bool
) -> None:
    for impl in (both.ours, both.reference):
        impl.run(PRELUDE)
        impl.run("repo = new_repo(where)", where=str(tmp_path / impl.name))
        impl.run("repo.set_status(icechunk.RepoStatus(icechunk.RepoAvailability.read_only))")
    with raises("ReadOnlyError", kind="read-only-repository"):
        both.same("repo.garbage_collect(utc_now(), dry_run=dry_run)", dry_run=dry_run)


def test_spec1_repositories_have_no_repo_object_to_edit(tmp_path: Path) -> None:
    repo = pyicechunk.Repository.create(
        pyicechunk.local_filesystem_storage(str(tmp_path)), spec_version=1
    )
    state = repo._ctx.state  # the seam itself: spec 1 keeps no repo object
    assert pyicechunk._sync.sync(state.repo_info()) is None
    with pytest.raises(pyicechunk.IcechunkError, match=r"at least version 2\.0"):
        pyicechunk._sync.sync(state.update_repo_info(lambda info: (info, None)))  # type: ignore[arg-type]


ON_S3 = """
repo = icechunk.Repository.create(make_storage(where),
                                  icechunk.RepositoryConfig(inline_chunk_threshold_bytes=0),
                                  spec_version=2)
commit(repo, "c0", 0, create=True)
for i in range(1, 4):
    commit(repo, f"c{i}", i)
ids = {label: sid for sid, label in labels.items()}
repo.create_branch("dev", ids["c1"])
repo.reset_branch("main", ids["c2"])  # c3 is left unreachable
expired = named(repo.expire_snapshots(written(repo, ids["c2"])))
# S3 lists whole seconds: wait for the next one, so that every object is certainly older.
time.sleep(1.01 - utc_now().microsecond / 1e6)
gc = summary(repo.garbage_collect(utc_now()))
fresh = icechunk.Repository.open(make_storage(where))
{
    "expired": expired,
    "gc": {k: v for k, v in gc.items() if k != "bytes_deleted"},
    "main": ancestry(fresh, branch="main"), "dev": ancestry(fresh, branch="dev"),
    "data": data(fresh, branch="main"),
    "chunks": {k: sorted(map(list, v)) for k, v in
               fresh.diff(from_snapshot_id=INITIAL, to_branch="main").updated_chunks.items()},
    "kinds": [type(u.kind).__name__ for u in list(fresh.ops_log())[:2]],
}
"""


def test_expiration_and_collection_on_s3(both: Both, storage_spec: Callable[..., dict]) -> None:
    seen = []
    for impl in (both.ours, both.reference):
        impl.run(PRELUDE)
        seen.append(impl.run(ON_S3, where=storage_spec("s3")))
    assert equal(seen[0], seen[1]), seen
    ours = seen[0]
    assert ours["expired"] == ["c0"] and ours["main"] == ["c2", "c1", "init"]
    assert ours["dev"] == ["c1", "init"]
    # c0's snapshot goes and its log stays (c1's pruned list); c3 goes with its log.
    assert ours["gc"]["snapshots_deleted"] == 2 and ours["gc"]["transaction_logs_deleted"] == 1
    assert ours["chunks"] == {"/a": [[0, 0], [1, 0], [2, 0]]}
    assert ours["kinds"] == ["GCRan", "ExpirationRan"]


def test_whole_second_listing_times_count_as_the_end_of_their_second() -> None:
    """S3 lists times truncated to the second: an object listed at S was written in [S, S+1),
    so on spec 2 it is older than a threshold only from S+1 on, as icechunk 2.3.0 decides
    there (measured against it on the moto server: S+0.999 s kept, S+1 s deleted)."""
    s = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    listed = ObjectInfo("snapshots/X", 10, s)
    assert not written_before(listed, s + dt.timedelta(milliseconds=999))
    assert written_before(listed, s + dt.timedelta(seconds=1))
    # icechunk 1.1.21 compares the truncated time as it is (measured the same way): spec 1.
    assert written_before(listed, s + dt.timedelta(milliseconds=1), spec2=False)
    precise = ObjectInfo("snapshots/X", 10, s + dt.timedelta(microseconds=10))
    assert written_before(precise, s + dt.timedelta(microseconds=11))
    assert not written_before(precise, s + dt.timedelta(microseconds=10))


LIMITS = """
repo = new_repo(where)
outcomes = []
for call in ("gc", "stats"):
    for limit in ("max_snapshots_in_memory", "max_compressed_manifest_mem_bytes",
                  "max_decoded_manifest_mem_bytes", "max_concurrent_manifest_fetches",
                  "max_concurrent_deletes", "max_consecutive_delete_failures",
                  "max_concurrent_listings"):
        if call == "stats" and limit not in ("max_snapshots_in_memory",
                                             "max_decoded_manifest_mem_bytes",
                                             "max_compressed_manifest_mem_bytes",
                                             "max_concurrent_manifest_fetches"):
            continue
        for value in (0, -1):
            try:
                if call == "gc":
                    repo.garbage_collect(utc_now(), dry_run=True, **{limit: value})
                else:
                    repo.chunk_storage_stats(**{limit: value})
                outcomes.append((call, limit, value, None))
            except (ValueError, OverflowError) as e:
                outcomes.append((call, limit, value, type(e).__name__))
ok = repo.garbage_collect(utc_now(), dry_run=True, max_concurrent_deletes=1,
                          max_concurrent_listings=None, max_decoded_manifest_mem_bytes=1)
(outcomes, ok.snapshots_deleted)
"""


def test_limits_are_checked_as_icechunk_2_3_0_checks_them(both: Both, tmp_path: Path) -> None:
    for impl in (both.ours, both.reference):
        impl.run(PRELUDE)
        impl.run("where = p", p=str(tmp_path / impl.name))
    outcomes, deleted = both.same(LIMITS)
    assert deleted == 0
    assert {o[3] for o in outcomes} == {"ValueError", "OverflowError"}
