"""The ``repo`` flatbuffer (FORMAT-V2 §5): :func:`encode_repo_info` and :func:`decode_repo_info`,
and the stored object (header included): :func:`pack_repo_object` and
:func:`unpack_repo_object`.

The flatbuffer's ``snapshot_index`` and ``parent_offset`` are positions in the id-sorted
snapshot vector, computed by the encoder and resolved (and checked: in range, no parent
cycles) by the decoder. So inserting or removing a snapshot can never leave a stale index
behind.
"""

from __future__ import annotations

import bisect
import struct
from typing import Any, cast, get_args

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.flatbuf import (
    Builder,
    Table,
    Vector,
    malformed,
    required,
    root_table,
)
from pyicechunk.format.header import (
    DEFAULT_MAX_OBJECT_SIZE,
    SPEC_V2,
    FileType,
    encode_object,
    open_object,
)
from pyicechunk.format.ids import check_id_length, encode_id
from pyicechunk.format.metadata_items import read_metadata_items, write_metadata_items
from pyicechunk.format.repo_info import model
from pyicechunk.format.repo_info.blocks import EntryBlocks
from pyicechunk.format.repo_info.groups import KeptGroups, Key
from pyicechunk.format.repo_info.model import (
    MetadataItems,
    RepoInfo,
    RepoStatus,
    SnapshotInfo,
    Update,
    UpdateAction,
)
from pyicechunk.format.repo_info.order import RecentOrder
from pyicechunk.format.repo_info.templates import BlockTemplates, Marks

# The member classes of the UpdateType union, by their tag on disk.
_ACTIONS: dict[int, type[Any]] = {cls.TAG: cls for cls in get_args(UpdateAction)}


_U16_ALL = struct.Struct("<H")


def _status_table(b: Builder, status: RepoStatus) -> int:
    reason = (
        b.create_string(status.limited_availability_reason)
        if status.limited_availability_reason is not None
        else 0
    )
    b.start_table(3)
    b.add_u64(1, status.set_at)
    if reason:
        b.add_offset(2, reason)
    b.add_u8(0, status.availability)
    return b.end_table()


def _action_table(b: Builder, action: UpdateAction, marks: Marks) -> int:
    """Write an update's member table; ``marks`` gets the place of its name and ids."""
    strings: dict[str, int] = {}
    for attr in ("name", "branch"):
        value = getattr(action, attr, None)
        if value is not None:
            strings[attr] = b.create_string(value)
            marks.append((strings[attr], True))
    status = _status_table(b, action.status) if isinstance(action, model.RepoStatusChanged) else 0
    ids: tuple[int, ...] = ()
    match action:
        case model.RepoMigrated(from_version=f, to_version=t):
            b.start_table(2)
            b.add_u8(0, f)
            b.add_u8(1, t)
        case model.TagCreated() | model.BranchCreated():
            b.start_table(1)
            b.add_offset(0, strings["name"])
        case (
            model.TagDeleted(previous_snap_id=p)
            | model.BranchDeleted(previous_snap_id=p)
            | model.BranchReset(previous_snap_id=p)
        ):
            b.start_table(2)
            b.add_struct(1, check_id_length(p, 12, "previous_snap_id"), 1)
            ids = (1,)
            b.add_offset(0, strings["name"])
        case model.NewCommit(new_snap_id=n):
            b.start_table(2)
            b.add_struct(1, check_id_length(n, 12, "new_snap_id"), 1)
            ids = (1,)
            b.add_offset(0, strings["branch"])
        case model.CommitAmended(previous_snap_id=p, new_snap_id=n):
            b.start_table(3)
            b.add_struct(1, check_id_length(p, 12, "previous_snap_id"), 1)
            b.add_struct(2, check_id_length(n, 12, "new_snap_id"), 1)
            ids = (1, 2)
            b.add_offset(0, strings["branch"])
        case model.NewDetachedSnapshot(new_snap_id=n):
            b.start_table(1)
            b.add_struct(0, check_id_length(n, 12, "new_snap_id"), 1)
            ids = (0,)
        case model.FeatureFlagChanged(id=flag, new_value=value):
            b.start_table(3)
            b.add_u16(0, flag)
            b.add_u8(1, int(bool(value)))
            b.add_u8(2, int(value is not None))
        case model.RepoStatusChanged():
            b.start_table(1)
            b.add_offset(0, status)
        case _:
            b.start_table(0)
    marks.extend((b.field_ref(slot), False) for slot in ids)
    return b.end_table()


