"""The decoded ``repo`` object of spec-2 repositories (FORMAT-V2 §5): :class:`RepoInfo`.

It is the only mutable object of a spec-2 repository: branches, tags, deleted tags, the list of
every live snapshot with its parent, repository status, metadata and config, feature flags and
the ops log (one class per kind of update). The model refers to snapshots by id, never by
position; the codec computes and resolves the positions the flatbuffer stores.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, dataclass_transform, get_args

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.flexbuffers import decode_flexbuffer, encode_flexbuffer
from pyicechunk.format.header import SPEC_V2
from pyicechunk.format.ids import encode_id

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


class _StoredMetadata:
    """A record whose ``metadata`` is stored as :data:`MetadataItems`."""

    __slots__ = ()
    metadata: MetadataItems

    def metadata_values(self) -> dict[str, Any]:
        """The metadata, decoded.

        Raises
        ------
        IcechunkError
            If a value is not a valid FlexBuffer.
        """
        return decode_metadata_items(self.metadata)


@dataclass(frozen=True, slots=True)
class SnapshotInfo(_StoredMetadata):
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


# --- ops log ----------------------------------------------------------------------------------
# One class per member of the UpdateType union.


class _Action:
    """Base of the ops-log kinds; ``TAG`` is the kind's tag in the on-disk UpdateType union."""

    __slots__ = ()
    TAG: ClassVar[int]


_A = TypeVar("_A", bound=_Action)


@dataclass_transform(frozen_default=True)
def _kind(cls: type[_A]) -> type[_A]:
    """Declare an ops-log kind: a frozen value with slots."""
    return dataclass(frozen=True, slots=True)(cls)


@_kind
class RepoInitialized(_Action):
    """The repository was created."""


@_kind
class RepoMigrated(_Action):
    """The repository was migrated from one spec version to another."""

    from_version: int
    to_version: int


@_kind
class ConfigChanged(_Action):
    """The repository config was saved."""


@_kind
class MetadataChanged(_Action):
    """The repository metadata was set or updated."""


@_kind
class TagCreated(_Action):
    """Tag ``name`` was created."""

    name: str


@_kind
class TagDeleted(_Action):
    """Tag ``name``, which pointed at ``previous_snap_id``, was deleted."""

    name: str
    previous_snap_id: bytes


@_kind
class BranchCreated(_Action):
    """Branch ``name`` was created."""

    name: str


@_kind
class BranchDeleted(_Action):
    """Branch ``name``, whose tip was ``previous_snap_id``, was deleted."""

    name: str
    previous_snap_id: bytes


@_kind
class BranchReset(_Action):
    """Branch ``name`` was reset away from ``previous_snap_id``."""

    name: str
    previous_snap_id: bytes


@_kind
class NewCommit(_Action):
    """A commit (or a manifest rewrite) moved ``branch`` to ``new_snap_id``."""

    branch: str
    new_snap_id: bytes


@_kind
class CommitAmended(_Action):
    """``new_snap_id`` replaced the tip ``previous_snap_id`` of ``branch``."""

    branch: str
    previous_snap_id: bytes
    new_snap_id: bytes


@_kind
class NewDetachedSnapshot(_Action):
    """A flush wrote ``new_snap_id`` without moving a branch."""

    new_snap_id: bytes


@_kind
class GCRan(_Action):
    """Garbage collection ran (not as a dry run)."""


@_kind
class ExpirationRan(_Action):
    """Snapshot expiration ran."""


@_kind
class FeatureFlagChanged(_Action):
    """A flag set to True or False, or back to its default (``new_value`` None)."""

    id: int
    new_value: bool | None


@_kind
class RepoStatusChanged(_Action):
    """The repository status was set."""

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

# FlatBuffers numbers a union's members from 1 in the order the schema declares them, and
# UpdateAction lists the kinds in that order: a kind's position is its tag on disk.
for _tag, _member in enumerate(get_args(UpdateAction), start=1):
    _member.TAG = _tag
del _tag, _member


@dataclass(frozen=True, slots=True)
class Update:
    """One ops-log entry: what happened, when (µs since the epoch) and, for every entry but
    the newest, the bare ``overwritten/`` name of the repo state it produced."""

    action: UpdateAction
    updated_at: int
    backup_path: str | None = None


# --- the repo ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepoInfo(_StoredMetadata):
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
            raise IcechunkError(
                f"snapshot id not found `{encode_id(snapshot_id)}`", kind="snapshot-not-found"
            )
        return info

    def replaced(self, **changes: Any) -> RepoInfo:
        """A copy with the fields named in ``changes`` set, as :func:`dataclasses.replace`
        makes it (without its walk over every field: updates make several of these).

        Raises
        ------
        TypeError
            If a name is not a field.
        """
        fields = _REPO_FIELDS
        for name in changes:
            if name not in fields:
                raise TypeError(f"RepoInfo has no field {name!r}")
        new = object.__new__(RepoInfo)
        values = new.__dict__
        values.update(self.__dict__)
        values.update(changes)
        return new

    def feature_flag(self, flag: int) -> bool:
        """Whether a feature flag is enabled (explicit setting, else the default: enabled)."""
        if flag in (self.disabled_feature_flags or ()):
            return False
        return True


_REPO_FIELDS = frozenset(f.name for f in dataclasses.fields(RepoInfo))


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
                f"error during metadata deserialization: {exc.message} (metadata {name!r})",
                kind="deserialization",
            ) from None
    return out


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
                f"the snapshot history loops at {encode_id(current)}; the repo object is damaged",
                kind="invalid-file-format",
            )
        seen.add(current)
        info = repo.snapshot(current)
        yield info
        current = info.parent_id
