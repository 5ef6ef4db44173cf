"""The spec-2 ``repo`` object (FORMAT-V2 §5, §10.3, §12.2) and its pure edit helpers."""

from __future__ import annotations

import dataclasses
import random
import time
from pathlib import Path

import pytest

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.flatbuf import Builder, root_table
from pyicechunk.format.flexbuffers import decode_flexbuffer
from pyicechunk.format.header import FileType, encode_object, open_object
from pyicechunk.format.ids import INITIAL_SNAPSHOT_ID, decode_id
from pyicechunk.format.repo_info import (
    BranchCreated,
    BranchDeleted,
    ExpirationRan,
    FeatureFlag,
    FeatureFlagChanged,
    GCRan,
    NewCommit,
    RepoAvailability,
    RepoInfo,
    RepoInitialized,
    RepoMigrated,
    RepoStatus,
    RepoStatusChanged,
    SnapshotInfo,
    TagCreated,
    TagDeleted,
    Update,
    add_snapshot,
    ancestry,
    backup_name,
    create_branch,
    create_tag,
    decode_repo_info,
    delete_branch,
    delete_tag,
    encode_metadata_items,
    encode_repo_info,
    initial_repo_info,
    pack_repo_object,
    record_update,
    remove_snapshots,
    reparent_snapshot,
    set_branch,
    set_feature_flag,
    unpack_repo_object,
)
from pyicechunk.format.repo_info import CommitAmended as Amended
from pyicechunk.format.repo_info import NewDetachedSnapshot as Detached

FIXTURES = Path(__file__).parent / "fixtures"
ROOT_ITEMS = encode_metadata_items({"__icechunk": {"is_root": True}})


def _content(name: str) -> bytes:
    return open_object((FIXTURES / name).read_bytes(), FileType.REPO_INFO, name).content


def test_annotated_initial_repo() -> None:
    """FORMAT-V2 §5.7: the 344 bytes of a fresh repo written by icechunk 2.3.0."""
    buf = _content("v2_repo_fresh")
    assert len(buf) == 344
    assert buf[4:8] == b"Ichk"
    assert buf[0x08:0x1C] == bytes.fromhex("1400 2400 0700 0800 0c00 1000 1400 1800 1c00 2000")
    assert buf[0x23] == 2
    assert buf[0xA8:0xB4] == INITIAL_SNAPSHOT_ID
    assert buf[0xB4:0xB8] == b"\xff\xff\xff\xff"
    assert buf[0xD0:0xE6] == b"Repository initialized"
    assert buf[0x108:0x11A] == bytes.fromhex("69735f726f6f740001090101010168022401")
    assert buf[0x14C:0x150] == b"main"
    repo = decode_repo_info(buf)
    assert repo.spec_version == 2
    assert repo.branches == {"main": INITIAL_SNAPSHOT_ID}
    assert repo.tags == {} and repo.deleted_tags == frozenset()
    (info,) = repo.snapshots.values()
    assert info.parent_id is None and info.message == "Repository initialized"
    assert info.metadata == ROOT_ITEMS
    assert info.metadata_values() == {"__icechunk": {"is_root": True}}
    assert repo.status.availability == RepoAvailability.ONLINE and repo.status.is_online
    (update,) = repo.latest_updates
    assert update.action == RepoInitialized() and update.backup_path is None
    assert info.flushed_at < repo.status.set_at < update.updated_at
    assert repo.metadata == () and repo.config is None and repo.repo_before_updates is None
    assert repo.enabled_feature_flags is None and repo.disabled_feature_flags is None


def test_our_initial_repo_has_the_reference_fields() -> None:
    info = SnapshotInfo(INITIAL_SNAPSHOT_ID, None, 10, "Repository initialized", ROOT_ITEMS)
    repo = initial_repo_info(info, 12)
    buf = encode_repo_info(repo)
    reference = decode_repo_info(_content("v2_repo_fresh"))
    mine = decode_repo_info(buf)
    assert mine == repo
    assert (
        dataclasses.replace(
            reference,
            snapshots={INITIAL_SNAPSHOT_ID: info},
            status=repo.status,
            latest_updates=repo.latest_updates,
        )
        == mine
    )
    root = root_table(buf)
    assert [s for s in range(13) if root.field_pos(s, 1)] == [0, 1, 2, 3, 4, 5, 6, 7]
    snap = root.vector(4, 4).table(0)  # type: ignore[union-attr]
    assert snap.field_pos(1, 4) and snap.i32(1, 0) == -1  # written explicitly
    main = root.vector(2, 4).table(0)  # type: ignore[union-attr]
    assert not main.field_pos(1, 4)  # index 0 omitted, as 2.3.0 does
    data = pack_repo_object(repo)
    assert data[36:39] == bytes((2, 6, 1))
    assert unpack_repo_object(data) == repo