def _update_table(b: Builder, update: Update) -> tuple[int, Marks]:
    """Write one ``Update`` table (with its member and strings); its reference and the marks
    of its variable parts (see :func:`_update_parts`)."""
    marks: Marks = []
    member = _action_table(b, update.action, marks)
    backup = b.create_string(update.backup_path) if update.backup_path is not None else 0
    b.start_table(4)
    b.add_u64(2, update.updated_at)
    marks.append((b.field_ref(2), False))
    b.add_offset(1, member)
    if backup:
        b.add_offset(3, backup)
        marks.append((backup, True))
    b.add_u8(0, update.action.TAG)
    return b.end_table(required=(1,)), marks


# The kinds whose table layout depends only on the lengths of their name and ids.
_ID_FIELDS: dict[type[Any], tuple[str, ...]] = {
    model.TagCreated: (),
    model.BranchCreated: (),
    model.TagDeleted: ("previous_snap_id",),
    model.BranchDeleted: ("previous_snap_id",),
    model.BranchReset: ("previous_snap_id",),
    model.NewCommit: ("new_snap_id",),
    model.CommitAmended: ("previous_snap_id", "new_snap_id"),
    model.NewDetachedSnapshot: ("new_snap_id",),
    model.RepoInitialized: (),
    model.ConfigChanged: (),
    model.MetadataChanged: (),
    model.GCRan: (),
    model.ExpirationRan: (),
}
_BRANCH_NAMED = (model.NewCommit, model.CommitAmended)
_U64 = struct.Struct("<Q")


def _update_parts(update: Update) -> tuple[object, list[bytes]] | None:
    """An entry's shape and variable parts, in the order :func:`_update_table` marks them
    (name, ids, time, backup path); None where its layout depends on more."""
    action = update.action
    kind = type(action)
    ids = _ID_FIELDS.get(kind)
    if ids is None or not 0 < update.updated_at < 2**64:
        return None  # the builder writes it (and refuses a time out of range)
    parts = []
    text = getattr(action, "branch" if kind in _BRANCH_NAMED else "name", None)
    if text is not None:
        parts.append(text.encode("utf-8"))
    parts.extend(getattr(action, field) for field in ids)
    parts.append(_U64.pack(update.updated_at))
    if update.backup_path is not None:
        parts.append(update.backup_path.encode("utf-8"))
    return kind, parts


def _snapshot_table(b: Builder, info: SnapshotInfo) -> tuple[int, int]:
    """Write one ``SnapshotInfo`` table (with its message, metadata and pruned logs).

    Returns its reference and that of its parent position, which is written as 0 (also the
    default) and set by :class:`~pyicechunk.format.repo_info.blocks.EntryBlocks` on each write.
    """
    message = b.create_string(info.message)
    metadata = write_metadata_items(b, info.metadata)
    pruned = (
        b.create_vector(
            b"".join(
                check_id_length(x, 12, "pruned tx log id") for x in info.pruned_ancestor_tx_logs
            ),
            12,
            1,
        )
        if info.pruned_ancestor_tx_logs
        else 0
    )
    b.start_table(6)
    b.add_u64(2, info.flushed_at)
    b.add_struct(0, check_id_length(info.id, 12, "snapshot id"), 1)
    # Always present, so that the block does not depend on the position (the root's -1).
    b.add_i32(1, 0, default=None)
    parent_ref = b.field_ref(1)
    b.add_offset(3, message)
    b.add_offset(4, metadata)
    if pruned:
        b.add_offset(5, pruned)
    return b.end_table(required=(0, 3)), parent_ref


# The ops-log window and the snapshot list are written from one block per entry, kept from
# the last encodings (see .blocks): an update then costs what changed, not the whole window.
_UPDATE_TEMPLATES: BlockTemplates[Update] = BlockTemplates(_update_table, _update_parts)
_UPDATE_BLOCKS: EntryBlocks[Update] = EntryBlocks(
    lambda b, u: (_update_table(b, u)[0], 0), block=_UPDATE_TEMPLATES.block
)
_SNAPSHOT_BLOCKS: EntryBlocks[SnapshotInfo] = EntryBlocks(_snapshot_table)


def _names_vector(b: Builder, key: Key) -> tuple[int, ...]:
    """The vector of names (``key[0]``) as strings, in the order of their UTF-8 bytes."""
    names = cast(frozenset[str], key[0])
    refs = [b.create_string(n) for n in sorted(names, key=lambda n: n.encode("utf-8"))]
    return (b.create_offset_vector(refs),)


