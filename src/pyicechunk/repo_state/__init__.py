"""The repository-state seam: everything mutable about a repository, behind one interface.

Snapshots, manifests, transaction logs and chunks are immutable and read the same way whatever
the format version. What changes is the small mutable state: branches, tags and deleted tags,
the persisted config, which snapshot follows which (the history), and in spec 2 the ops log,
repository metadata, status and feature flags. :class:`RepoState` is the one interface the
repository, its sessions and the maintenance operations use for all of it, with one
implementation per format version:

* spec 1 (:mod:`~pyicechunk.repo_state.spec1`): one ``ref.json`` per branch and tag moved by
  conditional writes, tag tombstones, ``config.yaml``, parent links inside snapshot files;
* spec 2 (FORMAT-V2 §5, §10, §11): the single ``repo`` object, changed by read, modify in
  memory, back up to ``overwritten/``, conditional write, retry. It implements the same methods
  (recording its ops-log entry in each), and adds those only spec 2 has (ops log, metadata,
  status, feature flags) beside them, where the spec-1 state refuses with a "needs spec 2"
  error.

Callers never branch on the version: a commit is one call, :meth:`RepoState.add_snapshot`,
whatever it does on disk. The functions at the end of this module are the entry points that
pick the implementation for a storage location: they probe ``refs/branch.main/ref.json`` and
``repo`` at once (FORMAT-V2 §11.1), and ``repo`` wins when both exist, its ``spec_version``
field deciding the version.
"""

from __future__ import annotations

import abc
import asyncio
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from pyicechunk.exceptions import IcechunkError
from pyicechunk.storage import keys

if TYPE_CHECKING:
    from pyicechunk.asset_manager import AssetManager
    from pyicechunk.config import RepositoryConfig
    from pyicechunk.format.repo_info import RepoInfo, RepoStatus, Update
    from pyicechunk.format.snapshot import Snapshot
    from pyicechunk.history import HistorySource
    from pyicechunk.repo_state.repo_object import Edit
    from pyicechunk.storage import ObjectVersion, StorageBackend

__all__ = [
    "BranchTip",
    "ConfigVersion",
    "NewSnapshot",
    "OpenedState",
    "RefListing",
    "RepoState",
    "SnapshotKind",
    "fetch_config",
    "fetch_spec_version",
    "needs_spec2_error",
    "new_state",
    "open_state",
    "ref_not_found",
    "repository_exists",
]


@dataclass(frozen=True, slots=True)
class RefListing:
    """Every ref of a repository as one listing found them.

    Parameters
    ----------
    branches
        Branch names.
    tags
        Names of live tags.
    deleted_tags
        Names of deleted tags, which can never be used again.
    """

    branches: frozenset[str]
    tags: frozenset[str]
    deleted_tags: frozenset[str]


class SnapshotKind(enum.Enum):
    """How a newly written snapshot joins the history (spec 2 records each in its ops log)."""

    COMMIT = "commit"
    """The branch moves from its expected tip to the snapshot, the tip's child."""
    AMEND = "amend"
    """The snapshot replaces the branch tip: its parent is the replaced tip's parent."""
    DETACHED = "detached"
    """No ref moves (``Session.flush``); the caller gets the id to branch or tag from."""


@dataclass(frozen=True, slots=True)
class NewSnapshot:
    """A written snapshot (with its manifests and transaction log) to make part of the history.

    Parameters
    ----------
    kind
        Commit, amend or detached.
    snapshot
        The snapshot; its ``parent_id`` is the parent it gets in the history.
    branch
        The branch that moves; None for a detached snapshot.
    expected
        The tip the branch must still point at (a commit's base, the tip an amend replaces);
        None for a detached snapshot.
    durable
        Keys of the objects the new state reaches that this operation wrote: they are durable
        before the new state is visible.
    written
        The writes of the snapshot and its transaction log if they are still running (the
        update is prepared meanwhile, and waits for them before anything names the snapshot);
        None once they are done.
    """

    kind: SnapshotKind
    snapshot: Snapshot
    branch: str | None = None
    expected: bytes | None = None
    durable: Sequence[str] = ()
    written: asyncio.Future[object] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class BranchTip:
    """A branch's tip as one read found it, to hand back to :meth:`RepoState.add_snapshot`.

    Parameters
    ----------
    snapshot_id
        The tip, or None if the branch did not exist.
    token
        What the implementation needs to replace exactly the state it read (opaque here).
    """

    snapshot_id: bytes | None
    token: object = None


@dataclass(frozen=True, slots=True)
class ConfigVersion:
    """Which persisted config a repository handle last read or wrote (opaque outside the state).

    Parameters
    ----------
    exists
        Whether a persisted config existed then.
    token
        The stored object's version, where the implementation compares it on save.
    """

    exists: bool = False
    token: ObjectVersion | None = None