def test_reference_repo_with_history() -> None:
    """A repo 2.3.0 wrote after commits, a move, tags, flags, status, metadata, config."""
    repo = decode_repo_info(_content("v2_repo_varied"))
    assert sorted(repo.branches) == ["dev", "main"]
    assert list(repo.tags) == ["t0"] and repo.deleted_tags == {"gone"}
    assert repo.metadata_values() == {"team": "x", "k": [1, 2]}
    assert repo.enabled_feature_flags == (3,) and repo.disabled_feature_flags == ()
    assert repo.feature_flag(FeatureFlag.DELETE_TAG) and repo.feature_flag(FeatureFlag.MOVE_NODE)
    # window of 3 (num_updates_per_repo_info_file=3): the rest is chained
    assert [type(u.action) for u in repo.latest_updates] == [GCRan, ExpirationRan, BranchDeleted]
    assert repo.latest_updates[0].backup_path is None
    assert all(u.backup_path and u.backup_path.startswith("repo.") for u in repo.latest_updates[1:])
    assert repo.repo_before_updates is not None
    stamps = [u.updated_at for u in repo.latest_updates]
    assert stamps == sorted(stamps, reverse=True)
    by_message = {s.message: s for s in repo.snapshots.values()}
    one = by_message["one"].metadata_values()
    assert one == {
        "author": "me",
        "n": 5,
        "neg": -3,
        "big": 2**63 + 5,
        "f": 1.5,
        "g": 0.1,
        "nested": {"l": [1, None, True, "x", [2.5]], "e": {}},
        "empty": [],
    }
    assert by_message["one"].parent_id == INITIAL_SNAPSHOT_ID
    assert by_message["amended"].parent_id == by_message["move"].id
    main_history = [s.message for s in ancestry(repo, repo.branches["main"])]
    assert main_history == ["three", "move", "one", "Repository initialized"]
    assert repo.config is not None
    config = decode_flexbuffer(repo.config)
    assert config["inline_chunk_threshold_bytes"] == 16
    assert config["num_updates_per_repo_info_file"] == 3
    assert decode_repo_info(encode_repo_info(repo)) == repo


# --- hostile repos ---------------------------------------------------------------------------


def _raw_repo(
    snapshots: list[tuple[bytes, int]],
    branches: list[tuple[str, int]],
    spec_version: int = 2,
) -> bytes:
    """A repo flatbuffer with the given raw snapshot parent offsets and branch indices."""
    b = Builder()

    def refs(items: list[tuple[str, int]]) -> int:
        out = []
        for name, index in items:
            s = b.create_string(name)
            b.start_table(2)
            b.add_offset(0, s)
            b.add_u32(1, index)
            out.append(b.end_table())
        return b.create_offset_vector(out)

    branch_vec, tag_vec = refs(branches), refs([])
    deleted = b.create_offset_vector([])
    infos = []
    for sid, parent in snapshots:
        msg = b.create_string("m")
        b.start_table(6)
        b.add_struct(0, sid, 1)
        b.add_i32(1, parent)
        b.add_offset(3, msg)
        infos.append(b.end_table())
    snap_vec = b.create_offset_vector(infos)
    b.start_table(2)
    b.add_u64(1, 5)
    status = b.end_table()
    b.start_table(0)
    member = b.end_table()
    b.start_table(4)
    b.add_offset(1, member)
    b.add_u64(2, 6)
    b.add_u8(0, 1)
    update = b.end_table()
    updates = b.create_offset_vector([update])
    b.start_table(8)
    b.add_offset(1, tag_vec)
    b.add_offset(2, branch_vec)
    b.add_offset(3, deleted)
    b.add_offset(4, snap_vec)
    b.add_offset(5, status)
    b.add_offset(7, updates)
    b.add_u8(0, spec_version)
    return b.finish(b.end_table())


IDS = [bytes([i]) * 12 for i in range(1, 5)]