def _refs_vector(b: Builder, key: Key) -> tuple[int, ...]:
    """The vector of refs ``key = (refs, ids, kind)``, by name, each target a position in the
    sorted snapshot ids."""
    refs = cast(dict[str, bytes], key[0])
    ids = cast(list[bytes], key[1])
    out = []
    for name in sorted(refs, key=lambda n: n.encode("utf-8")):
        target = refs[name]
        i = bisect.bisect_left(ids, target)
        if i == len(ids) or ids[i] != target:
            raise ValueError(f"{key[2]} {name!r} points at unlisted snapshot {encode_id(target)}")
        name_ref = b.create_string(name)
        b.start_table(2)
        b.add_offset(0, name_ref)
        b.add_u32(1, i)
        out.append(b.end_table(required=(0,)))
    return (b.create_offset_vector(out),)


def _settings_group(b: Builder, key: Key) -> tuple[int, ...]:
    """Status, metadata, the name before the window, config and flag lists (0: absent)."""
    status, metadata, before, config, enabled, disabled = key
    status_ref = _status_table(b, cast(RepoStatus, status))
    metadata_ref = write_metadata_items(b, cast(MetadataItems, metadata))
    before_ref = b.create_string(cast(str, before)) if before is not None else 0
    config_ref = b.create_bytes_vector(cast(bytes, config)) if config is not None else 0
    flags = [
        b.create_scalar_vector("H", sorted(cast(tuple[int, ...], lst))) if lst is not None else 0
        for lst in (enabled, disabled)
    ]
    return (status_ref, metadata_ref, before_ref, config_ref, *flags)


# Deleted tags only grow, and most updates leave them as they were; the refs tables and the
# settings change less often than the ops log (see .groups).
_DELETED_BLOCKS = KeptGroups(_names_vector)
_TAG_BLOCKS = KeptGroups(_refs_vector)
_BRANCH_BLOCKS = KeptGroups(_refs_vector)
_SETTINGS_BLOCKS = KeptGroups(_settings_group)
# The id order and parent positions are carried over too: a commit adds one snapshot.
_RECENT_ORDER = RecentOrder()


def encode_repo_info(repo: RepoInfo) -> bytes:
    """Encode a :class:`RepoInfo` as a flatbuffer (no header).

    Follows the writer rules of FORMAT-V2 §16.1: refs sorted by name, snapshots by id, deleted
    tags and flag ids sorted, every ``snapshot_index`` and ``parent_offset`` computed from the
    ids (the root's ``-1`` written explicitly), empty metadata written as empty vectors.

    Raises
    ------
    ValueError
        If a ref or a parent names a snapshot that is not listed, an id has the wrong size,
        there is no ``main`` branch (2.3.0 cannot update such a repository), or the newest
        update carries a backup path (2.3.0 panics on its next update).
    """
    if "main" not in repo.branches:
        raise ValueError("a spec-2 repository must have a main branch")
    if repo.latest_updates and repo.latest_updates[0].backup_path is not None:
        raise ValueError("the newest ops-log entry must not have a backup path")
    order = _RECENT_ORDER.order(repo.snapshots)
    listed, parents = order.entries, order.parents

    b = Builder(1024 + 160 * len(listed) + 128 * len(repo.latest_updates))
    # Keys hold copies of the mutable mappings (see .groups); the ids are never changed.
    (tags,) = _TAG_BLOCKS.write(b, (dict(repo.tags), order.ids, "tag"))
    (branches,) = _BRANCH_BLOCKS.write(b, (dict(repo.branches), order.ids, "branch"))
    (deleted,) = _DELETED_BLOCKS.write(b, (frozenset(repo.deleted_tags),))
    snapshots = _SNAPSHOT_BLOCKS.write(b, listed, parents)
    enabled, disabled = (
        None if lst is None else tuple(lst)
        for lst in (repo.enabled_feature_flags, repo.disabled_feature_flags)
    )
    config = None if repo.config is None else bytes(repo.config)
    settings = (repo.status, repo.metadata, repo.repo_before_updates, config, enabled, disabled)
    status, metadata, before, config_ref, *flags = _SETTINGS_BLOCKS.write(b, settings)
    latest = _UPDATE_BLOCKS.write(b, repo.latest_updates)
    b.start_table(13)
    # Slots 1 to 11 in order; references are never 0, so 0 marks an absent optional field.
    fields = (tags, branches, deleted, snapshots, status, metadata, latest, before, config_ref)
    for slot, ref in enumerate((*fields, *flags), start=1):
        if ref:
            b.add_offset(slot, ref)
    b.add_u8(0, repo.spec_version)
    return b.finish(b.end_table(required=(1, 2, 3, 4, 5, 7)))


