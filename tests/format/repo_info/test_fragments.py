"""The repo object's encoder writes the ops-log and snapshot-list entries as blocks kept from
recent encodings: the result must be the bytes of a fresh encoding, step after step of a
changing repository (snapshots inserted anywhere in the id order, so parent positions move; the
window cutting the log; every kind of entry); a block reads back the same wherever it lands;
and blocks are found by identity, so only new entries are written."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

import numpy as np
import pytest

from pyicechunk.format.flatbuf import Builder, root_table
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
    Update,
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
from pyicechunk.format.repo_info.blocks import EntryBlocks, write_block
from pyicechunk.format.repo_info.order import RecentOrder, SnapshotOrder
from pyicechunk.format.repo_info.templates import BlockTemplates


def _fresh(repo: RepoInfo, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """The encoding with nothing kept beforehand (and nothing it writes kept)."""
    with monkeypatch.context() as m:
        m.setattr(codec, "_UPDATE_BLOCKS", codec._UPDATE_BLOCKS.fresh())
        m.setattr(codec, "_SNAPSHOT_BLOCKS", codec._SNAPSHOT_BLOCKS.fresh())
        for name in ("_DELETED_BLOCKS", "_TAG_BLOCKS", "_BRANCH_BLOCKS", "_SETTINGS_BLOCKS"):
            m.setattr(codec, name, getattr(codec, name).fresh())
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


def _entry(b: Builder, name: str) -> tuple[int, int]:
    """A table with an 8-aligned field, a string and an ``int32`` to set on each write."""
    text = b.create_string(name)
    b.start_table(3)
    b.add_u64(1, 7)
    b.add_i32(2, 0, default=None)
    mark = b.field_ref(2)
    b.add_offset(0, text)
    return b.end_table(), mark


@pytest.mark.parametrize("head", ["", "h", "hhhh", "hhhhhhh", "a longer string of text"])
def test_a_block_reads_the_same_wherever_it_lands(head: str) -> None:
    names = [f"entry {i}" + "." * (i % 3) for i in range(7)]
    blocks = EntryBlocks(_entry)
    b = Builder()
    first = b.create_string(head)  # whatever came before moves where the blocks land
    vector = blocks.write(b, names, np.arange(len(names)) * 3 - 2)
    b.start_table(2)
    b.add_offset(0, first)
    b.add_offset(1, vector)
    buf = b.finish(b.end_table())
    assert len(buf) % 8 == 0
    entries = root_table(buf).vector(1, 4)
    assert entries is not None and len(entries) == len(names)
    for i, name in enumerate(names):
        table = entries.table(i)
        assert table.string(0) == name and table.i32(2) == 3 * i - 2
        assert table.u64(1) == 7 and table.field_pos(1, 8) % 8 == 0
    data, table_ref, mark = write_block(lambda b: _entry(b, names[0]))
    assert len(data) % 8 == 0 and 0 < mark < table_ref <= len(data)


def test_blocks_are_found_by_identity_and_kept_for_two_encodings() -> None:
    written: list[str] = []

    def write(b: Builder, entry: list[str]) -> tuple[int, int]:
        written.append(entry[0])
        return _entry(b, entry[0])

    a, c, d = ["a"], ["c"], ["d"]
    blocks = EntryBlocks(write)
    blocks.write(Builder(), [a, c])
    assert written == ["a", "c"]
    blocks.write(Builder(), [a, c, d])
    assert written == ["a", "c", "d"]  # only the new entry
    blocks.write(Builder(), [["a"], d])  # an equal entry, another object: written again
    assert written == ["a", "c", "d", "a"]
    blocks.write(Builder(), [d])
    blocks.write(Builder(), [c])  # last in the encoding before the previous one: gone
    assert written == ["a", "c", "d", "a", "c"]
    blocks.fresh().write(Builder(), [c])
    assert written[-1] == "c" and len(written) == 6


def _vector_bytes(blocks: EntryBlocks[list[str]], entries: list[list[str]]) -> bytes:
    b = Builder()
    vector = blocks.write(b, entries, np.arange(len(entries), dtype=np.int64))
    b.start_table(1)
    b.add_offset(0, vector)
    return b.finish(b.end_table())


def _counting(written: list[str]) -> EntryBlocks[list[str]]:
    def write(b: Builder, entry: list[str]) -> tuple[int, int]:
        written.append(entry[0])
        return _entry(b, entry[0])

    return EntryBlocks(write)


@pytest.mark.parametrize(
    "change",
    ["window", "removed here and there", "appended", "cut short", "inserted", "same"],
)
def test_shared_runs_are_copied_and_only_new_entries_written(change: str) -> None:
    first = [[f"entry {i}" + "." * (i % 5)] for i in range(40)]
    written: list[str] = []
    blocks = _counting(written)
    _vector_bytes(blocks, first)
    new_entries: list[list[str]] = []
    if change == "window":  # one in front, the previous first replaced, two dropped at the end
        new_entries = [["new"], ["entry 0, replaced"]]
        entries = [*new_entries, *first[1:-2]]
    elif change == "removed here and there":  # as expiration does to the snapshot list
        entries = [e for i, e in enumerate(first) if i % 3]
    elif change == "appended":
        new_entries = [["x"], ["y"]]
        entries = [*first, *new_entries]
    elif change == "cut short":
        entries = first[:25]
    elif change == "inserted":
        new_entries = [["z"]]
        entries = [*first[:17], *new_entries, *first[17:]]
    else:
        entries = list(first)
    del written[:]
    kept = _vector_bytes(blocks, entries)
    assert written == [e[0] for e in new_entries]
    assert kept == _vector_bytes(_counting([]), entries)  # the bytes of a fresh encoding
    entries_read = root_table(kept).vector(0, 4)
    assert entries_read is not None and len(entries_read) == len(entries)
    for i, e in enumerate(entries):
        assert entries_read.table(i).string(0) == e[0]
        assert entries_read.table(i).i32(2) == i


def test_two_lists_written_in_turn_keep_their_blocks() -> None:
    one = [[f"a{i}"] for i in range(12)]
    two = [[f"b{i}"] for i in range(12)]
    written: list[str] = []
    blocks = _counting(written)
    _vector_bytes(blocks, one)
    _vector_bytes(blocks, two)
    del written[:]
    for k in range(3):
        one = [[f"a new {k}"], *one]
        assert _vector_bytes(blocks, one) == _vector_bytes(_counting([]), one)
        two = [*two[:5], *two[6:]]
        assert _vector_bytes(blocks, two) == _vector_bytes(_counting([]), two)
    assert written == ["a new 0", "a new 1", "a new 2"]


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


@pytest.mark.parametrize("seed", range(3))
def test_template_blocks_are_the_builder_blocks(seed: int) -> None:
    """An ops-log block made from the template of its shape is the block the builder writes,
    for every kind of entry, names of any length (multi-byte ones too), with and without a
    backup path."""
    rnd = random.Random(seed)
    templates = BlockTemplates(codec._update_table, codec._update_parts)

    def name() -> str:
        return "".join(rnd.choice("ab/é字") for _ in range(rnd.randrange(0, 12)))

    def sid() -> bytes:
        return rnd.randbytes(12)

    kinds: list[Callable[[], UpdateAction]] = [
        lambda: TagCreated(name()),
        lambda: BranchCreated(name()),
        lambda: BranchDeleted(name(), sid()),
        lambda: NewCommit(name(), sid()),
        lambda: CommitAmended(name(), sid(), sid()),
        lambda: NewDetachedSnapshot(sid()),
        lambda: GCRan(),
        lambda: ExpirationRan(),
        lambda: FeatureFlagChanged(rnd.randrange(8), rnd.choice([None, True, False])),
        lambda: RepoStatusChanged(RepoStatus(rnd.randrange(3), rnd.randrange(1, 10**6))),
    ]
    for _ in range(400):
        action = rnd.choice(kinds)()
        backup = rnd.choice([None, backup_name(rnd.randrange(1, 10**12))])
        update = Update(action, rnd.choice([1, rnd.randrange(1, 2**64)]), backup)
        expected = write_block(lambda b, u=update: (codec._update_table(b, u)[0], 0))
        assert templates.block(update) == expected
