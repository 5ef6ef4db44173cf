"""Pure edits of the ``repo`` object for the update protocol (FORMAT-V2 §10.3, §12.2)."""

from __future__ import annotations

import dataclasses

import pytest

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.flatbuf import root_table
from pyicechunk.format.ids import INITIAL_SNAPSHOT_ID
from pyicechunk.format.repo_info import (
    FeatureFlag,
    GCRan,
    NewCommit,
    RepoInfo,
    SnapshotInfo,
    TagCreated,
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
    record_update,
    remove_snapshots,
    reparent_snapshot,
    set_branch,
    set_feature_flag,
)

from ._support import IDS, base_repo


def test_commit_branch_and_tag_edits() -> None:
    repo = base_repo()
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


def test_feature_flags() -> None:
    repo = set_feature_flag(base_repo(), FeatureFlag.MOVE_NODE, True)
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
    repo = base_repo()
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
        base_repo(),
        latest_updates=tuple(Update(NewCommit("main", IDS[0]), 50 - i) for i in range(5)),
    )
    after = record_update(migrated, GCRan(), 60, "m", window=2)
    assert len(after.latest_updates) == 6 and after.repo_before_updates is None
    after = record_update(after, GCRan(), 61, "n", window=2)
    assert len(after.latest_updates) == 2 and after.repo_before_updates == "m"


def test_reparent_collects_pruned_logs_and_remove() -> None:
    """FORMAT-V2 §12.2: c0..c4; expire(c2) then expire(c3)."""
    repo = base_repo()
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
    repo = dataclasses.replace(base_repo(), snapshots={IDS[0]: a, IDS[1]: b})
    with pytest.raises(IcechunkError, match="history loops"):
        list(ancestry(repo, IDS[0]))
