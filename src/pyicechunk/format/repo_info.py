"""The ``repo`` object of spec-2 repositories (FORMAT-V2 §5, §10.3): file type 6.

It is the only mutable object of a spec-2 repository: branches, tags, deleted tags, the list of
every live snapshot with its parent, repository status, metadata and config, feature flags and
the ops log. :class:`RepoInfo` is its decoded form; :func:`encode_repo_info` and
:func:`decode_repo_info` convert it to and from the flatbuffer, :func:`pack_repo_object` and
:func:`unpack_repo_object` to and from the stored object (header included).

The model refers to snapshots by id, never by position: the flatbuffer's ``snapshot_index`` and
``parent_offset`` are positions in the id-sorted snapshot vector, computed by the encoder and
resolved (and checked: in range, no parent cycles) by the decoder. So inserting or removing a
snapshot can never leave a stale index behind.

The functions after the codec are pure edits of a :class:`RepoInfo` for the update protocol:
each returns a new value and leaves its argument unchanged.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.flatbuf import Builder, Table, Vector, malformed, required, root_table
from pyicechunk.format.flexbuffers import decode_flexbuffer, encode_flexbuffer
from pyicechunk.format.header import (
    DEFAULT_MAX_OBJECT_SIZE,
    SPEC_V2,
    FileType,
    encode_object,
    open_object,
)
from pyicechunk.format.ids import INITIAL_SNAPSHOT_ID, encode_id

__all__ = [
    "DEFAULT_NUM_UPDATES_PER_FILE",
    "BranchCreated",
    "BranchDeleted",
    "BranchReset",
    "CommitAmended",
    "ConfigChanged",
    "ExpirationRan",
    "FeatureFlag",
    "FeatureFlagChanged",
    "GCRan",
    "MetadataChanged",
    "MetadataItems",
    "NewCommit",
    "NewDetachedSnapshot",
    "RepoAvailability",
    "RepoInfo",
    "RepoInitialized",
    "RepoMigrated",
    "RepoStatus",
    "RepoStatusChanged",
    "SnapshotInfo",
    "TagCreated",
    "TagDeleted",
    "Update",
    "UpdateAction",
    "add_snapshot",
    "ancestry",
    "backup_name",
    "create_branch",
    "create_tag",
    "decode_metadata_items",
    "decode_repo_info",
    "delete_branch",
    "delete_tag",
    "encode_metadata_items",
    "encode_repo_info",
    "initial_repo_info",
    "pack_repo_object",
    "record_update",
    "remove_snapshots",
    "reparent_snapshot",
    "set_branch",
    "set_feature_flag",
    "unpack_repo_object",
]

DEFAULT_NUM_UPDATES_PER_FILE = 1000
"""Default ops-log window (``num_updates_per_repo_info_file``)."""

MetadataItems = tuple[tuple[str, bytes], ...]
"""Metadata as stored: (name, FlexBuffer value) pairs sorted by name.

