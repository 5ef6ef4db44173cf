"""Each implementation expires and garbage-collects its own copy of one repository: the copies
must end up identical (the same files, by name, and the same snapshot list and refs).

The repositories are a varied spec-2 history written by icechunk 2.3.0 (branches, tags, a
deleted tag, a detached snapshot, an amend, a branch reset away from commits) and a spec-1
history migrated to spec 2, whose snapshots are spec-1 objects.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from ops_v2_support import PRELUDE, describe, files
from oracle import Both, equal

HISTORY = """
repo = new_repo(path) if spec == 2 else icechunk.Repository.create(
    icechunk.local_filesystem_storage(str(path)),
    icechunk.RepositoryConfig(inline_chunk_threshold_bytes=0), spec_version=1)
commit(repo, "c0", 0, create=True)
for i in range(1, 6):
    commit(repo, f"c{i}", i)
ids = {label: sid for sid, label in labels.items()}
repo.create_branch("dev", ids["c1"])
commit(repo, "d1", 6, branch="dev")
commit(repo, "d2", 7, branch="dev")
repo.create_tag("t2", ids["c2"])
repo.create_tag("gone", ids["c3"])
repo.delete_tag("gone")
if spec == 2:
    s = repo.writable_session("main")
    zarr.open_array(s.store, path="a", mode="r+")[7] = values(70)
    commit(repo, "flushed", None, session=s, how="flush")
    commit(repo, "c6", 6)
    commit(repo, "c6_amended", 5, how="amend")
repo.reset_branch("main", ids["c4"])
times = {label: written(repo, sid) for sid, label in labels.items()}
(labels, times)
"""

UPGRADE = """
icechunk.upgrade_icechunk_repository(open_repo(path), dry_run=False)
None
"""

MAINTAIN = """
labels.update(known)
repo = open_repo(path)
expired = named(repo.expire_snapshots(cut))
gc = summary(repo.garbage_collect(utc_now()))
fresh = open_repo(path)
{
    "expired": expired,
    "gc": {k: v for k, v in gc.items() if k != "bytes_deleted"},
    "refs": {b: ancestry(fresh, branch=b) for b in sorted(fresh.list_branches())}
            | {t: ancestry(fresh, tag=t) for t in sorted(fresh.list_tags())},
    "main": data(fresh, branch="main"),
    "dev": data(fresh, branch="dev"),
}
"""


@pytest.mark.parametrize("spec", [2, 1], ids=["spec-2 by icechunk2", "spec-1 migrated"])
def test_both_implementations_maintain_a_copy_the_same_way(
    both: Both, tmp_path: Path, spec: int
) -> None:
    original = tmp_path / "original"
    writer = both.reference if spec == 2 else both.ours
    writer.run(PRELUDE)
    labels, times = writer.run(HISTORY, path=str(original), spec=spec)
    if spec == 1:
        both.ours.run(UPGRADE, path=str(original))
    seen = []
    for impl in (both.ours, both.reference):
        copy = tmp_path / impl.name / "copy"
        shutil.copytree(original, copy)  # file times kept: the GC threshold sees the same
        impl.run(PRELUDE)
        result = impl.run(MAINTAIN, path=str(copy), known=labels, cut=times["c3"])
        seen.append((result, describe(copy, labels), set(files(copy))))
    (ours, ours_files, ours_names), (ref, ref_files, ref_names) = seen
    assert equal(ours, ref), (ours, ref)
    assert ours_files == ref_files
    # The same objects, by name, except the ops-log copies (new random names on each side).
    assert {n for n in ours_names if not n.startswith("overwritten/")} == {
        n for n in ref_names if not n.startswith("overwritten/")
    }
    assert ours["refs"]["main"] == ["c4", "c3", "c2", "init"]  # c2 kept by its tag
    assert ours["expired"][:2] == ["c0", "c1"]
