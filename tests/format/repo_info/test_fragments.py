"""The repo object's encoder copies the recorded bytes of unchanged ops-log and snapshot-list
entries from one version to the next: the result must be the bytes of a fresh encoding, step
after step of a changing repository (snapshots inserted anywhere in the id order, so parent
positions move; the window cutting the log; every kind of entry)."""

from __future__ import annotations

import random

import pytest

from pyicechunk.format.flatbuf import Builder
from pyicechunk.format.repo_info import (
    BranchCreated,
    BranchDeleted,
    CommitAmended,
    ExpirationRan,
    FeatureFlagChanged,
    GCRan,
    NewCommit,
    NewDetachedSnapshot,
    RepoInfo,
    RepoStatus,
    RepoStatusChanged,
    SnapshotInfo,
    TagCreated,
    UpdateAction,
    add_snapshot,
    backup_name,
    codec,
    create_branch,
    create_tag,
    decode_repo_info,
    encode_repo_info,
    initial_repo_info,
    record_update,
    set_branch,
)
from pyicechunk.format.repo_info.reuse import RecentRuns


def _fresh(repo: RepoInfo, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """The encoding with nothing recorded beforehand (and nothing recorded by it kept)."""
    with monkeypatch.context() as m:
        m.setattr(codec, "_RECENT_UPDATES", RecentRuns())
        m.setattr(codec, "_RECENT_SNAPSHOTS", RecentRuns())
        return encode_repo_info(repo)


@pytest.mark.parametrize("seed", range(6))
def test_each_version_is_the_fresh_encoding(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rnd = random.Random(seed)
    t = 1_700_000_000_000_000
    root = SnapshotInfo(rnd.randbytes(12), None, t, "Repository initialized")
    repo = initial_repo_info(root, t)
    ids = [root.id]
    window = rnd.choice([10, 1000])
    for i in range(120):
        t += rnd.randrange(1, 10**6)
        k = rnd.randrange(8)
        action: UpdateAction
        if k < 4:
            parent = rnd.choice(ids)
            pruned = tuple(rnd.randbytes(12) for _ in range(rnd.randrange(3)))
            metadata = (("author", b"\x01\x02"),) if k == 3 else ()
            info = SnapshotInfo(rnd.randbytes(12), parent, t, f"c{i}" * k, metadata, pruned)
            repo = set_branch(add_snapshot(repo, info), "main", info.id)
            ids.append(info.id)
            action = (
                NewCommit("main", info.id),
                CommitAmended("main", parent, info.id),
                NewDetachedSnapshot(info.id),
                NewCommit("main", info.id),
            )[k]
        elif k == 4:
            repo = create_branch(repo, f"b{i}", rnd.choice(ids))
            action = BranchCreated(f"b{i}")
        elif k == 5:
            repo = create_tag(repo, f"t\u00e9{i}", rnd.choice(ids))
            action = TagCreated(f"t\u00e9{i}")
        else:
            action = rnd.choice(
                [
                    GCRan(),
                    ExpirationRan(),
                    BranchDeleted("x" * rnd.randrange(1, 6), rnd.randbytes(12)),
                    FeatureFlagChanged(rnd.randrange(1, 4), rnd.choice([True, False, None])),
                    RepoStatusChanged(RepoStatus(rnd.randrange(2), t, rnd.choice([None, "r"]))),
                ]
            )
        repo = record_update(repo, action, t, backup_name(t // 1000, rnd.randbytes(12)), window)
        encoded = encode_repo_info(repo)
        assert encoded == _fresh(repo, monkeypatch), f"step {i}"
        if i % 40 == 39:
            # A decoded state (new objects, equal values) is encoded the same way.
            assert encode_repo_info(decode_repo_info(encoded)) == encoded