@dataclass(frozen=True, slots=True)
class OpenedState:
    """What opening a repository found: its format version and its persisted config.

    Parameters
    ----------
    spec_version
        The repository's on-disk format version.
    config
        The persisted config, or None if there is none (the defaults apply).
    config_version
        To pass to :meth:`RepoState.save_config`.
    found
        What the implementation read while opening, to start from instead of reading it again
        (opaque here; None for none).
    """

    spec_version: int
    config: RepositoryConfig | None
    config_version: ConfigVersion
    found: object = None


class RepoState(abc.ABC):
    """The mutable state of one repository: refs, config and history.

    Implementations hold no mutable fields but caches of what they last read, so one object
    may serve every session of a repository from any thread; whatever must be carried between
    calls (the version of the config or of a branch as read) travels in the values they
    return and take. Every call reads the state afresh (a cache only spares decoding what did
    not change), so a read never misses what another process wrote before it started.

    Errors are the reference's: a missing ref is "ref not found `name`", a branch that moved is
    a :class:`~pyicechunk.exceptions.ConflictError`.
    """

    spec_version: ClassVar[int]

    # -- refs ---------------------------------------------------------------------------------

    @abc.abstractmethod
    def validate_ref_name(self, name: str) -> None:
        """Refuse a name for a new branch or tag that this format cannot store and read back.

        Raises
        ------
        IcechunkError
            For such a name, saying why.
        TypeError
            If ``name`` is not a str.
        """

    @abc.abstractmethod
    async def branch_tip(self, name: str) -> bytes:
        """The snapshot a branch points at.

        Raises
        ------
        IcechunkError
            If there is no such branch.
        """

    @abc.abstractmethod
    async def tag_target(self, name: str) -> bytes:
        """The snapshot a live tag points at.

        Raises
        ------
        IcechunkError
            If there is no such tag, or it was deleted.
        """

    @abc.abstractmethod
    async def refs(self) -> RefListing:
        """Every branch, live tag and deleted tag."""

    @abc.abstractmethod
    async def create_branch(self, name: str, snapshot_id: bytes) -> None:
        """Create a branch at a snapshot of the repository.

        Raises
        ------
        IcechunkError
            If the branch exists or the repository has no such snapshot.
        """

    @abc.abstractmethod
    async def reset_branch(self, name: str, snapshot_id: bytes, expected: bytes | None) -> None:
        """Point a branch at a snapshot of the repository, if it points at ``expected`` (None:
        anywhere).

        Raises
        ------
        IcechunkError
            If there is no such branch or snapshot, or the branch is not at ``expected``.
        """

    @abc.abstractmethod
    async def delete_branch(self, name: str) -> None:
        """Delete a branch other than ``main``.

        Raises
        ------
        IcechunkError
            For ``main`` or a missing branch.
        """

    @abc.abstractmethod
    async def create_tag(self, name: str, snapshot_id: bytes) -> None:
        """Create a tag at a snapshot of the repository.

        Raises
        ------
        IcechunkError
            If the tag exists or existed (tag names are never reused), or the repository has
            no such snapshot.
        """

    @abc.abstractmethod
    async def delete_tag(self, name: str) -> None:
        """Delete a tag; its name can never be used again.

        Raises
        ------
        IcechunkError
            If there is no such live tag.
        """

    # -- new snapshots ------------------------------------------------------------------------

    @abc.abstractmethod
    async def check_writable(self, operation: str) -> None:
        """Refuse to start a change the repository does not accept now.

        Parameters
        ----------
        operation
            What is refused, for the message ("Cannot create writable session").

        Raises
        ------
        IcechunkError
            The repository's status is read-only (spec 2).
        """

    async def writable_tip(self, branch: str, operation: str) -> bytes:
        """The tip of ``branch``, for a session that is to change it.

        Refuses what :meth:`check_writable` refuses; one look at the state where the version
        keeps both in one object.

        Raises
        ------
        IcechunkError
            The repository's status is read-only (spec 2), or there is no such branch.
        """
        await self.check_writable(operation)
        return await self.branch_tip(branch)

    @abc.abstractmethod
    async def check_branch(self, branch: str, expected: bytes) -> BranchTip:
        """Refuse, before anything is written, a commit to a branch that is not at ``expected``.

        Returns
        -------
        BranchTip
            The tip as read, for :meth:`add_snapshot`.

        Raises
        ------
        ConflictError
            The branch points elsewhere (or does not exist).
        IcechunkError
            This implementation cannot write to the repository found at the location.
        """

    @abc.abstractmethod
    async def add_snapshot(self, new: NewSnapshot, tip: BranchTip | None = None) -> None:
        """Make a written snapshot part of the history: THE conditional step of every commit.

        A commit or an amend moves ``new.branch`` to the snapshot only if the branch still
        points at ``new.expected``; a detached snapshot moves no ref. The objects named in
        ``new.durable`` are durable before the change is visible, and nothing is visible
        unless the whole step succeeds.

        Parameters
        ----------
        new
            The snapshot and how it joins the history.
        tip
            The branch as :meth:`check_branch` read it moments ago, which may save a read; a
            stale one only costs a retry.

        Raises
        ------
        ConflictError
            The branch moved (nothing changed).
        """

    # -- config -------------------------------------------------------------------------------

    @abc.abstractmethod
    async def save_config(self, config: RepositoryConfig, previous: ConfigVersion) -> ConfigVersion:
        """Persist ``config`` in place of the config ``previous`` describes.

        Returns
        -------
        ConfigVersion
            The version of the config just written.

        Raises
        ------
        IcechunkError
            If someone else changed the persisted config since ``previous``.
        """

    # -- history ------------------------------------------------------------------------------

    @abc.abstractmethod
    async def history(self) -> HistorySource:
        """Where the history walk finds each snapshot's parent, time, message and metadata."""

    async def ref_history(self, branch: str | None, tag: str | None) -> tuple[bytes, HistorySource]:
        """The snapshot a branch (or else a tag) points at, and the history to walk from it.

        One consistent look at the state where the format allows it (spec 2 reads ``repo``
        once for both).

        Raises
        ------
        IcechunkError
            If there is no such branch or tag.
        """
        if branch is not None:
            start = await self.branch_tip(branch)
        elif tag is not None:
            start = await self.tag_target(tag)
        else:
            raise ValueError("ref_history needs a branch or a tag")
        return start, await self.history()

    def ref_history_now(
        self, branch: str | None, tag: str | None
    ) -> tuple[bytes, HistorySource] | None:
        """:meth:`ref_history` done on the calling thread, for callers holding no event loop;
        None where that would wait for storage (only :meth:`ref_history` reads it then).

        Raises
        ------
        IcechunkError
            As :meth:`ref_history`.
        """
        return None

    # -- the repo object (spec 2) -------------------------------------------------------------
    # Expiration and garbage collection edit a spec-2 history where it lives, in the snapshot
    # list of `repo` (FORMAT-V2 §12); a spec-1 history lives in the snapshot files instead,
    # which those operations rewrite and delete through the asset manager.

    async def repo_info(self) -> RepoInfo | None:
        """The ``repo`` object as it is now; None where the format has none (spec 1).

        Raises
        ------
        IcechunkError
            If it cannot be read, or is damaged.
        """
        return None

    async def update_repo_info(self, edit: Edit) -> RepoInfo:
        """Apply ``edit`` to the freshest ``repo`` in one conditional update (spec 2 only).

        ``edit`` maps the state read to the new state and the ops-log entry recording the
        change; it runs again on every retry after a concurrent update, and what it raises
        ends the update with nothing written.

        Returns
        -------
        RepoInfo
            The state written.

        Raises
        ------
        IcechunkError
            For a format without a ``repo`` object (kind ``unsupported-spec-version``), a
            read-only status, retries exhausted; and whatever ``edit`` raises.
        """
        raise needs_spec2_error()

    # -- what only spec 2 has: the ops log and the repository status --------------------------
    # Metadata and feature flags are edits of `repo` (update_repo_info); setting the status
    # is the one update a read-only repository accepts, so it has a method of its own.

    async def ops_log_file(self, name: str | None) -> tuple[Sequence[Update], str | None]:
        """One file of the ops log: its entries, newest first, and the name of the next one.

        Parameters
        ----------
        name
            None for the newest entries, else a name a previous call returned.

        Returns
        -------
        tuple
            The entries and the name of the file holding the older ones (None: no more).

        Raises
        ------
        IcechunkError
            For a format without an ops log (kind ``unsupported-spec-version``), or a
            damaged file (a missing one ends the log).
        """
        raise needs_spec2_error()

    async def set_status(self, status: RepoStatus) -> None:
        """Set the repository status (recorded in the ops log), even while it is read-only.

        Raises
        ------
        IcechunkError
            For a format without a status (kind ``unsupported-spec-version``).
        """
        raise needs_spec2_error()

    # -- lifecycle ----------------------------------------------------------------------------

    @abc.abstractmethod
    async def initialize(self, config: RepositoryConfig | None) -> ConfigVersion:
        """Create the repository in an empty, writable location: ``main`` at a first snapshot.

        Parameters
        ----------
        config
            The config to persist, or None to persist none (the defaults).

        Returns
        -------
        ConfigVersion
            The version of the persisted config.
        """


