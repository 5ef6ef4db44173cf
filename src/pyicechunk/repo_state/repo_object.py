"""The ``repo`` object of a spec-2 repository: reading it, and the update protocol (FORMAT-V2 §10).

``repo`` is the only mutable object of a spec-2 repository. Every change is one
read-modify-write of it:

1. read ``repo`` and its version;
2. refuse the change if the status is read-only (setting the status itself excepted);
3. build the new state in memory; the operation's own checks (branch tip, tag names, listed
   snapshots) run here, on the state just read, and their failures are final;
4. prepend the ops-log entry, with the window and chain rule of §10.3;
5. copy the bytes read to a fresh ``overwritten/repo.<T>.<R>`` (while step 4 encodes the new
   state; deleted again if that fails);
6. replace ``repo`` only if it still has the version read: a real compare-and-swap on every
   backend here, the local filesystem included (the reference turns it off there), so many
   processes may update one repository safely;
7. if someone else replaced ``repo`` in between, delete the unused copy and start again at 1,
   immediately for the first five retries, then with exponential backoff and jitter, as
   icechunk 2.3.0 does (``repo_update_retries``); unless ``repo`` now names the copy: then
   the swap landed with its answer lost and its write id overtaken or unreadable, a success.

What the new state references (a commit's snapshot, manifests, transaction log and chunks, and
the copy of step 5) is durable before ``repo`` moves.

A read is always a request to storage; the last state read or written is kept, so a read that
finds the same bytes again does not decode them again. An update whose step 1 would read back
the state this object itself wrote last starts from that state instead, when the write told its
version (the local filesystem and memory do) and the swap is a compare-and-swap: if anyone
wrote since, step 6 refuses it, and the update starts again at step 1 with a read, which does
not count as a retry. A change the kept state refuses (a branch that exists there, say) is
decided again on a read, so no error comes from a state that is not the stored one.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyicechunk._time import micros_to_datetime, now_micros
from pyicechunk.exceptions import IcechunkError, ObjectNotFoundError
from pyicechunk.format.repo_info import (
    DEFAULT_NUM_UPDATES_PER_FILE,
    RepoInfo,
    RepoStatus,
    Update,
    UpdateAction,
    backup_name,
    check_update_time,
    pack_repo_object,
    record_update,
    unpack_repo_object,
)
from pyicechunk.storage import ObjectVersion, StorageBackend, keys

if TYPE_CHECKING:
    from pyicechunk.config import RepositoryConfig

__all__ = [
    "RepoObject",
    "RepoRead",
    "RetrySchedule",
    "check_updatable",
    "read_only_error",
    "read_repo_object",
    "repository_not_found",
]

logger = logging.getLogger(__name__)

# Reads larger than this are decoded off the event loop.
_OFFLOAD_BYTES = 256 * 1024
# The reference retries this many times without waiting before it starts backing off.
_IMMEDIATE_RETRIES = 5

Edit = Callable[[RepoInfo], tuple[RepoInfo, UpdateAction]]
"""A change: from the state read to the new state and the ops-log entry recording it."""


@dataclass(frozen=True, slots=True)
class RepoRead:
    """The ``repo`` object as one read (or write) found it.

    Parameters
    ----------
    info
        The decoded state.
    data
        The stored bytes.
    version
        The stored version, for the compare-and-swap; None after a write that did not tell
        it (the next read learns it).
    written
        Whether this is the state this process wrote last, at the version its write
        returned, rather than a read's (the next update may start from it without a read).
    """

    info: RepoInfo
    data: bytes
    version: ObjectVersion | None
    written: bool = False


def repository_not_found() -> IcechunkError:
    """The error for a location that holds no repository."""
    return IcechunkError(
        "the repository doesn't exist: neither `repo` nor `refs/branch.main/ref.json` was found "
        "in the storage location; create a repository there with Repository.create",
        kind="repository-not-found",
    )


def _decode(data: bytes) -> RepoInfo:
    return unpack_repo_object(data, keys.REPO)


async def read_repo_object(backend: StorageBackend) -> RepoRead | None:
    """Read and decode ``repo``; None if there is none.

    Raises
    ------
    IcechunkError
        If the object is damaged (the message names it).
    """
    try:
        data, version = await backend.get_versioned(keys.REPO)
    except ObjectNotFoundError:
        return None
    info = await asyncio.to_thread(_decode, data) if len(data) > _OFFLOAD_BYTES else _decode(data)
    return RepoRead(info, data, version)


def _status_text(status: RepoStatus) -> str:
    # The reference's Rust rendering: "Repo status is ReadOnly, set at <time> UTC, reason: ...".
    when = micros_to_datetime(status.set_at)
    stamp = when.strftime("%Y-%m-%d %H:%M:%S")
    if when.microsecond:
        stamp += f".{when.microsecond:06d}".rstrip("0")
    reason = status.limited_availability_reason
    reason_text = "None" if reason is None else f'Some("{reason}")'
    return f"Repo status is ReadOnly, set at {stamp} UTC, reason: {reason_text}"


def read_only_error(status: RepoStatus, operation: str | None = None) -> IcechunkError:
    """The error for a change refused because the repository's status is read-only."""
    what = "" if operation is None else f"{operation}; "
    return IcechunkError(
        f"the repository status is read-only: {what}{_status_text(status)}",
        kind="read-only-repository",
    )


