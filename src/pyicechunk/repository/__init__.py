"""Repository: a storage location's refs, config and history; opens sessions.

The refs, the persisted config and the history come from the repository state
(:class:`~pyicechunk.repo_state.RepoState`, one implementation per format version); the
maintenance methods come from :class:`~pyicechunk.repository.maintenance.Maintenance`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from pyicechunk._sync import sync
from pyicechunk._time import datetime_to_micros, micros_to_datetime
from pyicechunk.config import RepositoryConfig, StorageSettings
from pyicechunk.exceptions import IcechunkError, ObjectNotFoundError
from pyicechunk.format.ids import decode_id, encode_id
from pyicechunk.format.snapshot import Snapshot
from pyicechunk.history import HistoryEntry, HistorySource, HistoryWalk, diff_between
from pyicechunk.history import as_of as as_of_entry
from pyicechunk.repo_state import (
    ConfigVersion,
    RepoState,
    fetch_config,
    open_state,
    repository_exists,
)
from pyicechunk.repository.maintenance import Maintenance
from pyicechunk.session import Session
from pyicechunk.session.context import RepoContext, check_metadata
from pyicechunk.session.core import SessionCore
from pyicechunk.storage import Storage
from pyicechunk.store import IcechunkStore
from pyicechunk.types import Diff, ManifestFileInfo, SnapshotInfo

__all__ = ["Repository"]

_ONE_OF = "Must provide one of branch, tag, or snapshot_id"
# The format version Repository.create writes.
_NEW_REPOSITORY_SPEC = 1


def _check_one_ref(branch: str | None, tag: str | None, snapshot_id: str | None) -> None:
    """The rule of every method that takes a ref: exactly one of branch, tag, snapshot id."""
    if sum(x is not None for x in (branch, tag, snapshot_id)) != 1:
        raise ValueError(_ONE_OF)


def _parse_snapshot_id(text: str) -> bytes:
    """Decode a user-supplied snapshot id, with the reference's error text."""
    if not isinstance(text, str):
        raise TypeError(f"snapshot ids are str, not {type(text).__name__}")
    try:
        return decode_id(text, 12)
    except ValueError:
        raise IcechunkError(
            f"invalid snapshot id: `{text}` (expected 20 Crockford base32 characters)"
        ) from None


def _copy_json(value: Any) -> Any:
    # Commit metadata is JSON-like; copying only containers is much cheaper than deepcopy.
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


def _snapshot_info(entry: HistoryEntry, snapshot: Snapshot) -> SnapshotInfo:
    return SnapshotInfo(
        id=encode_id(entry.id),
        parent_id=None if entry.parent_id is None else encode_id(entry.parent_id),
        written_at=micros_to_datetime(entry.flushed_at),
        message=entry.message,
        metadata=_copy_json(entry.metadata),
        manifests=[
            ManifestFileInfo(encode_id(m.id), m.size_bytes, m.num_chunk_refs)
            for m in snapshot.manifest_files
        ],
    )


def _is_default_config(config: RepositoryConfig) -> bool:
    return bool(config == RepositoryConfig())


class _Ancestry:
    """Snapshots from a starting point back to the root; a sync and an async iterator."""

    def __init__(
        self, repo: Repository, branch: str | None, tag: str | None, snapshot_id: str | None
    ) -> None:
        self._repo = repo
        self._start = (branch, tag, snapshot_id)
        self._walk: HistoryWalk | None = None
        self._history: HistorySource | None = None
        self._buffer: list[SnapshotInfo] = []

    async def _advance(self, batch: int) -> list[SnapshotInfo]:
        if self._walk is None:
            start = await self._repo._resolve(*self._start)
            self._history = await self._repo._state.history()
            self._walk = HistoryWalk(self._history, start)
        assert self._history is not None
        out: list[SnapshotInfo] = []
        while len(out) < batch:
            entry = await self._walk.next()
            if entry is None:
                break
            out.append(_snapshot_info(entry, await self._history.snapshot_of(entry)))
        return out

    def __iter__(self) -> Iterator[SnapshotInfo]:
        return self

    def __next__(self) -> SnapshotInfo:
        if not self._buffer:
            self._buffer = sync(self._advance(64))
            if not self._buffer:
                raise StopIteration
        return self._buffer.pop(0)

    def __aiter__(self) -> AsyncIterator[SnapshotInfo]:
        return self

    async def __anext__(self) -> SnapshotInfo:
        if not self._buffer:
            self._buffer = await self._advance(16)
            if not self._buffer:
                raise StopAsyncIteration
        return self._buffer.pop(0)