def ref_not_found(name: str) -> IcechunkError:
    """The error for a branch or tag that does not exist (both versions word it alike)."""
    return IcechunkError(f"ref not found `{name}`", kind="ref-not-found")


def needs_spec2_error() -> IcechunkError:
    """The reference's error for an operation only spec-2 repositories support."""
    return IcechunkError(
        "repository version error, this operation requires a repository that is at least "
        "version 2.0, please upgrade your on-disk format before executing this operation",
        kind="unsupported-spec-version",
    )


# The entry points: they probe the location and pick the implementation.


async def _detect(backend: StorageBackend, *, with_config: bool = False) -> OpenedState | None:
    """What the location holds: None for no repository.

    ``refs/branch.main/ref.json`` and ``repo`` are read at once (and ``config.yaml`` too when
    ``with_config``, which a spec-1 open needs, saving it a round trip); ``repo`` wins when both
    exist (an unfinished or a file-keeping migration), its ``spec_version`` deciding.
    """
    from pyicechunk.repo_state.repo_object import read_repo_object
    from pyicechunk.repo_state.spec1 import Spec1State
    from pyicechunk.repo_state.spec2 import Spec2State

    async def spec1_config() -> OpenedState | IcechunkError:
        if not with_config:
            return OpenedState(Spec1State.spec_version, None, ConfigVersion())
        try:
            return await Spec1State.read_config(backend)
        except IcechunkError as exc:
            # A broken config.yaml does not matter when `repo` says spec 2.
            return exc

    found, main, stored = await asyncio.gather(
        read_repo_object(backend), backend.exists(keys.SPEC1_MAIN_BRANCH), spec1_config()
    )
    if found is not None and found.info.spec_version != Spec1State.spec_version:
        return Spec2State.opened(found)
    if found is None and not main:
        return None
    if isinstance(stored, IcechunkError):
        raise stored
    return stored


