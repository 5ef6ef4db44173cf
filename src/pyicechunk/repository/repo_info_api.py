"""The spec-2 repository-level methods of :class:`~pyicechunk.Repository`: the operations log,
repository metadata, status and feature flags (icechunk 2.x's API).

All of them live in the ``repo`` object of a spec-2 repository; each change is one update of
it through the repository state (:meth:`~pyicechunk.repo_state.RepoState.update_repo_info`,
:meth:`~pyicechunk.repo_state.RepoState.set_status`), recorded in the ops log. On a spec-1
repository every method raises the reference's error (kind ``unsupported-spec-version``).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from pyicechunk._sync import sync
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.header import SPEC_V1, SPEC_V2
from pyicechunk.format.repo_info import (
    FeatureFlagChanged,
    MetadataChanged,
    MetadataItems,
    RepoInfo,
    UpdateAction,
    set_feature_flag,
)
from pyicechunk.format.repo_info import Update as StoredUpdate
from pyicechunk.format.snapshot import encode_metadata_value
from pyicechunk.ops_log import Update, update_from_stored
from pyicechunk.repo_state import RepoState, needs_spec2_error
from pyicechunk.repo_status import (
    FeatureFlag,
    RepoStatus,
    feature_flag_id,
    feature_flags_of,
    not_an_instance,
    status_from_stored,
    status_to_stored,
)
from pyicechunk.session.context import RepoContext
from pyicechunk.storage import keys

__all__ = ["OpsLog", "RepoInfoApi"]


def _metadata_items(values: Any) -> MetadataItems:
    """Repository metadata as stored, checked as the reference checks it.

    Raises
    ------
    TypeError
        If ``values`` is not a dict with str keys and JSON-like values.
    """
    if not isinstance(values, Mapping):
        raise not_an_instance(values, "dict")
    for name in values:
        if not isinstance(name, str):
            raise not_an_instance(name, "str")
    return tuple(
        (name, encode_metadata_value(values[name], name, SPEC_V2)) for name in sorted(values)
    )


class OpsLog:
    """The operations log, newest first: both an iterator and an async iterator.

    Made by :meth:`RepoInfoApi.ops_log`. It reads ``repo`` on first use and then the chained
    ``overwritten/`` files one at a time, as far as it is iterated.
    """

    def __init__(self, state: RepoState) -> None:
        self._state = state
        self._buffer: deque[Update] = deque()
        self._next: str | None = None
        self._started = False
        self._closed = False
        self._seen: set[str] = set()
        self._oldest: int | None = None  # µs of the oldest entry read so far

    async def _fill(self) -> bool:
        """Read files until there are entries to hand out; False at the end of the log."""
        while not self._buffer:
            if self._closed or (self._started and self._next is None):
                return False
            name = self._next
            if name is not None:
                if name in self._seen:
                    raise IcechunkError(
                        f"the ops log of this repository loops at {keys.backup_key(name)}; the "
                        "repository's history of changes is damaged (its data is not)",
                        kind="invalid-file-format",
                    )
                self._seen.add(name)
            entries, self._next = await self._state.ops_log_file(name)
            self._check_order(entries, name)
            self._started = True
            self._buffer.extend(update_from_stored(entry) for entry in entries)
        return True

    def _check_order(self, entries: Sequence[StoredUpdate], name: str | None) -> None:
        """Entries go strictly back in time, within a file and from one file to the next.

        Every update is later than the one before it, so a chained file that holds a newer
        state than the entries before it (a copy swapped in its place) is damage, not history.
        """
        times = [e.updated_at for e in entries]
        if self._oldest is not None:
            times.insert(0, self._oldest)
        if any(newer <= older for newer, older in itertools.pairwise(times)):
            where = keys.REPO if name is None else keys.backup_key(name)
            raise IcechunkError(
                f"the ops log of this repository is out of order in {where}: an entry is not "
                "older than the one before it; the repository's history of changes is damaged "
                "(its data is not)",
                kind="invalid-file-format",
            )
        if times:
            self._oldest = times[-1]

    def __iter__(self) -> Iterator[Update]:
        return self

    def __next__(self) -> Update:
        if not self._buffer and not sync(self._fill()):
            raise StopIteration
        return self._buffer.popleft()

    def __aiter__(self) -> AsyncIterator[Update]:
        return self

    async def __anext__(self) -> Update:
        if not self._buffer and not await self._fill():
            raise StopAsyncIteration
        return self._buffer.popleft()

    async def aclose(self) -> None:
        """Stop: later iteration yields nothing."""
        self._closed = True
        self._buffer.clear()


class RepoInfoApi:
    """The ops-log, metadata, status and feature-flag methods (see the module docstring)."""

    _ctx: RepoContext

    def _check_spec2(self) -> None:
        if self._ctx.spec_version == SPEC_V1:
            raise needs_spec2_error()

    async def _repo_info(self) -> RepoInfo:
        self._check_spec2()
        info = await self._ctx.state.repo_info()
        if info is None:
            raise needs_spec2_error()
        return info

    async def _update(self, edit: Any) -> RepoInfo:
        self._check_spec2()
        return await self._ctx.state.update_repo_info(edit)

    # -- ops log ------------------------------------------------------------------------------

    def ops_log(self) -> OpsLog:
        """Every change made to the repository's refs, config, metadata and status, newest
        first, as :class:`~pyicechunk.Update` values (spec 2 only).

        The result is both an iterator and an async iterator.

        Raises
        ------
        IcechunkError
            On a spec-1 repository (kind ``unsupported-spec-version``); while iterating, if a
            part of the log cannot be read.
        """
        self._check_spec2()
        return OpsLog(self._ctx.state)

    def ops_log_async(self) -> OpsLog:
        """Same as :meth:`ops_log`, for ``async for``."""
        return self.ops_log()

    # -- metadata -----------------------------------------------------------------------------

    def get_metadata(self) -> dict[str, Any]:
        """The repository's metadata (spec 2 only; ``{}`` until set)."""
        return sync(self.get_metadata_async())

    async def get_metadata_async(self) -> dict[str, Any]:
        """Async version of :meth:`get_metadata`."""
        return (await self._repo_info()).metadata_values()

    @property
    def metadata(self) -> dict[str, Any]:
        """The repository's metadata (same as :meth:`get_metadata`)."""
        return self.get_metadata()

    def set_metadata(self, metadata: dict[str, Any]) -> None:
        """Replace the repository's metadata (spec 2 only; recorded as ``MetadataChanged``).

        Parameters
        ----------
        metadata
            A dict with str keys and JSON-like values.

        Raises
        ------
        TypeError
            If ``metadata`` is not such a dict.
        IcechunkError
            On a spec-1 repository, or while the repository is read-only.
        """
        sync(self.set_metadata_async(metadata))

    async def set_metadata_async(self, metadata: dict[str, Any]) -> None:
        """Async version of :meth:`set_metadata`."""
        items = _metadata_items(metadata)

        def edit(info: RepoInfo) -> tuple[RepoInfo, UpdateAction]:
            return dataclasses.replace(info, metadata=items), MetadataChanged()

        await self._update(edit)

    def update_metadata(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """Merge ``metadata`` over the repository's metadata (keys given win; spec 2 only).

        The merge is made against the freshest state, in the same update that writes it.

        Returns
        -------
        dict
            The metadata after the merge.

        Raises
        ------
        TypeError
            If ``metadata`` is not a dict with str keys and JSON-like values.
        IcechunkError
            On a spec-1 repository, or while the repository is read-only.
        """
        return sync(self.update_metadata_async(metadata))

    async def update_metadata_async(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """Async version of :meth:`update_metadata`."""
        given = dict(_metadata_items(metadata))

        def edit(info: RepoInfo) -> tuple[RepoInfo, UpdateAction]:
            merged = {**dict(info.metadata), **given}
            items = tuple((name, merged[name]) for name in sorted(merged))
            return dataclasses.replace(info, metadata=items), MetadataChanged()

        return (await self._update(edit)).metadata_values()

    # -- status -------------------------------------------------------------------------------

    def get_status(self) -> RepoStatus:
        """Whether the repository accepts changes, since when and why (spec 2 only)."""
        return sync(self.get_status_async())

    async def get_status_async(self) -> RepoStatus:
        """Async version of :meth:`get_status`."""
        return status_from_stored((await self._repo_info()).status)

    @property
    def status(self) -> RepoStatus:
        """The repository status (same as :meth:`get_status`)."""
        return self.get_status()

    def set_status(self, status: RepoStatus) -> None:
        """Set the repository status (spec 2 only; recorded as ``RepoStatusChanged``).

        While the status is ``RepoAvailability.read_only``, writable sessions, commits, ref
        changes, metadata, flags and config saves are refused; setting the status is not.

        Raises
        ------
        TypeError
            If ``status`` is not a :class:`~pyicechunk.RepoStatus`.
        IcechunkError
            On a spec-1 repository.
        """
        sync(self.set_status_async(status))

    async def set_status_async(self, status: RepoStatus) -> None:
        """Async version of :meth:`set_status`."""
        if not isinstance(status, RepoStatus):
            raise not_an_instance(status, "RepoStatus")
        self._check_spec2()
        await self._ctx.state.set_status(status_to_stored(status))

    # -- feature flags ------------------------------------------------------------------------

    def feature_flags(self) -> list[FeatureFlag]:
        """Every feature flag with its state (spec 2 only)."""
        return sync(self.feature_flags_async())

    async def feature_flags_async(self) -> list[FeatureFlag]:
        """Async version of :meth:`feature_flags`."""
        return feature_flags_of(await self._repo_info())

    def enabled_feature_flags(self) -> list[FeatureFlag]:
        """The feature flags in effect as enabled (spec 2 only)."""
        return sync(self.enabled_feature_flags_async())

    async def enabled_feature_flags_async(self) -> list[FeatureFlag]:
        """Async version of :meth:`enabled_feature_flags`."""
        return [f for f in await self.feature_flags_async() if f.enabled]

    def disabled_feature_flags(self) -> list[FeatureFlag]:
        """The feature flags in effect as disabled (spec 2 only)."""
        return sync(self.disabled_feature_flags_async())

    async def disabled_feature_flags_async(self) -> list[FeatureFlag]:
        """Async version of :meth:`disabled_feature_flags`."""
        return [f for f in await self.feature_flags_async() if not f.enabled]

    def set_feature_flag(self, name: str, setting: bool | None) -> None:
        """Turn an operation on or off for the repository, or back to its default (None).

        Spec 2 only; recorded as ``FeatureFlagChanged``. The flags are ``move_node``
        (rearrange sessions), ``create_tag`` and ``delete_tag``.

        Raises
        ------
        TypeError
            If ``setting`` is not a bool or None.
        IcechunkError
            For an unknown name (kind ``invalid-feature-flag``), on a spec-1 repository, or
            while the repository is read-only.
        """
        sync(self.set_feature_flag_async(name, setting))

    async def set_feature_flag_async(self, name: str, setting: bool | None) -> None:
        """Async version of :meth:`set_feature_flag`."""
        if setting is not None and not isinstance(setting, bool):
            raise not_an_instance(setting, "bool")
        if not isinstance(name, str):
            raise not_an_instance(name, "str")
        self._check_spec2()
        flag = feature_flag_id(name)

        def edit(info: RepoInfo) -> tuple[RepoInfo, UpdateAction]:
            return set_feature_flag(info, flag, setting), FeatureFlagChanged(flag, setting)

        await self._update(edit)
