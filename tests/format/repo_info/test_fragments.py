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


def _fresh(repo: RepoInfo, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """The encoding with nothing recorded beforehand (and nothing recorded by it kept)."""
    with monkeypatch.context() as m:
        m.setattr(codec, "_FRAGMENTS", {})
        m.setattr(codec, "_SNAPSHOT_FRAGMENTS", {})
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


def test_replay_refuses_another_alignment_or_a_missing_vtable() -> None:
    def record(b: Builder) -> int:
        name = b.create_string("x")
        b.start_table(2)
        b.add_u64(1, 7)
        b.add_offset(0, name)
        return b.end_table()

    first = Builder()
    record(first)  # writes the vtable
    token = first.start_fragment()
    fragment = first.end_fragment(token, record(first))
    assert fragment is not None and fragment.align == 8

    # No such vtable in a new buffer: nothing is written.
    other = Builder()
    assert other.replay(fragment) is None and other.offset() == 0

    # Same vtable, same alignment: the same bytes as the calls.
    by_calls, by_replay = Builder(), Builder()
    for b in (by_calls, by_replay):
        b.create_string("pad" * b.offset())  # identical prefixes
        record(b)
    while by_calls.offset() % 8 != fragment.phase:
        for b in (by_calls, by_replay):
            b.create_string("four")
    ref = by_replay.replay(fragment)
    assert ref == record(by_calls)
    assert by_replay.finish(ref) == by_calls.finish(ref)

    # Another position modulo 8: refused.
    shifted = Builder()
    record(shifted)
    while shifted.offset() % 8 == fragment.phase:
        shifted.create_string("four")
    assert shifted.replay(fragment) is None

    # A fragment that wrote a vtable of its own is not kept.
    fresh = Builder()
    token = fresh.start_fragment()
    assert fresh.end_fragment(token, record(fresh)) is None