def _refused(buf: bytes, match: str) -> None:
    data = encode_object(FileType.REPO_INFO, buf, spec_version=2)
    with pytest.raises(IcechunkError, match=match) as info:
        unpack_repo_object(data, "repo")
    assert info.value.message.startswith("cannot read repo: ")


def test_validation_on_read() -> None:
    ok = _raw_repo([(IDS[0], -1), (IDS[1], 0)], [("main", 1)])
    repo = decode_repo_info(ok)
    assert repo.snapshots[IDS[1]].parent_id == IDS[0] and repo.branches["main"] == IDS[1]
    _refused(_raw_repo([(IDS[0], -1)], [("main", 1)]), "points at snapshot number 1, but")
    _refused(_raw_repo([(IDS[0], -1)], [("main", 2**32 - 1)]), "snapshot number 4294967295")
    _refused(_raw_repo([(IDS[0], 5)], [("main", 0)]), "parent offset 5, outside")
    _refused(_raw_repo([(IDS[0], -2)], [("main", 0)]), "parent offset -2, outside")
    _refused(_raw_repo([(IDS[0], 0)], [("main", 0)]), "is its own parent")
    cycle = [(IDS[0], -1), (IDS[1], 3), (IDS[2], 1), (IDS[3], 2)]
    _refused(_raw_repo(cycle, [("main", 0)]), "parent cycle through")
    _refused(_raw_repo([(IDS[0], -1), (IDS[0], -1)], [("main", 0)]), "listed twice")
    _refused(_raw_repo([(IDS[0], -1)], [("main", 0), ("main", 0)]), "appears twice")
    _refused(_raw_repo([(IDS[0], -1)], [("main", 0)], spec_version=3), "format version 3")
    _refused(_raw_repo([(IDS[0], -1)], [("main", 0)], spec_version=0), "format version 0")
    assert decode_repo_info(_raw_repo([(IDS[0], -1)], [("x", 0)], spec_version=1)).spec_version == 1
    spec1 = encode_object(FileType.REPO_INFO, b"x" * 8, spec_version=2)
    spec1 = spec1[:36] + b"\x01" + spec1[37:]
    with pytest.raises(IcechunkError, match="not supported for Icechunk format version 1"):
        unpack_repo_object(spec1, "repo")


def test_damaged_reference_repo_raises_icechunk_error_naming_it() -> None:
    rng = random.Random(3)
    data = (FIXTURES / "v2_repo_varied").read_bytes()
    buf = _content("v2_repo_varied")
    start = time.perf_counter()
    for cut in range(0, len(data), 7):
        with pytest.raises(IcechunkError, match=r"overwritten/repo\.X"):
            unpack_repo_object(data[:cut], "overwritten/repo.X")
    for _ in range(1500):
        damaged = bytearray(buf)
        damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
        try:
            repo = unpack_repo_object(
                encode_object(FileType.REPO_INFO, bytes(damaged), spec_version=2), "repo"
            )
        except IcechunkError as exc:
            assert exc.message.startswith("cannot read repo")
            continue
        # what decodes must be consistent: every ref and parent resolves, history ends
        for target in [*repo.branches.values(), *repo.tags.values()]:
            assert len(list(ancestry(repo, target))) <= len(repo.snapshots)
    assert time.perf_counter() - start < 20


# --- pure edits ------------------------------------------------------------------------------


def _base() -> RepoInfo:
    root = SnapshotInfo(INITIAL_SNAPSHOT_ID, None, 10, "Repository initialized", ROOT_ITEMS)
    return initial_repo_info(root, 20)