def pack_repo_object(repo: RepoInfo, compression_level: int = 3) -> bytes:
    """Encode a :class:`RepoInfo` as the complete ``repo`` object (spec-2 header, zstd).

    Raises
    ------
    ValueError
        As :func:`encode_repo_info`.
    """
    return encode_object(FileType.REPO_INFO, encode_repo_info(repo), compression_level, SPEC_V2)


# --- decoding ----------------------------------------------------------------------------------


def _decode_metadata(vec: Vector | None, where: str) -> MetadataItems:
    return () if vec is None else tuple(read_metadata_items(vec, where))


def _decode_status(t: Table) -> RepoStatus:
    return RepoStatus(t.u8(0), t.u64(1), t.string(2))


def _decode_id(t: Table, slot: int, where: str) -> bytes:
    return required(t.struct_bytes(slot, 12), where)


def _decode_action(tag: int, t: Table, where: str) -> UpdateAction:
    cls = _ACTIONS.get(tag)
    if cls is None:
        malformed(f"{where} has the invalid update type {tag}")
    if cls in (model.TagCreated, model.BranchCreated):
        action: UpdateAction = cls(required(t.string(0), f"{where}.name"))
    elif cls in (model.TagDeleted, model.BranchDeleted, model.BranchReset):
        action = cls(
            required(t.string(0), f"{where}.name"),
            _decode_id(t, 1, f"{where}.previous_snap_id"),
        )
    elif cls is model.NewCommit:
        action = model.NewCommit(
            required(t.string(0), f"{where}.branch"), _decode_id(t, 1, f"{where}.new_snap_id")
        )
    elif cls is model.CommitAmended:
        action = model.CommitAmended(
            required(t.string(0), f"{where}.branch"),
            _decode_id(t, 1, f"{where}.previous_snap_id"),
            _decode_id(t, 2, f"{where}.new_snap_id"),
        )
    elif cls is model.NewDetachedSnapshot:
        action = model.NewDetachedSnapshot(_decode_id(t, 0, f"{where}.new_snap_id"))
    elif cls is model.RepoMigrated:
        action = model.RepoMigrated(t.u8(0), t.u8(1))
    elif cls is model.FeatureFlagChanged:
        action = model.FeatureFlagChanged(t.u16(0), bool(t.u8(1)) if t.u8(2) else None)
    elif cls is model.RepoStatusChanged:
        status = t.table(0)
        action = model.RepoStatusChanged(
            _decode_status(status) if status is not None else RepoStatus(0, 0)
        )
    else:
        action = cls()
    return action