def check_updatable(info: RepoInfo, *, online_required: bool = True) -> None:
    """Refuse early what an update of ``info`` would refuse anyway (before a commit writes).

    Parameters
    ----------
    info
        The state read.
    online_required
        Whether a read-only status refuses the change.

    Raises
    ------
    IcechunkError
        The status is read-only, the clock is not later than the newest ops-log entry, or
        ``repo`` has no ``main`` branch (it decodes, but no state without one can be written:
        2.3.0 panics there).
    """
    if online_required and not info.status.is_online:
        raise read_only_error(info.status)
    if "main" not in info.branches:
        raise IcechunkError(
            f"cannot update {keys.REPO}: it has no main branch, which every repository has; "
            f"the object is damaged (copies of earlier states are in {keys.OVERWRITTEN})",
            kind="deserialization",
        )
    check_update_time(info, now_micros())


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """How an update that lost the race for ``repo`` is retried (``repo_update_retries``).

    Parameters
    ----------
    max_tries
        Retries in all: the first five are immediate, the other ``max_tries - 5`` back off
        (icechunk 2.3.0 counts the same way).
    initial_backoff_ms, max_backoff_ms
        The first backoff and its cap; each later one doubles, plus up to
        ``initial_backoff_ms`` of jitter.
    """

    max_tries: int = 100
    initial_backoff_ms: int = 50
    max_backoff_ms: int = 30_000

    @classmethod
    def from_config(cls, config: RepositoryConfig) -> RetrySchedule:
        """The schedule a repository config asks for."""
        from pyicechunk.config import StorageSettings, effective_storage_settings

        retries = config.repo_update_retries
        chosen = retries.default if retries is not None else None
        if chosen is None:
            return cls()
        # Fields left unset take the generic storage retry defaults, as in the reference.
        effective = effective_storage_settings(StorageSettings(retries=chosen))
        return cls(effective.max_tries, effective.initial_backoff_ms, effective.max_backoff_ms)

    def delays(self) -> Iterator[float]:
        """The waits before each retry, in seconds."""
        for _ in range(_IMMEDIATE_RETRIES):
            yield 0.0
        delay = self.initial_backoff_ms
        for _ in range(max(0, self.max_tries - _IMMEDIATE_RETRIES)):
            jitter = random.random() * self.initial_backoff_ms
            yield (min(delay, self.max_backoff_ms) + jitter) / 1000
            delay *= 2