def test_commit_branch_and_tag_edits() -> None:
    repo = _base()
    c1 = SnapshotInfo(IDS[0], INITIAL_SNAPSHOT_ID, 30, "c1", encode_metadata_items({"a": 1}))
    repo = add_snapshot(repo, c1)
    repo = set_branch(repo, "main", c1.id)
    with pytest.raises(IcechunkError, match="already listed"):
        add_snapshot(repo, c1)
    with pytest.raises(IcechunkError, match="snapshot id not found"):
        add_snapshot(repo, SnapshotInfo(IDS[1], IDS[3], 40, "x"))
    repo = create_branch(repo, "dev", INITIAL_SNAPSHOT_ID)
    with pytest.raises(IcechunkError, match="branch already exists `dev -> 1CECHNKREP0F1RSTCMT0`"):
        create_branch(repo, "dev", c1.id)
    with pytest.raises(IcechunkError, match="snapshot id not found"):
        create_branch(repo, "x", IDS[3])
    with pytest.raises(IcechunkError, match="cannot delete branch main"):
        delete_branch(repo, "main")
    repo = create_tag(repo, "v1", c1.id)
    with pytest.raises(IcechunkError, match="tag already exists"):
        create_tag(repo, "v1", c1.id)
    repo = delete_tag(repo, "v1")
    assert repo.deleted_tags == {"v1"} and "v1" not in repo.tags
    with pytest.raises(IcechunkError, match="does not allow tag reuse"):
        create_tag(repo, "v1", c1.id)
    repo = delete_branch(repo, "dev")
    # indices follow the ids whatever the insertion order
    c0 = SnapshotInfo(b"\0" * 12, INITIAL_SNAPSHOT_ID, 25, "sorted first")
    repo = add_snapshot(repo, c0)
    again = decode_repo_info(encode_repo_info(repo))
    assert again == repo and again.branches["main"] == c1.id
    root = root_table(encode_repo_info(repo))
    snaps = root.vector(4, 4)
    assert snaps is not None
    assert [snaps.table(i).struct_bytes(0, 12) for i in range(3)] == sorted(repo.snapshots)


def test_encoder_refuses_what_2_3_0_cannot_update() -> None:
    repo = _base()
    with pytest.raises(ValueError, match="main branch"):
        encode_repo_info(dataclasses.replace(repo, branches={}))
    with pytest.raises(ValueError, match="unlisted snapshot"):
        encode_repo_info(dataclasses.replace(repo, tags={"t": IDS[0]}))
    stale = dataclasses.replace(repo.latest_updates[0], backup_path="repo.1.X")
    with pytest.raises(ValueError, match="newest ops-log entry"):
        encode_repo_info(dataclasses.replace(repo, latest_updates=(stale,)))


def test_every_update_kind_round_trips() -> None:
    sid = IDS[0]
    actions = [
        RepoInitialized(),
        RepoMigrated(1, 2),
        TagCreated("t"),
        TagDeleted("t", sid),
        BranchCreated("b"),
        BranchDeleted("b", sid),
        NewCommit("main", sid),
        Amended("main", sid, IDS[1]),
        Detached(sid),
        GCRan(),
        ExpirationRan(),
        FeatureFlagChanged(3, True),
        FeatureFlagChanged(5, False),
        FeatureFlagChanged(5, None),
        RepoStatusChanged(RepoStatus(RepoAvailability.READ_ONLY, 77, "maint")),
        RepoStatusChanged(RepoStatus(RepoAvailability.ONLINE, 78)),
    ]
    from pyicechunk.format import repo_info

    assert {a.TAG for a in actions} | {3, 4, 9} == set(range(1, 17))
    actions += [
        repo_info.ConfigChanged(),
        repo_info.MetadataChanged(),
        repo_info.BranchReset("b", sid),
    ]
    updates = tuple(
        Update(a, 1000 - i, None if i == 0 else f"repo.{i}") for i, a in enumerate(actions)
    )
    repo = dataclasses.replace(_base(), latest_updates=updates)
    assert decode_repo_info(encode_repo_info(repo)).latest_updates == updates


def test_feature_flags() -> None:
    repo = set_feature_flag(_base(), FeatureFlag.MOVE_NODE, True)
    repo = set_feature_flag(repo, FeatureFlag.DELETE_TAG, False)
    assert not repo.feature_flag(FeatureFlag.DELETE_TAG)
    repo = set_feature_flag(repo, FeatureFlag.DELETE_TAG, None)
    # as observed: enabled [3], disabled [] after enable 3 / disable 5 / unset 5
    assert repo.enabled_feature_flags == (3,) and repo.disabled_feature_flags == ()
    again = decode_repo_info(encode_repo_info(repo))
    assert again.enabled_feature_flags == (3,) and again.disabled_feature_flags == ()


def test_backup_names() -> None:
    name = backup_name(1_796_130_935_938, bytes(12))
    assert name == f"repo.{32503680000000 - 1_796_130_935_938}.{'0' * 20}"
    newer = backup_name(1_796_130_935_939)
    assert newer < name  # newer backups sort first
    assert len(newer.split(".")[2]) == 20 and newer != backup_name(1_796_130_935_939)
    assert backup_name(32503680000000 - 5, bytes(12)).startswith("repo.00000000000005.")