def _refs(vec: Vector, ids: list[bytes], kind: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    noun = "branch" if kind == "branches" else "tag"
    for i in range(len(vec)):
        t = vec.table(i)
        name = required(t.string(0), f"Repo.{kind}[{i}].name")
        index = t.u32(1)
        if index >= len(ids):
            malformed(
                f"{noun} {name!r} points at snapshot number {index}, but the repository "
                f"lists only {len(ids)} snapshots"
            )
        if name in out:
            malformed(f"{noun} {name!r} appears twice")
        out[name] = ids[index]
    return out


def _flag_list(t: Table, slot: int) -> tuple[int, ...] | None:
    vec = t.vector(slot, 2)
    if vec is None:
        return None
    return tuple(v for (v,) in _U16_ALL.iter_unpack(vec.raw()))


def _check_acyclic(snapshots: dict[bytes, SnapshotInfo]) -> None:
    # Three colours: a parent walk that meets a snapshot of the current walk has found a cycle.
    done: set[bytes] = set()
    for start in snapshots:
        walk: list[bytes] = []
        on_walk: set[bytes] = set()
        current: bytes | None = start
        while current is not None and current not in done:
            if current in on_walk:
                cycle = walk[walk.index(current) :]
                malformed(
                    "the snapshot list has a parent cycle through "
                    + ", ".join(encode_id(x) for x in cycle)
                )
            walk.append(current)
            on_walk.add(current)
            current = snapshots[current].parent_id
        done.update(walk)


def decode_repo_info(buf: bytes | memoryview) -> RepoInfo:
    """Decode a ``repo`` flatbuffer (the content after the header).

    Parameters
    ----------
    buf
        The decompressed flatbuffer.

    Returns
    -------
    RepoInfo
        The decoded object, with every index resolved to a snapshot id.

    Raises
    ------
    IcechunkError
        If the buffer is malformed (offsets out of range, required fields missing, invalid
        union tags), ``Repo.spec_version`` is not 1 or 2, a ref or parent index points past the
        end of the snapshot list, parents form a cycle, or a snapshot or ref name repeats.
    """
    root = root_table(buf)
    spec_version = root.u8(0)
    if spec_version not in (1, 2):
        raise IcechunkError(
            f"this repository uses Icechunk format version {spec_version}, but this library "
            "only supports up to version 2. Please upgrade the icechunk library"
            if spec_version > 2
            else f"invalid repository: Icechunk format version {spec_version} is not a valid "
            "version; the repo object is damaged",
            kind="unsupported-spec-version",
        )
    snap_vec = required(root.vector(4, 4), "Repo.snapshots")
    tables = [snap_vec.table(i) for i in range(len(snap_vec))]
    ids = [_decode_id(t, 0, f"Repo.snapshots[{i}].id") for i, t in enumerate(tables)]
    snapshots: dict[bytes, SnapshotInfo] = {}
    for i, t in enumerate(tables):
        where = f"Repo.snapshots[{i}]"
        parent = t.i32(1)
        if not -1 <= parent < len(ids) or parent == i:
            malformed(
                f"snapshot {encode_id(ids[i])} has parent offset {parent}, outside the "
                f"{len(ids)} listed snapshots"
                if parent != i
                else f"snapshot {encode_id(ids[i])} is its own parent"
            )
        pruned_vec = t.vector(5, 12)
        pruned = pruned_vec.raw() if pruned_vec is not None else b""
        info = SnapshotInfo(
            id=ids[i],
            parent_id=ids[parent] if parent >= 0 else None,
            flushed_at=t.u64(2),
            message=required(t.string(3), f"{where}.message"),
            metadata=_decode_metadata(t.vector(4, 4), f"{where}.metadata"),
            pruned_ancestor_tx_logs=tuple(pruned[j : j + 12] for j in range(0, len(pruned), 12)),
        )
        if info.id in snapshots:
            malformed(f"snapshot {encode_id(info.id)} is listed twice")
        snapshots[info.id] = info
    _check_acyclic(snapshots)

    updates = []
    upd_vec = required(root.vector(7, 4), "Repo.latest_updates")
    for i in range(len(upd_vec)):
        t = upd_vec.table(i)
        where = f"Repo.latest_updates[{i}]"
        member = required(t.table(1), f"{where}.update_type")
        updates.append(Update(_decode_action(t.u8(0), member, where), t.u64(2), t.string(3)))
    deleted = required(root.vector(3, 4), "Repo.deleted_tags")
    config = root.bytes_vector(9)
    return RepoInfo(
        branches=_refs(required(root.vector(2, 4), "Repo.branches"), ids, "branches"),
        tags=_refs(required(root.vector(1, 4), "Repo.tags"), ids, "tags"),
        deleted_tags=frozenset(deleted.string(i) for i in range(len(deleted))),
        snapshots=snapshots,
        status=_decode_status(required(root.table(5), "Repo.status")),
        latest_updates=tuple(updates),
        metadata=_decode_metadata(root.vector(6, 4), "Repo.metadata"),
        repo_before_updates=root.string(8),
        config=config,
        enabled_feature_flags=_flag_list(root, 10),
        disabled_feature_flags=_flag_list(root, 11),
        spec_version=spec_version,
    )


def unpack_repo_object(
    data: bytes | memoryview, key: str = "repo", *, max_size: int = DEFAULT_MAX_OBJECT_SIZE
) -> RepoInfo:
    """Check the header of a stored ``repo`` object and decode it.

    Parameters
    ----------
    data
        The object as stored.
    key
        Its storage key (``repo`` or an ``overwritten/`` name), used in error messages.
    max_size
        Largest decompressed size accepted.

    Returns
    -------
    RepoInfo
        The decoded object.

    Raises
    ------
    IcechunkError
        If the header is wrong (including a spec-1 header, which 2.3.0 cannot decode either)
        or the content is malformed; the message names ``key``.
    """
    opened = open_object(data, FileType.REPO_INFO, key, max_size=max_size)
    if opened.spec_version != SPEC_V2:
        raise IcechunkError(
            f"cannot read {key}: this operation is not supported for Icechunk format version "
            f"{opened.spec_version}; the repo object is damaged",
            kind="unsupported-spec-version",
        )
    try:
        return decode_repo_info(opened.content)
    except IcechunkError as exc:
        raise IcechunkError(f"cannot read {key}: {exc.message}", kind=exc.kind) from None