class Repository(Maintenance):
    """An Icechunk repository: version-controlled Zarr data in a storage location.

    Create or open one with :meth:`create`, :meth:`open` or :meth:`open_or_create`; read and
    write through sessions.
    """

    _ctx: RepoContext
    _storage: Storage
    _authorize: dict[str, Any]
    _config_version: ConfigVersion

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "Repository cannot be constructed directly; use Repository.create(storage), "
            "Repository.open(storage) or Repository.open_or_create(storage)"
        )

    @classmethod
    def _build(
        cls,
        storage: Storage,
        config: RepositoryConfig,
        authorize: dict[str, Any] | None,
        config_version: ConfigVersion,
        spec_version: int,
    ) -> Repository:
        repo = cls.__new__(cls)
        repo._storage = storage
        repo._ctx = RepoContext(
            storage=_with_settings(storage, config),
            config=config,
            spec_version=spec_version,
            authorized=dict(authorize or {}),
        )
        repo._authorize = dict(authorize or {})
        repo._config_version = config_version
        return repo

    # -- lifecycle ----------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        storage: Storage,
        config: RepositoryConfig | None = None,
        authorize_virtual_chunk_access: dict[str, Any] | None = None,
    ) -> Repository:
        """Create a new repository in an empty storage location.

        Parameters
        ----------
        storage
            Where the repository lives; the location must hold no objects.
        config
            Repository configuration; persisted to ``config.yaml`` unless it is the default.
        authorize_virtual_chunk_access
            Credentials per virtual chunk container prefix.

        Returns
        -------
        Repository

        Raises
        ------
        IcechunkError
            The location is not empty, or the storage is read-only.
        """
        return sync(cls.create_async(storage, config, authorize_virtual_chunk_access))

    @classmethod
    async def create_async(
        cls,
        storage: Storage,
        config: RepositoryConfig | None = None,
        authorize_virtual_chunk_access: dict[str, Any] | None = None,
    ) -> Repository:
        """Async version of :meth:`create`."""
        _check_storage(storage)
        backend = storage.backend
        if backend.read_only:
            raise IcechunkError(
                "the storage used by this Icechunk repository is read-only: "
                "Cannot create repository"
            )
        if await backend.list(""):
            raise IcechunkError(
                "repositories can only be created in clean prefixes: the storage location "
                "already holds objects; use Repository.open for an existing repository or pick "
                "an empty location"
            )
        config = copy.deepcopy(config) if config is not None else RepositoryConfig()
        repo = cls._build(
            storage, config, authorize_virtual_chunk_access, ConfigVersion(), _NEW_REPOSITORY_SPEC
        )
        persisted = None if _is_default_config(config) else config
        repo._config_version = await repo._state.initialize(persisted)
        return repo

    @classmethod
    def open(
        cls,
        storage: Storage,
        config: RepositoryConfig | None = None,
        authorize_virtual_chunk_access: dict[str, Any] | None = None,
    ) -> Repository:
        """Open an existing repository.

        Parameters
        ----------
        storage
            Where the repository lives.
        config
            Configuration merged over the persisted one (fields set here win).
        authorize_virtual_chunk_access
            Credentials per virtual chunk container prefix.

        Raises
        ------
        IcechunkError
            There is no repository in the storage location.
        """
        return sync(cls.open_async(storage, config, authorize_virtual_chunk_access))

    @classmethod
    async def open_async(
        cls,
        storage: Storage,
        config: RepositoryConfig | None = None,
        authorize_virtual_chunk_access: dict[str, Any] | None = None,
    ) -> Repository:
        """Async version of :meth:`open`."""
        _check_storage(storage)
        opened = await open_state(storage.backend)
        effective = opened.config if opened.config is not None else RepositoryConfig()
        if config is not None:
            effective = effective.merge(config)
        return cls._build(
            storage,
            effective,
            authorize_virtual_chunk_access,
            opened.config_version,
            opened.spec_version,
        )

    @classmethod
    def open_or_create(
        cls,
        storage: Storage,
        config: RepositoryConfig | None = None,
        authorize_virtual_chunk_access: dict[str, Any] | None = None,
    ) -> Repository:
        """Open the repository if it exists, otherwise create it."""
        return sync(cls.open_or_create_async(storage, config, authorize_virtual_chunk_access))

    @classmethod
    async def open_or_create_async(
        cls,
        storage: Storage,
        config: RepositoryConfig | None = None,
        authorize_virtual_chunk_access: dict[str, Any] | None = None,
    ) -> Repository:
        """Async version of :meth:`open_or_create`."""
        if await cls.exists_async(storage):
            return await cls.open_async(storage, config, authorize_virtual_chunk_access)
        return await cls.create_async(storage, config, authorize_virtual_chunk_access)

    @staticmethod
    def exists(storage: Storage) -> bool:
        """Whether a repository exists in the storage location."""
        return sync(Repository.exists_async(storage))

    @staticmethod
    async def exists_async(storage: Storage) -> bool:
        """Async version of :meth:`exists`."""
        _check_storage(storage)
        return await repository_exists(storage.backend)

    @staticmethod
    def fetch_config(storage: Storage) -> RepositoryConfig | None:
        """The persisted configuration, or None when there is no ``config.yaml``."""
        return sync(Repository.fetch_config_async(storage))

    @staticmethod
    async def fetch_config_async(storage: Storage) -> RepositoryConfig | None:
        """Async version of :meth:`fetch_config`."""
        _check_storage(storage)
        return await fetch_config(storage.backend)

    def save_config(self) -> None:
        """Persist the current configuration to ``config.yaml``."""
        sync(self.save_config_async())

    async def save_config_async(self) -> None:
        """Async version of :meth:`save_config`."""
        self._config_version = await self._state.save_config(self._ctx.config, self._config_version)

    def reopen(
        self,
        config: RepositoryConfig | None = None,
        authorize_virtual_chunk_access: dict[str, Any] | None = None,
    ) -> Repository:
        """A new Repository on the same storage, with ``config`` merged over the current one.

        ``authorize_virtual_chunk_access=None`` keeps the current authorizations. The default
        commit metadata is not carried over.
        """
        merged = (
            self._ctx.config.merge(config)
            if config is not None
            else copy.deepcopy(self._ctx.config)
        )
        authorize = (
            self._authorize
            if authorize_virtual_chunk_access is None
            else authorize_virtual_chunk_access
        )
        return Repository._build(
            self._storage, merged, authorize, self._config_version, self._ctx.spec_version
        )

    async def reopen_async(
        self,
        config: RepositoryConfig | None = None,
        authorize_virtual_chunk_access: dict[str, Any] | None = None,
    ) -> Repository:
        """Async version of :meth:`reopen`."""
        return self.reopen(config, authorize_virtual_chunk_access)

    # -- pickling -----------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {
            "_repository": {
                "storage": self._storage,
                "config": self._ctx.config,
                "authorize": self._authorize,
                "default_metadata": self._ctx.default_metadata,
                "config_version": self._config_version,
                "spec_version": self._ctx.spec_version,
            }
        }

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict) or not isinstance(state.get("_repository"), dict):
            raise ValueError("Invalid repository state")
        s = state["_repository"]
        built = Repository._build(
            s["storage"], s["config"], s["authorize"], s["config_version"], s["spec_version"]
        )
        self.__dict__.update(built.__dict__)
        self._ctx.default_metadata = dict(s["default_metadata"])

    # -- accessors ----------------------------------------------------------------------------

    @property
    def _state(self) -> RepoState:
        return self._ctx.state

    @property
    def config(self) -> RepositoryConfig:
        """A copy of the effective configuration (change it with :meth:`reopen`)."""
        return copy.deepcopy(self._ctx.config)

    @property
    def storage(self) -> Storage:
        """The storage this repository lives in."""
        return self._storage

    @property
    def authorized_virtual_container_prefixes(self) -> set[str]:
        """The virtual chunk container prefixes this repository may read from."""
        return set(self._authorize)

    def set_default_commit_metadata(self, metadata: dict[str, Any]) -> None:
        """Set properties merged under every later commit's metadata (``{}`` clears them)."""
        self._ctx.default_metadata = check_metadata(metadata)

    def default_commit_metadata(self) -> dict[str, Any]:
        """The default commit metadata."""
        return dict(self._ctx.default_metadata)

    # -- snapshots ----------------------------------------------------------------------------

    async def _fetch_snapshot(self, snapshot_id: bytes) -> Snapshot:
        try:
            return await self._ctx.assets.fetch_snapshot(snapshot_id)
        except ObjectNotFoundError:
            raise IcechunkError(f"snapshot not found: `{encode_id(snapshot_id)}`") from None

    async def _resolve(self, branch: str | None, tag: str | None, snapshot_id: str | None) -> bytes:
        _check_one_ref(branch, tag, snapshot_id)
        if branch is not None:
            return await self._state.branch_tip(branch)
        if tag is not None:
            return await self._state.tag_target(tag)
        assert snapshot_id is not None
        sid = _parse_snapshot_id(snapshot_id)
        await self._fetch_snapshot(sid)
        return sid

    # -- sessions -----------------------------------------------------------------------------

    def readonly_session(
        self,
        branch: str | None = None,
        *,
        tag: str | None = None,
        snapshot_id: str | None = None,
        as_of: dt.datetime | None = None,
    ) -> Session:
        """A read-only session at a branch tip (optionally as of a time), a tag or a snapshot."""
        return sync(
            self.readonly_session_async(branch, tag=tag, snapshot_id=snapshot_id, as_of=as_of)
        )

    async def readonly_session_async(
        self,
        branch: str | None = None,
        *,
        tag: str | None = None,
        snapshot_id: str | None = None,
        as_of: dt.datetime | None = None,
    ) -> Session:
        """Async version of :meth:`readonly_session`."""
        _check_one_ref(branch, tag, snapshot_id)
        if as_of is not None and branch is None:
            raise ValueError("as_of argument must be provided together with a branch name")
        if as_of is not None:
            assert branch is not None
            limit = datetime_to_micros(as_of, "as_of")
            tip = await self._state.branch_tip(branch)
            history = await self._state.history()
            found = await as_of_entry(history, tip, limit)
            if found is None:
                when = as_of.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
                raise IcechunkError(
                    f"branch {branch} does not have a snapshots before or at {when}"
                )
            snapshot = await history.snapshot_of(found)
        else:
            snapshot = await self._fetch_snapshot(await self._resolve(branch, tag, snapshot_id))
        return Session(SessionCore(self._ctx, snapshot, branch=None, read_only=True))

    def writable_session(self, branch: str) -> Session:
        """A session that records changes and commits them to ``branch``."""
        return sync(self.writable_session_async(branch))

    async def writable_session_async(self, branch: str) -> Session:
        """Async version of :meth:`writable_session`."""
        sid = await self._state.branch_tip(branch)
        snapshot = await self._fetch_snapshot(sid)
        core = SessionCore(self._ctx.for_session(), snapshot, branch=branch, read_only=False)
        return Session(core)

    @contextlib.contextmanager
    def transaction(
        self,
        branch: str,
        *,
        message: str,
        metadata: dict[str, Any] | None = None,
        rebase_with: Any | None = None,
        rebase_tries: int = 1_000,
    ) -> Iterator[IcechunkStore]:
        """Yield a writable store on ``branch`` and commit when the block exits normally."""
        session = self.writable_session(branch)
        yield session.store
        session.commit(
            message, metadata=metadata, rebase_with=rebase_with, rebase_tries=rebase_tries
        )

    # -- refs ---------------------------------------------------------------------------------

    def list_branches(self) -> set[str]:
        """Names of all branches."""
        return sync(self.list_branches_async())

    async def list_branches_async(self) -> set[str]:
        """Async version of :meth:`list_branches`."""
        return set((await self._state.refs()).branches)

    def lookup_branch(self, branch: str) -> str:
        """The snapshot id a branch points at."""
        return sync(self.lookup_branch_async(branch))

    async def lookup_branch_async(self, branch: str) -> str:
        """Async version of :meth:`lookup_branch`."""
        return encode_id(await self._state.branch_tip(branch))

    def create_branch(self, branch: str, snapshot_id: str) -> None:
        """Create a branch pointing at a snapshot."""
        sync(self.create_branch_async(branch, snapshot_id))

    async def create_branch_async(self, branch: str, snapshot_id: str) -> None:
        """Async version of :meth:`create_branch`."""
        self._state.validate_ref_name(branch)
        sid = _parse_snapshot_id(snapshot_id)
        await self._fetch_snapshot(sid)
        await self._state.create_branch(branch, sid)

    def delete_branch(self, branch: str) -> None:
        """Delete a branch (never ``main``); its snapshots stay until garbage collection."""
        sync(self.delete_branch_async(branch))

    async def delete_branch_async(self, branch: str) -> None:
        """Async version of :meth:`delete_branch`."""
        await self._state.delete_branch(branch)

    def reset_branch(
        self, branch: str, snapshot_id: str, *, from_snapshot_id: str | None = None
    ) -> None:
        """Point a branch at any existing snapshot (only if at ``from_snapshot_id``, if given)."""
        sync(self.reset_branch_async(branch, snapshot_id, from_snapshot_id=from_snapshot_id))

    async def reset_branch_async(
        self, branch: str, snapshot_id: str, *, from_snapshot_id: str | None = None
    ) -> None:
        """Async version of :meth:`reset_branch`."""
        sid = _parse_snapshot_id(snapshot_id)
        expected = _parse_snapshot_id(from_snapshot_id) if from_snapshot_id is not None else None
        await self._fetch_snapshot(sid)
        await self._state.reset_branch(branch, sid, expected)

    def list_tags(self) -> set[str]:
        """Names of all tags (deleted ones excluded)."""
        return sync(self.list_tags_async())

    async def list_tags_async(self) -> set[str]:
        """Async version of :meth:`list_tags`."""
        return set((await self._state.refs()).tags)

    def lookup_tag(self, tag: str) -> str:
        """The snapshot id a tag points at."""
        return sync(self.lookup_tag_async(tag))

    async def lookup_tag_async(self, tag: str) -> str:
        """Async version of :meth:`lookup_tag`."""
        return encode_id(await self._state.tag_target(tag))

    def create_tag(self, tag: str, snapshot_id: str) -> None:
        """Create an immutable tag; a deleted tag's name can never be used again."""
        sync(self.create_tag_async(tag, snapshot_id))

    async def create_tag_async(self, tag: str, snapshot_id: str) -> None:
        """Async version of :meth:`create_tag`."""
        self._state.validate_ref_name(tag)
        sid = _parse_snapshot_id(snapshot_id)
        await self._fetch_snapshot(sid)
        await self._state.create_tag(tag, sid)

    def delete_tag(self, tag: str) -> None:
        """Delete a tag (writes a tombstone; the name cannot be reused)."""
        sync(self.delete_tag_async(tag))

    async def delete_tag_async(self, tag: str) -> None:
        """Async version of :meth:`delete_tag`."""
        await self._state.delete_tag(tag)

    # -- history ------------------------------------------------------------------------------

    def ancestry(
        self, *, branch: str | None = None, tag: str | None = None, snapshot_id: str | None = None
    ) -> _Ancestry:
        """Snapshots from the given one back to the repository's first, newest first.

        The result is both an iterator and an async iterator.
        """
        _check_one_ref(branch, tag, snapshot_id)
        return _Ancestry(self, branch, tag, snapshot_id)

    def async_ancestry(
        self, *, branch: str | None = None, tag: str | None = None, snapshot_id: str | None = None
    ) -> _Ancestry:
        """Same as :meth:`ancestry`, for ``async for``."""
        return self.ancestry(branch=branch, tag=tag, snapshot_id=snapshot_id)

    def lookup_snapshot(self, snapshot_id: str) -> SnapshotInfo:
        """Information about one snapshot."""
        return sync(self.lookup_snapshot_async(snapshot_id))

    async def lookup_snapshot_async(self, snapshot_id: str) -> SnapshotInfo:
        """Async version of :meth:`lookup_snapshot`."""
        sid = _parse_snapshot_id(snapshot_id)
        history = await self._state.history()
        entry = await history.entry(sid)
        return _snapshot_info(entry, await history.snapshot_of(entry))

    def diff(
        self,
        *,
        from_branch: str | None = None,
        from_tag: str | None = None,
        from_snapshot_id: str | None = None,
        to_branch: str | None = None,
        to_tag: str | None = None,
        to_snapshot_id: str | None = None,
    ) -> Diff:
        """The changes after ``from`` up to and including ``to`` (``from`` must be an ancestor)."""
        return sync(
            self.diff_async(
                from_branch=from_branch,
                from_tag=from_tag,
                from_snapshot_id=from_snapshot_id,
                to_branch=to_branch,
                to_tag=to_tag,
                to_snapshot_id=to_snapshot_id,
            )
        )

    async def diff_async(
        self,
        *,
        from_branch: str | None = None,
        from_tag: str | None = None,
        from_snapshot_id: str | None = None,
        to_branch: str | None = None,
        to_tag: str | None = None,
        to_snapshot_id: str | None = None,
    ) -> Diff:
        """Async version of :meth:`diff`."""
        _check_one_ref(from_branch, from_tag, from_snapshot_id)
        _check_one_ref(to_branch, to_tag, to_snapshot_id)
        from_id, to_id = await asyncio.gather(
            self._resolve(from_branch, from_tag, from_snapshot_id),
            self._resolve(to_branch, to_tag, to_snapshot_id),
        )
        return await diff_between(await self._state.history(), self._ctx.assets, from_id, to_id)

    def inspect_snapshot(self, snapshot_id: str, *, pretty: bool = True) -> str:
        """A JSON description of a snapshot: metadata, manifests and nodes."""
        return sync(self.inspect_snapshot_async(snapshot_id, pretty=pretty))

    async def inspect_snapshot_async(self, snapshot_id: str, *, pretty: bool = True) -> str:
        """Async version of :meth:`inspect_snapshot`."""
        sid = _parse_snapshot_id(snapshot_id)
        snapshot = await self._fetch_snapshot(sid)
        info = await (await self._state.history()).entry(sid)
        doc: dict[str, Any] = {"id": encode_id(snapshot.id)}
        if info.parent_id is not None:
            doc["parent_id"] = encode_id(info.parent_id)
        doc["flushed_at"] = micros_to_datetime(info.flushed_at).isoformat().replace("+00:00", "Z")
        doc["commit_message"] = info.message
        doc["metadata"] = info.metadata
        doc["manifests"] = [
            {"id": encode_id(m.id), "size_bytes": m.size_bytes, "num_chunk_refs": m.num_chunk_refs}
            for m in snapshot.manifest_files
        ]
        nodes = []
        for node in snapshot.nodes:
            entry: dict[str, Any] = {
                "id": encode_id(node.id),
                "path": node.path,
                "node_type": "array" if node.array is not None else "group",
            }
            if node.array is not None:
                entry["manifest_refs"] = [
                    {"id": encode_id(m.object_id), "extents": [list(e) for e in m.extents]}
                    for m in node.array.manifests
                ]
            nodes.append(entry)
        doc["nodes"] = nodes
        return json.dumps(doc, indent=2 if pretty else None)


def _with_settings(storage: Storage, config: RepositoryConfig) -> Storage:
    """The storage as the repository uses it: backend defaults overridden by config.storage."""
    settings = (config.storage or StorageSettings()).merged_over(storage.default_settings())
    backend = storage.backend.with_settings(settings)
    return storage if backend is storage.backend else Storage.from_backend(backend)


def _check_storage(storage: Any) -> None:
    if not isinstance(storage, Storage):
        raise TypeError(
            f"expected a Storage (from in_memory_storage(), local_filesystem_storage(...)), "
            f"got {type(storage).__name__}"
        )
