"""The spec-2 ``repo`` object (FORMAT-V2 §5): its flatbuffer against 2.3.0's bytes, validation
on read, the stored object."""

from __future__ import annotations

import dataclasses
import random
import time

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
    RepoInitialized,
    RepoMigrated,
    RepoStatus,
    RepoStatusChanged,
    SnapshotInfo,
    TagCreated,
    TagDeleted,
    Update,
    ancestry,
    decode_repo_info,
    encode_repo_info,
    initial_repo_info,
    pack_repo_object,
    unpack_repo_object,
)
from pyicechunk.format.repo_info import CommitAmended as Amended
from pyicechunk.format.repo_info import NewDetachedSnapshot as Detached

from .._fixtures import FIXTURES
from ._support import IDS, ROOT_ITEMS, base_repo


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


def test_encoder_refuses_what_2_3_0_cannot_update() -> None:
    repo = base_repo()
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
    repo = dataclasses.replace(base_repo(), latest_updates=updates)
    assert decode_repo_info(encode_repo_info(repo)).latest_updates == updates


def test_decode_id_of_fixture_names() -> None:
    # the ids used as fixture names are real snapshot ids of the varied repo
    repo = decode_repo_info(_content("v2_repo_varied"))
    assert decode_id("79DH8SRVPXJ33KJPK7F0", 12) in repo.snapshots
