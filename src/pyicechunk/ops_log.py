"""The operations log of spec-2 repositories, as icechunk 2.x presents it.

Every change of a spec-2 repository's ``repo`` object records one entry: an :class:`Update`
with what happened (an :class:`UpdateType` variant, one per kind of change, with its fields),
when, and the ``overwritten/`` copy of the state it replaced. ``Repository.ops_log()`` yields
them newest first. These classes are views of the stored entries
(:mod:`pyicechunk.format.repo_info`); :func:`update_from_stored` builds one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from pyicechunk._repr import Block, Shown
from pyicechunk._time import micros_to_datetime
from pyicechunk.format import repo_info as stored
from pyicechunk.format.ids import encode_id
from pyicechunk.repo_status import RepoStatus, py_datetime, status_from_stored

__all__ = ["Update", "UpdateType", "update_from_stored"]


class UpdateType:
    """What one ops-log entry records: a base class whose nested classes are the variants.

    ``UpdateType.NewCommit(branch=..., new_snap_id=...)``, ``UpdateType.TagCreated(name=...)``
    and so on; test an entry with ``isinstance(update.kind, UpdateType.NewCommit)``. Variants
    compare by value; their fields are read-only.
    """

    __slots__ = ()
    __hash__ = None  # type: ignore[assignment]

    RepoInitialized: ClassVar[type[RepoInitialized]]
    RepoMigrated: ClassVar[type[RepoMigrated]]
    ConfigChanged: ClassVar[type[ConfigChanged]]
    MetadataChanged: ClassVar[type[MetadataChanged]]
    TagCreated: ClassVar[type[TagCreated]]
    TagDeleted: ClassVar[type[TagDeleted]]
    BranchCreated: ClassVar[type[BranchCreated]]
    BranchDeleted: ClassVar[type[BranchDeleted]]
    BranchReset: ClassVar[type[BranchReset]]
    NewCommit: ClassVar[type[NewCommit]]
    CommitAmended: ClassVar[type[CommitAmended]]
    NewDetachedSnapshot: ClassVar[type[NewDetachedSnapshot]]
    GCRan: ClassVar[type[GCRan]]
    ExpirationRan: ClassVar[type[ExpirationRan]]
    FeatureFlagChanged: ClassVar[type[FeatureFlagChanged]]
    RepoStatusChanged: ClassVar[type[RepoStatusChanged]]

    def __new__(cls, *args: Any, **kwargs: Any) -> UpdateType:
        if cls is UpdateType:
            raise TypeError("cannot create 'UpdateType' instances")
        return super().__new__(cls)

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{f.name}={_field_text(getattr(self, f.name))}"
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
        )
        return f"icechunk.ops.UpdateType.{type(self).__name__}({fields})"

    __str__ = __repr__


def _field_text(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, RepoStatus):
        return value.debug_text()
    return repr(value)


_VARIANT = dataclass(frozen=True, slots=True, eq=True, repr=False)


@_VARIANT
class RepoInitialized(UpdateType):
    """The repository was created."""


@_VARIANT
class RepoMigrated(UpdateType):
    """The repository was migrated from one spec version to another."""

    from_version: int
    to_version: int


@_VARIANT
class ConfigChanged(UpdateType):
    """The repository config was saved."""


@_VARIANT
class MetadataChanged(UpdateType):
    """The repository metadata was set or updated."""


@_VARIANT
class TagCreated(UpdateType):
    """A tag was created."""

    name: str


@_VARIANT
class TagDeleted(UpdateType):
    """A tag was deleted; ``previous_snap_id`` is the snapshot it pointed at."""

    name: str
    previous_snap_id: str


@_VARIANT
class BranchCreated(UpdateType):
    """A branch was created."""

    name: str


@_VARIANT
class BranchDeleted(UpdateType):
    """A branch was deleted; ``previous_snap_id`` was its tip."""

    name: str
    previous_snap_id: str


@_VARIANT
class BranchReset(UpdateType):
    """A branch was reset; ``previous_snap_id`` was its tip before."""

    name: str
    previous_snap_id: str


@_VARIANT
class NewCommit(UpdateType):
    """A commit (or a manifest rewrite) moved ``branch`` to ``new_snap_id``."""

    branch: str
    new_snap_id: str


@_VARIANT
class CommitAmended(UpdateType):
    """``new_snap_id`` replaced ``previous_snap_id``, the tip of ``branch``."""

    branch: str
    previous_snap_id: str
    new_snap_id: str


@_VARIANT
class NewDetachedSnapshot(UpdateType):
    """A flush wrote ``new_snap_id`` without moving a branch."""

    new_snap_id: str


@_VARIANT
class GCRan(UpdateType):
    """Garbage collection ran."""


@_VARIANT
class ExpirationRan(UpdateType):
    """Snapshot expiration ran."""


@_VARIANT
class FeatureFlagChanged(UpdateType):
    """Feature flag ``id`` was set to True or False, or back to its default (None)."""

    id: int
    new_value: bool | None


@_VARIANT
class RepoStatusChanged(UpdateType):
    """The repository status was set."""

    status: RepoStatus


_VARIANTS: tuple[type[UpdateType], ...] = (
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
for _variant in _VARIANTS:
    _variant.__qualname__ = f"UpdateType.{_variant.__name__}"
    setattr(UpdateType, _variant.__name__, _variant)


@dataclass(frozen=True, slots=True, repr=False)
class Update(Shown):
    """One entry of a repository's operations log (``Repository.ops_log()`` yields them).

    Parameters
    ----------
    kind
        What happened, with its details.
    updated_at
        When (UTC).
    backup_path
        The bare ``overwritten/`` name of the copy holding the repository state this change
        produced (None for the newest entry, whose state is the current one).
    """

    kind: UpdateType
    updated_at: dt.datetime
    backup_path: str | None

    def _block(self) -> Block:
        return Block(
            "icechunk.ops.Update",
            [
                ("kind", repr(self.kind)),
                ("updated_at", py_datetime(self.updated_at)),
                ("backup_path", str(self.backup_path)),
            ],
        )


def _kind_from_stored(action: stored.UpdateAction) -> UpdateType:
    match action:
        case stored.RepoInitialized():
            return RepoInitialized()
        case stored.RepoMigrated(from_version, to_version):
            return RepoMigrated(from_version, to_version)
        case stored.ConfigChanged():
            return ConfigChanged()
        case stored.MetadataChanged():
            return MetadataChanged()
        case stored.TagCreated(name):
            return TagCreated(name)
        case stored.TagDeleted(name, previous):
            return TagDeleted(name, encode_id(previous))
        case stored.BranchCreated(name):
            return BranchCreated(name)
        case stored.BranchDeleted(name, previous):
            return BranchDeleted(name, encode_id(previous))
        case stored.BranchReset(name, previous):
            return BranchReset(name, encode_id(previous))
        case stored.NewCommit(branch, new):
            return NewCommit(branch, encode_id(new))
        case stored.CommitAmended(branch, previous, new):
            return CommitAmended(branch, encode_id(previous), encode_id(new))
        case stored.NewDetachedSnapshot(new):
            return NewDetachedSnapshot(encode_id(new))
        case stored.GCRan():
            return GCRan()
        case stored.ExpirationRan():
            return ExpirationRan()
        case stored.FeatureFlagChanged(flag, value):
            return FeatureFlagChanged(flag, value)
        case stored.RepoStatusChanged(status):
            return RepoStatusChanged(status_from_stored(status))
    raise AssertionError(f"unknown ops-log entry {action!r}")  # the union is exhaustive


def update_from_stored(update: stored.Update) -> Update:
    """The public view of a stored ops-log entry."""
    return Update(
        _kind_from_stored(update.action),
        micros_to_datetime(update.updated_at),
        update.backup_path,
    )