Values stay encoded until asked for, as in the reference: a repo whose snapshot metadata is
damaged still opens, and only reading that metadata fails.
"""


class RepoAvailability(enum.IntEnum):
    """``RepoStatus.availability``; any stored value other than 1 behaves as online."""

    ONLINE = 0
    READ_ONLY = 1
    OFFLINE = 2


@dataclass(frozen=True, slots=True)
class RepoStatus:
    """Whether the repository accepts updates, since when (µs since the epoch) and why."""

    availability: int
    set_at: int
    limited_availability_reason: str | None = None

    @property
    def is_online(self) -> bool:
        """Whether updates are allowed (2.3.0 treats every value but read-only as online)."""
        return self.availability != RepoAvailability.READ_ONLY


class FeatureFlag(enum.IntEnum):
    """Feature flag ids (1 and 2 are reserved); all default to enabled."""

    MOVE_NODE = 3
    CREATE_TAG = 4
    DELETE_TAG = 5


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """One entry of the repository's snapshot list.

    ``flushed_at`` is in µs since the epoch; ``metadata`` holds the commit metadata as stored
    (see :data:`MetadataItems`); ``pruned_ancestor_tx_logs`` (spec 2.1) lists, oldest first,
    the transaction logs between this snapshot and its parent that expiration collapsed.
    """

    id: bytes
    parent_id: bytes | None
    flushed_at: int
    message: str
    metadata: MetadataItems = ()
    pruned_ancestor_tx_logs: tuple[bytes, ...] = ()

    def metadata_values(self) -> dict[str, Any]:
        """The commit metadata, decoded.

        Raises
        ------
        IcechunkError
            If a value is not a valid FlexBuffer.
        """
        return decode_metadata_items(self.metadata)


# --- ops log ---------------------------------------------------------------------------------
# One class per member of the UpdateType union; TAG is the union tag on disk.


@dataclass(frozen=True, slots=True)
class RepoInitialized:
    TAG: ClassVar[int] = 1


@dataclass(frozen=True, slots=True)
class RepoMigrated:
    TAG: ClassVar[int] = 2
    from_version: int
    to_version: int


@dataclass(frozen=True, slots=True)
class ConfigChanged:
    TAG: ClassVar[int] = 3


@dataclass(frozen=True, slots=True)
class MetadataChanged:
    TAG: ClassVar[int] = 4


@dataclass(frozen=True, slots=True)
class TagCreated:
    TAG: ClassVar[int] = 5
    name: str


@dataclass(frozen=True, slots=True)
class TagDeleted:
    TAG: ClassVar[int] = 6
    name: str
    previous_snap_id: bytes


@dataclass(frozen=True, slots=True)
class BranchCreated:
    TAG: ClassVar[int] = 7
    name: str


@dataclass(frozen=True, slots=True)
class BranchDeleted:
    TAG: ClassVar[int] = 8
    name: str
    previous_snap_id: bytes


@dataclass(frozen=True, slots=True)
class BranchReset:
    TAG: ClassVar[int] = 9
    name: str
    previous_snap_id: bytes


@dataclass(frozen=True, slots=True)
class NewCommit:
    TAG: ClassVar[int] = 10
    branch: str
    new_snap_id: bytes


@dataclass(frozen=True, slots=True)
class CommitAmended:
    TAG: ClassVar[int] = 11
    branch: str
    previous_snap_id: bytes
    new_snap_id: bytes


@dataclass(frozen=True, slots=True)
class NewDetachedSnapshot:
    TAG: ClassVar[int] = 12
    new_snap_id: bytes


@dataclass(frozen=True, slots=True)
class GCRan:
    TAG: ClassVar[int] = 13


@dataclass(frozen=True, slots=True)
class ExpirationRan:
    TAG: ClassVar[int] = 14


@dataclass(frozen=True, slots=True)
class FeatureFlagChanged:
    """A flag set to True or False, or back to its default (``new_value`` None)."""

    TAG: ClassVar[int] = 15
    id: int
    new_value: bool | None


@dataclass(frozen=True, slots=True)
class RepoStatusChanged:
    TAG: ClassVar[int] = 16
    status: RepoStatus


UpdateAction = (
    RepoInitialized
    | RepoMigrated
    | ConfigChanged
    | MetadataChanged
    | TagCreated
    | TagDeleted
    | BranchCreated
    | BranchDeleted
    | BranchReset
    | NewCommit
    | CommitAmended
    | NewDetachedSnapshot
    | GCRan
    | ExpirationRan
    | FeatureFlagChanged
    | RepoStatusChanged
)

_ACTIONS: dict[int, type[Any]] = {
    cls.TAG: cls
    for cls in (
        RepoInitialized,
        RepoMigrated,
        ConfigChanged,
        MetadataChanged,
        TagCreated,
        TagDeleted,
        BranchCreated,
        BranchDeleted,
        BranchReset,
        NewCommit,
        CommitAmended,
        NewDetachedSnapshot,
        GCRan,
        ExpirationRan,
        FeatureFlagChanged,
        RepoStatusChanged,
    )
}


@dataclass(frozen=True, slots=True)
class Update:
    """One ops-log entry: what happened, when (µs since the epoch) and, for every entry but
    the newest, the bare ``overwritten/`` name of the repo state it produced."""

    action: UpdateAction
    updated_at: int
    backup_path: str | None = None


# --- the repo ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepoInfo:
    """The decoded ``repo`` object.

    Parameters
    ----------
    branches, tags
        Ref name -> snapshot id.
    deleted_tags
        Names of deleted tags (never reusable).
    snapshots
        Snapshot id -> its entry; every snapshot the repository lists.
    status
        Availability of the repository.
    latest_updates
        The ops-log window, newest first.
    metadata
        Repository metadata as stored (see :data:`MetadataItems`).
    repo_before_updates
        Bare ``overwritten/`` name of the file holding the entries before the window.
    config
        The repository config FlexBuffer, verbatim; None when none was stored.
    enabled_feature_flags, disabled_feature_flags
        Flag ids explicitly set; None when the list is absent (not the same as empty on disk).
    spec_version
        ``Repo.spec_version``: 2, or 1 for a repository to be treated as spec 1.
    """

    branches: Mapping[str, bytes]
    tags: Mapping[str, bytes]
    deleted_tags: frozenset[str]
    snapshots: Mapping[bytes, SnapshotInfo]
    status: RepoStatus
    latest_updates: tuple[Update, ...]
    metadata: MetadataItems = ()
    repo_before_updates: str | None = None
    config: bytes | None = None
    enabled_feature_flags: tuple[int, ...] | None = None
    disabled_feature_flags: tuple[int, ...] | None = None
    spec_version: int = SPEC_V2

    def snapshot(self, snapshot_id: bytes) -> SnapshotInfo:
        """The entry of ``snapshot_id``.

        Raises
        ------
        IcechunkError
            If the repository does not list it.
        """
        info = self.snapshots.get(snapshot_id)
        if info is None:
            raise IcechunkError(f"snapshot id not found `{encode_id(snapshot_id)}`")
        return info

    def feature_flag(self, flag: int) -> bool:
        """Whether a feature flag is enabled (explicit setting, else the default: enabled)."""
        if flag in (self.disabled_feature_flags or ()):
            return False
        return True

    def metadata_values(self) -> dict[str, Any]:
        """The repository metadata, decoded.

        Raises
        ------
        IcechunkError
            If a value is not a valid FlexBuffer.
        """
        return decode_metadata_items(self.metadata)


# --- metadata ----------------------------------------------------------------------------------


def encode_metadata_items(values: Mapping[str, Any]) -> MetadataItems:
    """Encode a metadata dict as stored items (FlexBuffer values, sorted by name).

    Raises
    ------
    TypeError, ValueError
        If a value is not JSON-like (see :func:`~pyicechunk.format.flexbuffers.encode_flexbuffer`).
    """
    return tuple((name, encode_flexbuffer(values[name])) for name in sorted(values))


def decode_metadata_items(items: MetadataItems) -> dict[str, Any]:
    """Decode stored metadata items.

    Raises
    ------
    IcechunkError
        If a value is not a valid FlexBuffer (the reference's "error during metadata
        deserialization").
    """
    out: dict[str, Any] = {}
    for name, value in items:
        try:
            out[name] = decode_flexbuffer(value)
        except IcechunkError as exc:
            raise IcechunkError(
                f"error during metadata deserialization: {exc.message} (metadata {name!r})"
            ) from None
    return out


# --- encoding ----------------------------------------------------------------------------------

_U16_ALL = struct.Struct("<H")


def _metadata_vector(b: Builder, items: MetadataItems) -> int:
    refs = []
    for name, value in items:
        name_ref = b.create_string(name)
        value_ref = b.create_bytes_vector(value)
        b.start_table(2)
        b.add_offset(0, name_ref)
        b.add_offset(1, value_ref)
        refs.append(b.end_table(required=(0, 1)))
    return b.create_offset_vector(refs)


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


def _id12(value: bytes, what: str) -> bytes:
    if len(value) != 12:
        raise ValueError(f"{what} must be 12 bytes, got {len(value)}")
    return value


def _action_table(b: Builder, action: UpdateAction) -> int:
    strings: dict[str, int] = {}
    for attr in ("name", "branch"):
        value = getattr(action, attr, None)
        if value is not None:
            strings[attr] = b.create_string(value)
    status = _status_table(b, action.status) if isinstance(action, RepoStatusChanged) else 0
    match action:
        case RepoMigrated(from_version=f, to_version=t):
            b.start_table(2)
            b.add_u8(0, f)
            b.add_u8(1, t)
        case TagCreated() | BranchCreated():
            b.start_table(1)
            b.add_offset(0, strings["name"])
        case (
            TagDeleted(previous_snap_id=p)
            | BranchDeleted(previous_snap_id=p)
            | BranchReset(previous_snap_id=p)
        ):
            b.start_table(2)
            b.add_struct(1, _id12(p, "previous_snap_id"), 1)
            b.add_offset(0, strings["name"])
        case NewCommit(new_snap_id=n):
            b.start_table(2)
            b.add_struct(1, _id12(n, "new_snap_id"), 1)
            b.add_offset(0, strings["branch"])
        case CommitAmended(previous_snap_id=p, new_snap_id=n):
            b.start_table(3)
            b.add_struct(1, _id12(p, "previous_snap_id"), 1)
            b.add_struct(2, _id12(n, "new_snap_id"), 1)
            b.add_offset(0, strings["branch"])
        case NewDetachedSnapshot(new_snap_id=n):
            b.start_table(1)
            b.add_struct(0, _id12(n, "new_snap_id"), 1)
        case FeatureFlagChanged(id=flag, new_value=value):
            b.start_table(3)
            b.add_u16(0, flag)
            b.add_u8(1, int(bool(value)))
            b.add_u8(2, int(value is not None))
        case RepoStatusChanged():
            b.start_table(1)
            b.add_offset(0, status)
        case _:
            b.start_table(0)
    return b.end_table()


def _sorted_snapshots(repo: RepoInfo) -> tuple[list[SnapshotInfo], dict[bytes, int]]:
    ordered = [repo.snapshots[k] for k in sorted(repo.snapshots)]
    return ordered, {info.id: i for i, info in enumerate(ordered)}


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
    ordered, index = _sorted_snapshots(repo)
    if "main" not in repo.branches:
        raise ValueError("a spec-2 repository must have a main branch")
    if repo.latest_updates and repo.latest_updates[0].backup_path is not None:
        raise ValueError("the newest ops-log entry must not have a backup path")

    def position(snapshot_id: bytes, what: str) -> int:
        i = index.get(snapshot_id)
        if i is None:
            raise ValueError(f"{what} points at unlisted snapshot {encode_id(snapshot_id)}")
        return i

    b = Builder(1024 + 160 * len(ordered) + 96 * len(repo.latest_updates))

    def refs_vector(refs: Mapping[str, bytes], kind: str) -> int:
        out = []
        for name in sorted(refs, key=lambda n: n.encode("utf-8")):
            target = position(refs[name], f"{kind} {name!r}")
            name_ref = b.create_string(name)
            b.start_table(2)
            b.add_offset(0, name_ref)
            b.add_u32(1, target)
            out.append(b.end_table(required=(0,)))
        return b.create_offset_vector(out)

    tags = refs_vector(repo.tags, "tag")
    branches = refs_vector(repo.branches, "branch")
    deleted = b.create_offset_vector(
        [b.create_string(n) for n in sorted(repo.deleted_tags, key=lambda n: n.encode())]
    )
    infos = []
    for info in ordered:
        message = b.create_string(info.message)
        metadata = _metadata_vector(b, info.metadata)
        pruned = (
            b.create_vector(
                b"".join(_id12(x, "pruned tx log id") for x in info.pruned_ancestor_tx_logs), 12, 1
            )
            if info.pruned_ancestor_tx_logs
            else 0
        )
        parent = -1 if info.parent_id is None else position(info.parent_id, "a parent")
        b.start_table(6)
        b.add_u64(2, info.flushed_at)
        b.add_struct(0, _id12(info.id, "snapshot id"), 1)
        # -1 differs from the default 0, so the root's "no parent" is always written.
        b.add_i32(1, parent)
        b.add_offset(3, message)
        b.add_offset(4, metadata)
        if pruned:
            b.add_offset(5, pruned)
        infos.append(b.end_table(required=(0, 3)))
    snapshots = b.create_offset_vector(infos)
    status = _status_table(b, repo.status)
    metadata = _metadata_vector(b, repo.metadata)
    updates = []
    for update in repo.latest_updates:
        member = _action_table(b, update.action)
        backup = b.create_string(update.backup_path) if update.backup_path is not None else 0
        b.start_table(4)
        b.add_u64(2, update.updated_at)
        b.add_offset(1, member)
        if backup:
            b.add_offset(3, backup)
        b.add_u8(0, update.action.TAG)
        updates.append(b.end_table(required=(1,)))
    latest = b.create_offset_vector(updates)
    before = (
        b.create_string(repo.repo_before_updates) if repo.repo_before_updates is not None else 0
    )
    config = b.create_bytes_vector(repo.config) if repo.config is not None else 0
    flags = [
        b.create_scalar_vector("H", sorted(lst)) if lst is not None else 0
        for lst in (repo.enabled_feature_flags, repo.disabled_feature_flags)
    ]
    b.start_table(13)
    b.add_offset(1, tags)
    b.add_offset(2, branches)
    b.add_offset(3, deleted)
    b.add_offset(4, snapshots)
    b.add_offset(5, status)
    b.add_offset(6, metadata)
    b.add_offset(7, latest)
    if before:
        b.add_offset(8, before)
    if config:
        b.add_offset(9, config)
    for slot, ref in zip((10, 11), flags, strict=True):
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
    if vec is None:
        return ()
    items = []
    for i in range(len(vec)):
        item = vec.table(i)
        name = required(item.string(0), f"{where}[{i}].name")
        value = required(item.bytes_vector(1), f"{where}[{i}].value")
        items.append((name, value))
    return tuple(items)


def _decode_status(t: Table) -> RepoStatus:
    return RepoStatus(t.u8(0), t.u64(1), t.string(2))


def _decode_id(t: Table, slot: int, where: str) -> bytes:
    return required(t.struct_bytes(slot, 12), where)


def _decode_action(tag: int, t: Table, where: str) -> UpdateAction:
    cls = _ACTIONS.get(tag)
    if cls is None:
        malformed(f"{where} has the invalid update type {tag}")
    if cls in (TagCreated, BranchCreated):
        action: UpdateAction = cls(required(t.string(0), f"{where}.name"))
    elif cls in (TagDeleted, BranchDeleted, BranchReset):
        action = cls(
            required(t.string(0), f"{where}.name"),
            _decode_id(t, 1, f"{where}.previous_snap_id"),
        )
    elif cls is NewCommit:
        action = NewCommit(
            required(t.string(0), f"{where}.branch"), _decode_id(t, 1, f"{where}.new_snap_id")
        )
    elif cls is CommitAmended:
        action = CommitAmended(
            required(t.string(0), f"{where}.branch"),
            _decode_id(t, 1, f"{where}.previous_snap_id"),
            _decode_id(t, 2, f"{where}.new_snap_id"),
        )
    elif cls is NewDetachedSnapshot:
        action = NewDetachedSnapshot(_decode_id(t, 0, f"{where}.new_snap_id"))
    elif cls is RepoMigrated:
        action = RepoMigrated(t.u8(0), t.u8(1))
    elif cls is FeatureFlagChanged:
        action = FeatureFlagChanged(t.u16(0), bool(t.u8(1)) if t.u8(2) else None)
    elif cls is RepoStatusChanged:
        status = t.table(0)
        action = RepoStatusChanged(
            _decode_status(status) if status is not None else RepoStatus(0, 0)
        )
    else:
        action = cls()
    return action


def _refs(vec: Vector, ids: list[bytes], kind: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for i in range(len(vec)):
        t = vec.table(i)
        name = required(t.string(0), f"Repo.{kind}[{i}].name")
        index = t.u32(1)
        if index >= len(ids):
            malformed(
                f"{kind[:-1]} {name!r} points at snapshot number {index}, but the repository "
                f"lists only {len(ids)} snapshots"
            )
        if name in out:
            malformed(f"{kind[:-1]} {name!r} appears twice")
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
            "version; the repo object is damaged"
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
            f"{opened.spec_version}; the repo object is damaged"
        )
    try:
        return decode_repo_info(opened.content)
    except IcechunkError as exc:
        raise IcechunkError(f"cannot read {key}: {exc.message}") from None


# --- pure edits for the update protocol ----------------------------------------------------------


def initial_repo_info(initial: SnapshotInfo, now: int, config: bytes | None = None) -> RepoInfo:
    """The ``repo`` written by create: ``main`` at the initial snapshot, one RepoInitialized.

    Parameters
    ----------
    initial
        The initial snapshot's entry (no parent).
    now
        Creation time in µs since the epoch; status ``set_at`` and the update's time.
    config
        The config FlexBuffer to store, or None (default config).
    """
    return RepoInfo(
        branches={"main": initial.id},
        tags={},
        deleted_tags=frozenset(),
        snapshots={initial.id: initial},
        status=RepoStatus(RepoAvailability.ONLINE, now),
        latest_updates=(Update(RepoInitialized(), now),),
        config=config,
    )


def backup_name(now_ms: int, random12: bytes | None = None) -> str:
    """The bare name of a new ``overwritten/`` backup (FORMAT-V2 §1).

    Parameters
    ----------
    now_ms
        Current Unix time in milliseconds.
    random12
        12 random bytes; fresh ones when None.

    Returns
    -------
    str
        ``repo.<T>.<R>``: T = 32503680000000 - now_ms, zero-padded to 14 digits (newer backups
        sort first), R the random bytes in Crockford base32.
    """
    rand = os.urandom(12) if random12 is None else random12
    return f"repo.{32503680000000 - now_ms:014d}.{encode_id(_id12(rand, 'random part'))}"


def record_update(
    repo: RepoInfo,
    action: UpdateAction,
    now: int,
    backup: str,
    window: int = DEFAULT_NUM_UPDATES_PER_FILE,
) -> RepoInfo:
    """Prepend an ops-log entry, with the window and chain rule of FORMAT-V2 §10.3.

    The current newest entry gets ``backup`` as its backup path (``backup`` is where the caller
    copies the current ``repo`` before replacing it). Once ``window`` entries are in, the log
    is cut at the first further entry that has a backup path, and ``repo_before_updates`` names
    that entry's file; entries without one (from migration) are kept past the window.

    Parameters
    ----------
    repo
        The current state, as read.
    action
        What the update does.
    now
        The update's time in µs since the epoch.
    backup
        Bare ``overwritten/`` name of the copy of the current state.
    window
        ``num_updates_per_repo_info_file``.

    Returns
    -------
    RepoInfo
        ``repo`` with the new log; nothing else changed.

    Raises
    ------
    IcechunkError
        If ``now`` is not later than the newest entry (the reference's ``snapshot-timestamp``
        check: the clock moved back, or the newest entry is in the future).
    """
    entries = repo.latest_updates
    if entries and now <= entries[0].updated_at:
        raise IcechunkError(
            "update timestamp is invalid, please verify if the machine clock has drifted: "
            f"update time: `{now}`, latest update time: `{entries[0].updated_at}`"
        )
    before = repo.repo_before_updates
    new = [Update(action, now)]
    for i, entry in enumerate(entries):
        if i == 0:
            entry = dataclasses.replace(entry, backup_path=backup)
        if len(new) >= window and entry.backup_path is not None:
            before = entry.backup_path
            break
        new.append(entry)
    return dataclasses.replace(repo, latest_updates=tuple(new), repo_before_updates=before)


def add_snapshot(repo: RepoInfo, info: SnapshotInfo) -> RepoInfo:
    """List a new snapshot (commit, amend, flush).

    Raises
    ------
    IcechunkError
        If the id is already listed or the parent is not.
    """
    if info.id in repo.snapshots:
        raise IcechunkError(f"snapshot {encode_id(info.id)} is already listed in the repository")
    if info.parent_id is not None:
        repo.snapshot(info.parent_id)
    return dataclasses.replace(repo, snapshots={**repo.snapshots, info.id: info})


def set_branch(repo: RepoInfo, name: str, snapshot_id: bytes) -> RepoInfo:
    """Point branch ``name`` (new or existing) at a listed snapshot.

    Raises
    ------
    IcechunkError
        If the snapshot is not listed.
    """
    repo.snapshot(snapshot_id)
    return dataclasses.replace(repo, branches={**repo.branches, name: snapshot_id})


def create_branch(repo: RepoInfo, name: str, snapshot_id: bytes) -> RepoInfo:
    """Create a branch.

    Raises
    ------
    IcechunkError
        If it exists or the snapshot is not listed.
    """
    if name in repo.branches:
        raise IcechunkError(f"branch already exists `{name} -> {encode_id(repo.branches[name])}`")
    return set_branch(repo, name, snapshot_id)


def delete_branch(repo: RepoInfo, name: str) -> RepoInfo:
    """Delete a branch other than ``main``.

    Raises
    ------
    IcechunkError
        For ``main`` or a branch that does not exist.
    """
    if name == "main":
        raise IcechunkError("cannot delete branch main")
    if name not in repo.branches:
        raise IcechunkError(f"ref not found `{name}`")
    branches = dict(repo.branches)
    del branches[name]
    return dataclasses.replace(repo, branches=branches)


def create_tag(repo: RepoInfo, name: str, snapshot_id: bytes) -> RepoInfo:
    """Create a tag.

    Raises
    ------
    IcechunkError
        If the tag exists or was deleted before (tags are never reused), or the snapshot is
        not listed.
    """
    if name in repo.tags:
        raise IcechunkError(f"tag already exists `{name} -> {encode_id(repo.tags[name])}`")
    if name in repo.deleted_tags:
        raise IcechunkError(
            f"icechunk does not allow tag reuse and tag was already deleted `{name}`"
        )
    repo.snapshot(snapshot_id)
    return dataclasses.replace(repo, tags={**repo.tags, name: snapshot_id})


def delete_tag(repo: RepoInfo, name: str) -> RepoInfo:
    """Delete a tag; its name joins ``deleted_tags``.

    Raises
    ------
    IcechunkError
        If the tag does not exist.
    """
    if name not in repo.tags:
        raise IcechunkError(f"ref not found `{name}`")
    tags = dict(repo.tags)
    del tags[name]
    return dataclasses.replace(repo, tags=tags, deleted_tags=repo.deleted_tags | {name})


def set_feature_flag(repo: RepoInfo, flag: int, value: bool | None) -> RepoInfo:
    """Enable, disable or (``value`` None) unset a feature flag.

    Once a flag was set, both lists are written (possibly empty), as 2.3.0 does.
    """
    enabled = set(repo.enabled_feature_flags or ()) - {flag}
    disabled = set(repo.disabled_feature_flags or ()) - {flag}
    if value is True:
        enabled.add(flag)
    elif value is False:
        disabled.add(flag)
    return dataclasses.replace(
        repo,
        enabled_feature_flags=tuple(sorted(enabled)),
        disabled_feature_flags=tuple(sorted(disabled)),
    )


def ancestry(repo: RepoInfo, snapshot_id: bytes) -> Iterator[SnapshotInfo]:
    """Yield ``snapshot_id``'s entry, then its parent's, up to the root.

    Raises
    ------
    IcechunkError
        If a snapshot on the way is not listed, or the parents loop (only possible in a
        hand-built value: decoding refuses cycles).
    """
    seen: set[bytes] = set()
    current: bytes | None = snapshot_id
    while current is not None:
        if current in seen:
            raise IcechunkError(
                f"the snapshot history loops at {encode_id(current)}; the repo object is damaged"
            )
        seen.add(current)
        info = repo.snapshot(current)
        yield info
        current = info.parent_id


def reparent_snapshot(repo: RepoInfo, snapshot_id: bytes, new_parent_id: bytes) -> RepoInfo:
    """Make an ancestor the parent of ``snapshot_id``, collapsing the snapshots in between.

    The collapsed snapshots' transaction logs go to ``pruned_ancestor_tx_logs`` (FORMAT-V2
    §12.2): for each collapsed ancestor, oldest first, its own pruned list then its id; then
    the snapshot's previous list.

    Raises
    ------
    IcechunkError
        If ``new_parent_id`` is not an ancestor of ``snapshot_id``.
    """
    info = repo.snapshot(snapshot_id)
    collapsed: list[SnapshotInfo] = []
    for ancestor in ancestry(repo, snapshot_id):
        if ancestor.id == snapshot_id:
            continue
        if ancestor.id == new_parent_id:
            break
        collapsed.append(ancestor)
    else:
        raise IcechunkError(
            f"snapshot {encode_id(new_parent_id)} is not an ancestor of {encode_id(snapshot_id)}"
        )
    pruned: list[bytes] = []
    for ancestor in reversed(collapsed):
        pruned.extend(ancestor.pruned_ancestor_tx_logs)
        pruned.append(ancestor.id)
    pruned.extend(info.pruned_ancestor_tx_logs)
    new = dataclasses.replace(info, parent_id=new_parent_id, pruned_ancestor_tx_logs=tuple(pruned))
    return dataclasses.replace(repo, snapshots={**repo.snapshots, snapshot_id: new})


def remove_snapshots(repo: RepoInfo, ids: set[bytes] | frozenset[bytes]) -> RepoInfo:
    """Unlist snapshots that nothing refers to any more (expiration, GC).

    Reparent the survivors first (:func:`reparent_snapshot`) and delete the refs.

    Raises
    ------
    IcechunkError
        If a ref or a remaining snapshot still points at one of them, or one is the initial
        snapshot.
    """
    if INITIAL_SNAPSHOT_ID in ids:
        raise IcechunkError("the initial snapshot cannot be removed")
    for kind, refs in (("branch", repo.branches), ("tag", repo.tags)):
        for name, target in refs.items():
            if target in ids:
                raise IcechunkError(
                    f"{kind} {name!r} points at snapshot {encode_id(target)}, which is removed"
                )
    kept = {k: v for k, v in repo.snapshots.items() if k not in ids}
    for info in kept.values():
        if info.parent_id is not None and info.parent_id in ids:
            raise IcechunkError(
                f"snapshot {encode_id(info.id)} has removed parent {encode_id(info.parent_id)}"
            )
    return dataclasses.replace(repo, snapshots=kept)
