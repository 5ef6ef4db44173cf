"""The repo object's encoder copies runs of unchanged ops-log and snapshot-list entries from
recent encodings: the result must be the bytes of a fresh encoding, step after step of a
changing repository (snapshots inserted anywhere in the id order, so parent positions move; the
window cutting the log; every kind of entry); and the copy itself writes what writing the items
writes, where it copies at all."""

from __future__ import annotations

import dataclasses
import random

import pytest

from pyicechunk.format.flatbuf import Builder
from pyicechunk.format.flatbuf.runs import ItemRecorder, Items
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
from pyicechunk.format.repo_info.reuse import RecentOrder, RecentRuns, SnapshotOrder


def _fresh(repo: RepoInfo, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """The encoding with nothing recorded beforehand (and nothing recorded by it kept)."""
    with monkeypatch.context() as m:
        m.setattr(codec, "_RECENT_UPDATES", RecentRuns())
        m.setattr(codec, "_RECENT_SNAPSHOTS", RecentRuns())
        m.setattr(codec, "_RECENT_ORDER", RecentOrder())
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


@pytest.mark.parametrize("seed", range(4))
def test_the_carried_over_snapshot_order_is_the_fresh_one(seed: int) -> None:
    """Snapshots added (one or many), reparented, removed, or the mapping changed in place
    after an encoding: the order carried over is always the one computed from scratch."""
    rnd = random.Random(seed)
    root = SnapshotInfo(rnd.randbytes(12), None, 0, "root")
    snapshots = {root.id: root}
    recent = RecentOrder()
    for step in range(150):
        k = rnd.randrange(10)
        ids = list(snapshots)
        if k < 6:  # one or more new snapshots, each under some listed parent
            for _ in range(rnd.choice([1, 1, 2, 20])):
                info = SnapshotInfo(rnd.randbytes(12), rnd.choice(ids), step, "c")
                snapshots = {**snapshots, info.id: info}
        elif k == 6 and len(ids) > 1:  # a new parent for one (values equal elsewhere)
            sid = rnd.choice(ids[1:])
            others = [x for x in ids if x != sid]
            snapshots = {**snapshots, sid: SnapshotInfo(sid, rnd.choice(others), step, "r")}
            snapshots = {x: dataclasses.replace(s) for x, s in snapshots.items()}
        elif k == 7 and len(ids) > 2:  # a leaf removed
            parents = {s.parent_id for s in snapshots.values()}
            leaves = [x for x in ids[1:] if x not in parents]
            if leaves:
                gone = rnd.choice(leaves)
                snapshots = {x: s for x, s in snapshots.items() if x != gone}
        elif k == 8:  # the very mapping last encoded, changed in place
            info = SnapshotInfo(rnd.randbytes(12), rnd.choice(ids), step, "m")
            snapshots[info.id] = info
        got, fresh = recent.order(snapshots), SnapshotOrder.of(snapshots)
        assert got.ids == fresh.ids == sorted(snapshots), f"step {step}"
        assert got.entries == fresh.entries and list(got.parents) == list(fresh.parents)
    orphan = SnapshotInfo(rnd.randbytes(12), rnd.randbytes(12), 0, "orphan")
    with pytest.raises(ValueError, match="unlisted snapshot"):
        recent.order({**snapshots, orphan.id: orphan})  # carried over, then refused
    with pytest.raises(ValueError, match="listed under another id"):
        recent.order({**snapshots, rnd.randbytes(12): root})


def _entry(b: Builder, name: str) -> int:
    """An item: a table (8-aligned) and its string, then a string that moves what follows."""
    text = b.create_string(name)
    b.start_table(2)
    b.add_u64(1, 7)
    b.add_offset(0, text)
    table = b.end_table()
    b.create_string(name)
    return table


def _record(names: list[str]) -> tuple[bytes, Items]:
    b = Builder()
    rec = ItemRecorder(b)
    refs = []
    for name in names:
        rec.begin()
        refs.append(_entry(b, name))
        rec.end(refs[-1])
    buffer = b.finish(b.create_offset_vector(refs))
    return buffer, rec.items(buffer)


def test_a_copied_run_is_what_writing_it_writes() -> None:
    names = [f"entry {i}" + "." * (i % 3) for i in range(20)]
    _, items = _record(names)
    assert items.own_vtables == (0,)  # the first table of the layout wrote its vtable
    outcomes = set()
    for head in ("h", "hh", "hhhh", "hhhhhhh"):
        by_calls, by_copy = Builder(), Builder()
        recs = [ItemRecorder(by_calls), ItemRecorder(by_copy)]
        for b, rec in zip((by_calls, by_copy), recs, strict=True):
            rec.begin()
            rec.end(_entry(b, head))  # the vtable, in both
        expected = [_entry(by_calls, name) for name in names[1:]]
        possible = recs[1].can_copy(items, 1)
        outcomes.add(possible)
        if possible:
            got = recs[1].copy(items, 1, len(names))
            assert got == expected  # every one: none of them wrote a vtable
            assert by_copy.finish(got[-1]) == by_calls.finish(expected[-1])
        else:
            # Another position modulo 8: the run is not taken from this recording.
            assert possible is False and by_copy.offset() % 8 != items.bounds[1] % 8
    assert outcomes == {True, False}


def test_a_copy_needs_the_vtables_and_stops_before_an_item_that_wrote_one() -> None:
    _, items = _record(["a", "b", "c"])
    # A buffer without the layout's vtable: no recording can give the item.
    assert ItemRecorder(Builder()).can_copy(items, 1) is None
    # An item that wrote a vtable is not copied from that recording.
    b = Builder()
    rec = ItemRecorder(b)
    rec.begin()
    rec.end(_entry(b, "a"))
    while b.offset() % 8 != items.bounds[0] % 8:
        b.create_string("four")
    assert rec.can_copy(items, 0) is False


def test_a_long_varied_history_encodes_as_from_scratch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many snapshots, branches and tags made and deleted, metadata, and the 1000-entry window
    rolling over: every version's bytes (encoded with the kept recordings) are the fresh ones."""
    from pyicechunk.format.repo_info import (
        MetadataChanged,
        TagDeleted,
        delete_branch,
        delete_tag,
    )

    rnd = random.Random(1234)
    t = 1_700_000_000_000_000
    root = SnapshotInfo(rnd.randbytes(12), None, t, "Repository initialized")
    repo = initial_repo_info(root, t)
    ids = [root.id]
    rolled = False
    for i in range(1300):
        t += rnd.randrange(1, 10**5)
        k = rnd.randrange(10)
        action: UpdateAction
        if k < 4 or (len(ids) < 200 and k < 6):
            metadata = (("author", rnd.randbytes(rnd.randrange(1, 9))),) if k % 2 else ()
            info = SnapshotInfo(rnd.randbytes(12), repo.branches["main"], t, f"c{i}", metadata)
            repo = set_branch(add_snapshot(repo, info), "main", info.id)
            ids.append(info.id)
            action = NewCommit("main", info.id)
        elif k == 6:
            extra = sorted(set(repo.branches) - {"main"})
            if len(extra) >= 5:
                name = rnd.choice(extra)
                action = BranchDeleted(name, repo.branches[name])
                repo = delete_branch(repo, name)
            else:
                repo = create_branch(repo, f"br{i}", rnd.choice(ids))
                action = BranchCreated(f"br{i}")
        elif k == 7:
            if len(repo.tags) >= 5:
                name = rnd.choice(sorted(repo.tags))
                action = TagDeleted(name, repo.tags[name])
                repo = delete_tag(repo, name)
            else:
                repo = create_tag(repo, f"tag{i}", rnd.choice(ids))
                action = TagCreated(f"tag{i}")
        elif k == 8:
            repo = dataclasses.replace(repo, metadata=(("owner", rnd.randbytes(4)),))
            action = MetadataChanged()
        else:
            action = rnd.choice([GCRan(), ExpirationRan()])
        repo = record_update(repo, action, t, backup_name(t // 1000, rnd.randbytes(12)))
        rolled = rolled or repo.repo_before_updates is not None
        encoded = encode_repo_info(repo)
        if i % 23 == 0 or 990 < i < 1030 or i == 1299:
            assert encoded == _fresh(repo, monkeypatch), f"step {i}"
    assert rolled and len(repo.latest_updates) == 1000
    assert repo.deleted_tags and len(ids) > 200