def test_ops_log_window_and_chain() -> None:
    """FORMAT-V2 §10.3 with N = 3: create, then tags t0 .. t5."""
    repo = _base()
    files: dict[str, RepoInfo] = {}
    now = 100
    for i in range(6):
        name = f"b{i}"
        files[name] = repo  # the copy made before the update
        now += 10
        repo = record_update(repo, TagCreated(f"t{i}"), now, name, window=3)
        if i == 2:
            assert [u.action for u in repo.latest_updates] == [
                TagCreated("t2"),
                TagCreated("t1"),
                TagCreated("t0"),
            ]
            assert [u.backup_path for u in repo.latest_updates] == [None, "b2", "b1"]
            assert repo.repo_before_updates == "b0"  # the file where RepoInitialized is newest
    assert [u.backup_path for u in repo.latest_updates] == [None, "b5", "b4"]
    assert repo.repo_before_updates == "b3"
    # walking the chain sees every entry once, newest first, timestamps strictly decreasing
    seen: list[Update] = []
    current: RepoInfo | None = repo
    while current is not None:
        seen.extend(current.latest_updates)
        current = files[current.repo_before_updates] if current.repo_before_updates else None
    names = [getattr(u.action, "name", "init") for u in seen]
    assert names == ["t5", "t4", "t3", "t2", "t1", "t0", "init"]
    stamps = [u.updated_at for u in seen]
    assert stamps == sorted(stamps, reverse=True) and len(set(stamps)) == len(stamps)
    with pytest.raises(IcechunkError, match="machine clock has drifted"):
        record_update(repo, GCRan(), now, "late")
    # entries without a backup path (migration) are kept past the window
    migrated = dataclasses.replace(
        _base(), latest_updates=tuple(Update(NewCommit("main", IDS[0]), 50 - i) for i in range(5))
    )
    after = record_update(migrated, GCRan(), 60, "m", window=2)
    assert len(after.latest_updates) == 6 and after.repo_before_updates is None
    after = record_update(after, GCRan(), 61, "n", window=2)
    assert len(after.latest_updates) == 2 and after.repo_before_updates == "m"


def test_reparent_collects_pruned_logs_and_remove() -> None:
    """FORMAT-V2 §12.2: c0..c4; expire(c2) then expire(c3)."""
    repo = _base()
    parent = INITIAL_SNAPSHOT_ID
    ids = [bytes([0x20 + i]) * 12 for i in range(5)]
    for i, sid in enumerate(ids):
        repo = add_snapshot(repo, SnapshotInfo(sid, parent, 100 + i, f"c{i}"))
        parent = sid
    repo = set_branch(repo, "main", ids[4])
    repo = reparent_snapshot(repo, ids[2], INITIAL_SNAPSHOT_ID)
    assert repo.snapshots[ids[2]].pruned_ancestor_tx_logs == (ids[0], ids[1])
    repo = remove_snapshots(repo, {ids[0], ids[1]})
    repo = reparent_snapshot(repo, ids[3], INITIAL_SNAPSHOT_ID)
    assert repo.snapshots[ids[3]].pruned_ancestor_tx_logs == (ids[0], ids[1], ids[2])
    repo = remove_snapshots(repo, {ids[2]})
    again = decode_repo_info(encode_repo_info(repo))
    assert again == repo and len(again.snapshots) == 3
    with pytest.raises(IcechunkError, match="points at snapshot"):
        remove_snapshots(repo, {ids[4]})
    with pytest.raises(IcechunkError, match="removed parent"):
        remove_snapshots(repo, {ids[3]})
    with pytest.raises(IcechunkError, match="not an ancestor"):
        reparent_snapshot(repo, ids[3], ids[4])


def test_ancestry_detects_hand_made_loops() -> None:
    a = SnapshotInfo(IDS[0], IDS[1], 1, "a")
    b = SnapshotInfo(IDS[1], IDS[0], 2, "b")
    repo = dataclasses.replace(_base(), snapshots={IDS[0]: a, IDS[1]: b})
    with pytest.raises(IcechunkError, match="history loops"):
        list(ancestry(repo, IDS[0]))


def test_decode_id_of_fixture_names() -> None:
    # the ids used as fixture names are real snapshot ids of the varied repo
    repo = decode_repo_info(_content("v2_repo_varied"))
    assert decode_id("79DH8SRVPXJ33KJPK7F0", 12) in repo.snapshots