class RepoObject:
    """Reads and updates the ``repo`` object of one repository.

    Parameters
    ----------
    backend
        Where the repository lives.
    conditional_update
        Whether ``repo`` is replaced by compare-and-swap (``unsafe_use_conditional_update``;
        off, concurrent writers may overwrite each other, as the switch says).
    retries
        The retry schedule of updates.
    window
        ``num_updates_per_repo_info_file``: ops-log entries kept in ``repo`` itself (None or 0:
        the reference's default, 1000).
    compression_level
        zstd level of the written object.
    found
        A read made while opening the repository, to start the cache with.
    """

    def __init__(
        self,
        backend: StorageBackend,
        *,
        conditional_update: bool = True,
        retries: RetrySchedule | None = None,
        window: int | None = None,
        compression_level: int = 3,
        found: RepoRead | None = None,
    ) -> None:
        self._backend = backend
        self._conditional_update = conditional_update
        self._retries = retries or RetrySchedule()
        self._window = window or DEFAULT_NUM_UPDATES_PER_FILE
        self._level = compression_level
        self._last = found

    @classmethod
    def configured(
        cls,
        backend: StorageBackend,
        config: RepositoryConfig,
        *,
        conditional_update: bool = True,
        compression_level: int = 3,
        found: RepoRead | None = None,
    ) -> RepoObject:
        """The ``repo`` object of a repository with this config (its retries and window)."""
        return cls(
            backend,
            conditional_update=conditional_update,
            retries=RetrySchedule.from_config(config),
            window=config.num_updates_per_repo_info_file,
            compression_level=compression_level,
            found=found,
        )

    async def read(self) -> RepoRead:
        """Read ``repo`` now.

        Raises
        ------
        IcechunkError
            If there is no ``repo`` (kind ``repository-not-found``) or it is damaged.
        """
        logger.debug("Downloading repo info")
        try:
            data, version = await self._backend.get_versioned(keys.REPO)
        except ObjectNotFoundError:
            raise repository_not_found() from None
        if len(data) > _OFFLOAD_BYTES and not self._known(data):
            return self._found(data, version, await asyncio.to_thread(_decode, data))
        return self._found(data, version)

    def read_now(self) -> RepoRead | None:
        """:meth:`read` done on the calling thread, for callers holding no event loop (nothing
        waits for its decoding); None where the storage cannot read ``repo`` so.

        Raises
        ------
        IcechunkError
            As :meth:`read`.
        """
        try:
            read = self._backend.get_versioned_now(keys.REPO)
        except ObjectNotFoundError:
            raise repository_not_found() from None
        if read is None:
            return None
        logger.debug("Downloading repo info")
        return self._found(*read)

    def _known(self, data: bytes) -> bool:
        return self._last is not None and self._last.data == data

    def _found(self, data: bytes, version: ObjectVersion, info: RepoInfo | None = None) -> RepoRead:
        # What the last read or write found is not decoded again.
        last = self._last
        if info is None and last is not None and last.data == data:
            found = last if last.version == version else RepoRead(last.info, data, version)
        else:
            found = RepoRead(_decode(data) if info is None else info, data, version)
        self._last = found
        return found

    async def create(self, info: RepoInfo, *, durable: Sequence[str] = ()) -> None:
        """Write the first ``repo`` of a new repository, only if there is none.

        Raises
        ------
        IcechunkError
            If a ``repo`` exists already (kind ``repo-info-updated``, as in the reference).
        """
        data = pack_repo_object(info, self._level)
        logger.debug("Writing repo info, size_bytes: %d", len(data))
        if not await self._backend.put_if_absent(keys.REPO, data, durable=durable):
            raise IcechunkError(
                "repo info object was updated after this session started: a repository was "
                "created at this location meanwhile; open it with Repository.open",
                kind="repo-info-updated",
            )
        self._last = RepoRead(info, data, None)

    async def update(
        self,
        edit: Edit,
        *,
        start: RepoRead | None = None,
        durable: Sequence[str] = (),
        online_required: bool = True,
        ready: asyncio.Future[object] | None = None,
    ) -> RepoInfo:
        """Apply one change to the freshest ``repo`` (the protocol in the module docstring).

        Parameters
        ----------
        edit
            Builds the new state and its ops-log entry from the state read; it is run again
            on every retry, and what it raises is final.
        start
            A read made moments ago to try first (a stale one only costs a retry).
        durable
            Objects the new state references that must be durable before it is visible.
        online_required
            Whether a read-only status refuses the change (False only for setting the status).
        ready
            Writes of objects in ``durable`` still running: the new state is prepared (and its
            backup copied) meanwhile, and ``repo`` replaced only once they are done; their
            failure fails the update.

        Returns
        -------
        RepoInfo
            The new state, as stored.

        Raises
        ------
        IcechunkError
            The status is read-only (kind ``read-only-repository``), the clock is not later
            than the newest ops-log entry, the retries ran out (kind
            ``update-attempts-exhausted``), or the storage failed; and whatever ``edit``
            raises.
        """
        delays = self._retries.delays()
        current = start if start is not None and start.version is not None else None
        # Without a read: the state this object wrote last, at the version its write returned
        # (only under compare-and-swap, which refuses it if anyone wrote since).
        kept = current is None and self._conditional_update
        if kept:
            current = self._last if self._last is not None and self._last.written else None
            kept = current is not None
        attempts = 1
        while True:
            if current is None:
                current = await self.read()
            try:
                check_updatable(current.info, online_required=online_required)
                edited, action = edit(current.info)
            except Exception:
                if not kept:
                    raise
                # Refused on the state kept: decide again on the stored one, which may differ.
                current, kept = None, False
                continue
            backup = backup_name(time.time_ns() // 1_000_000)
            backup_key = keys.backup_key(backup)
            # The copy is written while the new state is encoded here (CPU work), instead of
            # after it; it is made durable with the new state's write, as before. (After the
            # edit: a refused change writes nothing.) A backend whose copies are made on this
            # thread at once has nothing to overlap: the copy is simply awaited.
            copy = self._backend.put_copy(
                backup_key, current.data, source=keys.REPO, version=current.version
            )
            copying: asyncio.Future[None] | None = None  # None: the copy is made
            if self._backend.quick_copies:
                await copy
            else:
                copying = asyncio.ensure_future(copy)
                await asyncio.sleep(0)  # lets the copy start
            try:
                new = record_update(edited, action, now_micros(), backup, self._window)
                data = pack_repo_object(new, self._level)
            except BaseException:
                await self._discard_copy(copying, backup_key)
                raise
            if copying is not None:
                await copying
            if ready is not None:
                try:
                    await ready
                except BaseException:
                    await self._discard_copy(copying, backup_key)
                    raise
            logger.debug("Writing repo info, size_bytes: %d", len(data))
            replaced = await self._replace(current, data, backup_key, durable)
            if replaced:
                version = replaced if isinstance(replaced, ObjectVersion) else None
                self._last = RepoRead(new, data, version, written=version is not None)
                logger.debug("Repo info object updated successfully, attempts: %d", attempts)
                return new
            if kept:
                # Someone wrote since this object did: not a lost race, a first read.
                current, kept = None, False
                continue
            delay = next(delays, None)
            if delay is None:
                raise IcechunkError(
                    f"repository cannot be updated after {attempts} attempts, too many "
                    "concurrent changes; try again later",
                    kind="update-attempts-exhausted",
                )
            logger.debug("repo was updated concurrently (attempt %d), retrying", attempts)
            attempts += 1
            current = None
            if delay:
                await asyncio.sleep(delay)

    async def _replace(
        self, current: RepoRead, data: bytes, backup_key: str, durable: Sequence[str]
    ) -> bool | ObjectVersion:
        """Swap ``repo`` (the state read is copied to ``backup_key``); False if it moved, else
        true: the new version where the write told it."""
        backend = self._backend
        must_last = [*durable, backup_key]
        if not self._conditional_update:
            await backend.make_durable(must_last)
            await backend.put(keys.REPO, data)
            return True
        assert current.version is not None
        try:
            swapped = await backend.put_if_version(
                keys.REPO, data, current.version, durable=must_last
            )
            if swapped:
                return swapped
        except Exception:
            # The write may have landed with its answer lost, and been overtaken before its
            # stamp was read back (or it carries none): repo itself can tell.
            if await self._names_copy(backup_key):
                return True
            raise
        if await self._names_copy(backup_key):
            return True
        # Nothing refers to the copy: another writer's state does not name it.
        try:
            await backend.delete(backup_key)
        except IcechunkError as exc:
            logger.warning("could not delete the unused copy %s: %s", backup_key, exc.message)
        return False

    async def _discard_copy(self, copying: asyncio.Future[None] | None, backup_key: str) -> None:
        """Delete the copy of an update that failed before writing ``repo`` (``copying``: the
        copy still being made, None if it is done)."""
        try:
            if copying is not None:
                await copying
            await self._backend.delete(backup_key)
        except Exception as exc:
            # The update's own error is the one to report; a copy left behind is harmless:
            # nothing names it, as for a copy whose update lost the race and could not be
            # deleted either.
            logger.warning("could not delete the unused copy %s: %s", backup_key, exc)

    async def _names_copy(self, backup_key: str) -> bool:
        """Whether ``repo`` now names the copy ``backup_key``: then our swap landed.

        The copy's name is random, and only the state written with it names it (its newest
        entry before ours records it), as do the states that later writers built on that
        one; so finding it means the write landed, whatever its answer or stamp said. A read
        that fails proves nothing (False).
        """
        try:
            info = (await self.read()).info
        except Exception:
            return False
        name = backup_key.removeprefix(keys.OVERWRITTEN)
        return info.repo_before_updates == name or any(
            entry.backup_path == name for entry in info.latest_updates
        )

    async def ops_log_file(self, name: str | None) -> tuple[tuple[Update, ...], str | None]:
        """One file of the ops log: its entries, newest first, and where the older ones are.

        Parameters
        ----------
        name
            None for ``repo`` itself, else the bare ``overwritten/`` name a previous call
            returned.

        Returns
        -------
        tuple
            The entries, and the bare name of the file holding the ones before them (None at
            the beginning of the log, or where a file is missing). The newest entry of a
            chained file reports that file's name as its backup path, as the reference's
            ``ops_log`` does.

        Raises
        ------
        IcechunkError
            The file is damaged.
        """
        if name is None:
            info = (await self.read()).info
            return info.latest_updates, info.repo_before_updates
        key = keys.backup_key(name)
        try:
            data = await self._backend.get(key)
        except ObjectNotFoundError:
            # Backups are only history: someone may delete them to save space. Like the
            # reference, the log then ends there (with a warning instead of a failure).
            logger.warning(
                "the ops log continues in %s, which is missing; older entries are not shown "
                "(the repository's data is not affected)",
                key,
            )
            return (), None
        older = unpack_repo_object(data, key)
        entries = older.latest_updates
        if entries:
            first = entries[0]
            entries = (Update(first.action, first.updated_at, name), *entries[1:])
        return entries, older.repo_before_updates