def _not_found() -> IcechunkError:
    from pyicechunk.repo_state.repo_object import repository_not_found

    return repository_not_found()


async def open_state(backend: StorageBackend) -> OpenedState:
    """Find the repository at a storage location: its format version and persisted config.

    Raises
    ------
    IcechunkError
        If there is no repository there (kind ``repository-not-found``), or its state cannot
        be read.
    """
    opened = await _detect(backend, with_config=True)
    if opened is None:
        raise _not_found()
    return opened


async def repository_exists(backend: StorageBackend) -> bool:
    """Whether a repository (of either format version) exists at a storage location."""
    return await _detect(backend) is not None


async def fetch_spec_version(backend: StorageBackend) -> int | None:
    """The format version of the repository at a storage location; None for no repository."""
    opened = await _detect(backend)
    return None if opened is None else opened.spec_version


async def fetch_config(backend: StorageBackend) -> RepositoryConfig | None:
    """The config persisted in the repository at a storage location (None: none persisted).

    Raises
    ------
    IcechunkError
        If there is no repository there (kind ``repository-not-found``), as in icechunk 2.
    """
    opened = await _detect(backend, with_config=True)
    if opened is None:
        raise _not_found()
    return opened.config


def new_state(
    spec_version: int,
    backend: StorageBackend,
    assets: AssetManager,
    config: RepositoryConfig,
    *,
    conditional_create: bool,
    conditional_update: bool,
    found: object = None,
) -> RepoState:
    """The state of a repository of format ``spec_version`` (creating it: the version to write).

    Parameters
    ----------
    spec_version
        The repository's format version.
    backend
        Where it lives.
    assets
        Its asset manager (snapshots are read through its cache).
    config
        The repository config in effect.
    conditional_create, conditional_update
        The ``unsafe_use_conditional_*`` switches in effect: off, a write replaces blindly.
    found
        :attr:`OpenedState.found` of the open that found the repository, if any.

    Raises
    ------
    IcechunkError
        For a format version this package cannot write.
    """
    from pyicechunk.repo_state.repo_object import RepoRead
    from pyicechunk.repo_state.spec1 import Spec1State
    from pyicechunk.repo_state.spec2 import Spec2State

    if spec_version == Spec2State.spec_version:
        return Spec2State(
            backend,
            assets,
            config,
            conditional_update=conditional_update,
            found=found if isinstance(found, RepoRead) else None,
        )
    if spec_version != Spec1State.spec_version:
        raise IcechunkError(
            f"pyicechunk cannot write Icechunk format version {spec_version} repositories; "
            f"use version {Spec2State.spec_version} or {Spec1State.spec_version}",
            kind="unsupported-spec-version",
        )
    return Spec1State(
        backend,
        assets,
        conditional_create=conditional_create,
        conditional_update=conditional_update,
    )
