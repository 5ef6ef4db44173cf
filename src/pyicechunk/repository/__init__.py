"""Repository: a storage location's refs, config and history; opens sessions.

The refs, the persisted config and the history come from the repository state
(:class:`~pyicechunk.repo_state.RepoState`, one implementation per format version, found by
the entry points of :mod:`pyicechunk.repo_state`); the history methods come from
:class:`~pyicechunk.repository.inspection.Inspection` and the maintenance methods from
:class:`~pyicechunk.repository.maintenance.Maintenance`.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

from pyicechunk._readonly import ReadOnly
from pyicechunk._repr import Block, Shown, qualified
from pyicechunk._sync import blocking_class_twin, blocking_twin, sync
from pyicechunk._time import datetime_to_micros
from pyicechunk.attribution import Attribution
from pyicechunk.config import RepositoryConfig, StorageSettings
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.header import SPEC_V1
from pyicechunk.format.ids import encode_id
from pyicechunk.history import as_of as as_of_entry
from pyicechunk.repo_state import (
    ConfigVersion,
    OpenedState,
    fetch_config,
    fetch_spec_version,
    open_state,
    repository_exists,
)
from pyicechunk.repository.inspection import Inspection, check_one_ref, parse_snapshot_id
from pyicechunk.repository.maintenance import Maintenance
from pyicechunk.repository.object_inspection import ObjectInspection
from pyicechunk.repository.repo_info_api import RepoInfoApi
from pyicechunk.session import Session
from pyicechunk.session.context import RepoContext, check_metadata
from pyicechunk.session.core import SessionCore
from pyicechunk.session.preload import start_preload
from pyicechunk.spec_versions import SpecVersion, parse_spec_version, spec_version_member
from pyicechunk.storage import Storage
from pyicechunk.storage.http import read_only_storage_error
from pyicechunk.store import IcechunkStore

logger = logging.getLogger(__name__)
# Session lifecycle records go under the session target, as in the reference.
session_logger = logging.getLogger("pyicechunk.session")

__all__ = ["Repository"]


def _is_default_config(config: RepositoryConfig) -> bool:
    return bool(config == RepositoryConfig())


class Repository(Shown, Maintenance, RepoInfoApi, ObjectInspection, Inspection):
    """An Icechunk repository: version-controlled Zarr data in a storage location.

    Create or open one with :meth:`create`, :meth:`open` or :meth:`open_or_create`; read and
    write through sessions.
    """

    _ctx: RepoContext
    _storage: Storage
    _authorize: dict[str, Any]
    _config_version: ConfigVersion
    _attribution: Attribution

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
        found: object = None,
    ) -> Repository:
        repo = cls.__new__(cls)
        repo._storage = storage
        repo._ctx = RepoContext(
            storage=_with_settings(storage, config),
            config=config,
            spec_version=spec_version,
            authorized=dict(authorize or {}),
            found=found,
        )
        repo._authorize = dict(authorize or {})
        repo._config_version = config_version
        repo._attribution = Attribution()
        return repo

    # -- lifecycle ----------------------------------------------------------------------------

    @classmethod
    async def create_async(
        cls,
        storage: Storage,
        config: RepositoryConfig | None = None,
        authorize_virtual_chunk_access: dict[str, Any] | None = None,
        spec_version: SpecVersion | int | None = None,
        check_clean_root: bool = True,
        attribution: Attribution | None = None,
    ) -> Repository:
        """Async version of :meth:`create`."""
        _check_storage(storage)
        logger.debug("Creating Repository")
        version = parse_spec_version(spec_version, SpecVersion.current())
        # The first requests already honour the config's storage settings (retries above all).
        backend = _with_settings(storage, config or RepositoryConfig()).backend
        if backend.read_only:
            raise IcechunkError(
                "the storage used by this Icechunk repository is read-only: "
                "Cannot create repository",
                kind="read-only-storage",
            )
        if backend.at_bucket_root():
            raise IcechunkError(
                "creating a repository at an empty prefix (the object store bucket root) is not "
                "supported since Icechunk v2.1.0; use a non-empty prefix. Existing empty-prefix "
                "repositories can still be opened and updated.",
                kind="empty-prefix-creation",
            )
        if check_clean_root and await backend.list(""):
            raise IcechunkError(
                "repositories can only be created in clean prefixes: the storage location "
                "already holds objects; use Repository.open for an existing repository or pick "
                "an empty location",
                kind="parent-directory-not-clean",
            )
        config = copy.deepcopy(config) if config is not None else RepositoryConfig()
        repo = cls._build(storage, config, authorize_virtual_chunk_access, ConfigVersion(), version)
        repo._attribution = _check_attribution(attribution)
        persisted = None if _is_default_config(config) else repo._persisted_config()
        repo._config_version = await repo._state.initialize(persisted)
        return repo

    create = blocking_class_twin(
        create_async,
        """Create a new repository in an empty storage location.

        Parameters
        ----------
        storage
            Where the repository lives.
        config
            Repository configuration; persisted (``Repo.config`` in spec 2, ``config.yaml``
            in spec 1) unless it is the default.
        authorize_virtual_chunk_access
            Credentials per virtual chunk container prefix.
        spec_version
            The on-disk format: ``SpecVersion.v2`` (the default, as in icechunk 2) or
            ``SpecVersion.v1`` (readable by icechunk 1.x); ints work too.
        check_clean_root
            Refuse a location that holds any object (the default). With False, only an
            existing repository is refused.
        attribution
            Labels naming who uses the repository (:attr:`attribution`); pyicechunk keeps
            them but does not add them to its requests' User-Agent.

        Returns
        -------
        Repository

        Raises
        ------
        ValueError
            ``spec_version`` is not a supported version ("Unsupported version 3").
        IcechunkError
            The location is not empty (kind ``parent-directory-not-clean``), is the root of
            an object-store bucket (kind ``empty-prefix-creation``), holds a repository, or the
            storage is read-only.
        """,
    )

    @classmethod
    async def open_async(
        cls,
        storage: Storage,
        config: RepositoryConfig | None = None,
        authorize_virtual_chunk_access: dict[str, Any] | None = None,
        attribution: Attribution | None = None,
    ) -> Repository:
        """Async version of :meth:`open`."""
        _check_storage(storage)
        logger.debug("Opening Repository")
        labels = _check_attribution(attribution)
        repo = cls._opened(
            storage,
            await open_state(_with_settings(storage, config or RepositoryConfig()).backend),
            config,
            authorize_virtual_chunk_access,
        )
        repo._attribution = labels
        return repo

    open = blocking_class_twin(
        open_async,
        """Open an existing repository of either format version.

        Parameters
        ----------
        storage
            Where the repository lives.
        config
            Configuration merged over the persisted one (fields set here win).
        authorize_virtual_chunk_access
            Credentials per virtual chunk container prefix.
        attribution
            Labels naming who uses the repository (:attr:`attribution`); pyicechunk keeps
            them but does not add them to its requests' User-Agent.

        Raises
        ------
        IcechunkError
            There is no repository in the storage location (kind ``repository-not-found``),
            or its state cannot be read.
        """,
    )

    @classmethod
    def _opened(
        cls,
        storage: Storage,
        opened: OpenedState,
        config: RepositoryConfig | None,
        authorize: dict[str, Any] | None,
    ) -> Repository:
        effective = opened.config if opened.config is not None else RepositoryConfig()
        if config is not None:
            effective = effective.merge(config)
        return cls._build(
            storage,
            effective,
            authorize,
            opened.config_version,
            opened.spec_version,
            opened.found,
        )

    @classmethod
    async def open_or_create_async(
        cls,
        storage: Storage,
        config: RepositoryConfig | None = None,
        authorize_virtual_chunk_access: dict[str, Any] | None = None,
        create_version: SpecVersion | int | None = None,
        check_clean_root: bool = True,
        attribution: Attribution | None = None,
    ) -> Repository:
        """Async version of :meth:`open_or_create`."""
        _check_storage(storage)
        parse_spec_version(create_version, SpecVersion.current())
        try:
            opened = await open_state(_with_settings(storage, config or RepositoryConfig()).backend)
        except IcechunkError as exc:
            if exc.kind != "repository-not-found":
                raise
            return await cls.create_async(
                storage,
                config,
                authorize_virtual_chunk_access,
                create_version,
                check_clean_root,
                attribution,
            )
        repo = cls._opened(storage, opened, config, authorize_virtual_chunk_access)
        repo._attribution = _check_attribution(attribution)
        return repo

    open_or_create = blocking_class_twin(
        open_or_create_async,
        """Open the repository if it exists, otherwise create it.

        Parameters are those of :meth:`create`; ``create_version`` is its ``spec_version``, used
        only when there is no repository yet: spec 2 by default, as in icechunk 2 (pass 1 for a
        repository icechunk 1.x can read). An existing repository opens whatever its version.
        """,
    )

    @staticmethod
    def exists(storage: Storage, storage_settings: StorageSettings | None = None) -> bool:
        """Whether a repository of either format version exists in the storage location."""
        return sync(Repository.exists_async(storage, storage_settings))

    @staticmethod
    async def exists_async(
        storage: Storage, storage_settings: StorageSettings | None = None
    ) -> bool:
        """Async version of :meth:`exists`."""
        return await repository_exists(_probe_backend(storage, storage_settings))

    @staticmethod
    def fetch_spec_version(
        storage: Storage, storage_settings: StorageSettings | None = None
    ) -> SpecVersion | None:
        """The format version of the repository in the storage location; None for none."""
        return sync(Repository.fetch_spec_version_async(storage, storage_settings))

    @staticmethod
    async def fetch_spec_version_async(
        storage: Storage, storage_settings: StorageSettings | None = None
    ) -> SpecVersion | None:
        """Async version of :meth:`fetch_spec_version`."""
        found = await fetch_spec_version(_probe_backend(storage, storage_settings))
        return None if found is None else spec_version_member(found)

    @staticmethod
    def fetch_config(storage: Storage) -> RepositoryConfig | None:
        """The persisted configuration, or None when the repository persists none.

        Raises
        ------
        IcechunkError
            There is no repository in the storage location (kind ``repository-not-found``),
            as in icechunk 2.
        """
        return sync(Repository.fetch_config_async(storage))

    @staticmethod
    async def fetch_config_async(storage: Storage) -> RepositoryConfig | None:
        """Async version of :meth:`fetch_config`."""
        _check_storage(storage)
        return await fetch_config(storage.backend)

    def _block(self) -> Block:
        # The storage as its own block, nested; the config elided, as the reference does.
        version = f"v{int(self.spec_version)}"
        return Block(
            f"{qualified('Repository')} ({version})",
            [("storage", self.storage._block()), ("config", "<RepositoryConfig ...>")],
        )

    @property
    def spec_version(self) -> SpecVersion:
        """The repository's on-disk format version."""
        return spec_version_member(self._ctx.spec_version)

    def _persisted_config(self) -> RepositoryConfig:
        """The config to persist: in spec 2, with the storage backend's defaults merged in,
        as icechunk 2 stores it (spec 1 stores the config as given)."""
        config = self._ctx.config
        if self._ctx.spec_version == SPEC_V1:
            return config
        storage = (config.storage or StorageSettings()).merged_over(
            self._storage.default_settings()
        )
        persisted = copy.deepcopy(config)
        persisted.storage = storage
        return persisted

    async def save_config_async(self) -> None:
        """Async version of :meth:`save_config`."""
        self._config_version = await self._state.save_config(
            self._persisted_config(), self._config_version
        )

    save_config = blocking_twin(
        save_config_async,
        "Persist the current configuration (``Repo.config`` in spec 2, ``config.yaml`` in 1).",
    )

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
        repo = Repository._build(
            self._storage, merged, authorize, self._config_version, self._ctx.spec_version
        )
        repo._attribution = self._attribution
        return repo

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
                "attribution": self._attribution,
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
        self._attribution = s.get("attribution", Attribution())

    # -- accessors ----------------------------------------------------------------------------

    @property
    def config(self) -> RepositoryConfig:
        """A copy of the effective configuration (change it with :meth:`reopen`)."""
        return copy.deepcopy(self._ctx.config)

    attribution = ReadOnly[Attribution](
        "_attribution",
        "The labels given when the repository was created or opened (all None if none).",
    )

    storage = ReadOnly[Storage]("_storage", "The storage this repository lives in.")

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

    # -- sessions -----------------------------------------------------------------------------

    async def readonly_session_async(
        self,
        branch: str | None = None,
        *,
        tag: str | None = None,
        snapshot_id: str | None = None,
        as_of: dt.datetime | None = None,
    ) -> Session:
        """Async version of :meth:`readonly_session`."""
        check_one_ref(branch, tag, snapshot_id)
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
                    f"branch {branch} does not have a snapshots before or at {when}",
                    kind="no-snapshot-at-time",
                )
            snapshot = await history.snapshot_of(found)
        else:
            snapshot = await self._fetch_snapshot(await self._resolve(branch, tag, snapshot_id))
        session_logger.debug("Read-only session created, snapshot_id: %s", encode_id(snapshot.id))
        start_preload(self._ctx.assets, self._ctx.config, snapshot)
        return Session(SessionCore(self._ctx, snapshot, branch=None, read_only=True))

    readonly_session = blocking_twin(
        readonly_session_async,
        "A read-only session at a branch tip (optionally as of a time), a tag or a snapshot.",
    )

    async def writable_session_async(self, branch: str) -> Session:
        """Async version of :meth:`writable_session`."""
        if self._storage.backend.read_only:
            raise read_only_storage_error("Cannot create writable session")
        sid = await self._state.writable_tip(branch, "Cannot create writable session")
        snapshot = await self._fetch_snapshot(sid)
        core = SessionCore(self._ctx.for_session(), snapshot, branch=branch, read_only=False)
        start_preload(self._ctx.assets, self._ctx.config, snapshot)
        session_logger.debug(
            "Writable session created, branch_name: %r, snapshot_id: %s", branch, encode_id(sid)
        )
        return Session(core)

    writable_session = blocking_twin(
        writable_session_async,
        "A session that records changes and commits them to ``branch``.",
        here=True,
    )

    async def rearrange_session_async(self, branch: str) -> Session:
        """Async version of :meth:`rearrange_session`."""
        from pyicechunk.repo_state import needs_spec2_error
        from pyicechunk.session.rearrange import check_move_flag

        if self._ctx.spec_version == SPEC_V1:
            raise needs_spec2_error()
        if self._storage.backend.read_only:
            raise read_only_storage_error("Cannot create rearrange session")
        await self._state.check_writable("Cannot create rearrange session")
        await check_move_flag(self._state, "create rearrange session")
        sid = await self._state.branch_tip(branch)
        snapshot = await self._fetch_snapshot(sid)
        ctx = self._ctx.for_session()
        core = SessionCore(ctx, snapshot, branch=branch, read_only=False, rearrange=True)
        start_preload(ctx.assets, ctx.config, snapshot)
        session_logger.debug(
            "Rearrange session created, branch_name: %r, snapshot_id: %s", branch, encode_id(sid)
        )
        return Session(core)

    rearrange_session = blocking_twin(
        rearrange_session_async,
        """A session on ``branch`` that only moves groups and arrays (:meth:`Session.move`).

        Its commit records the moves alone: node ids, metadata and chunks are kept, nothing is
        copied. Spec 2 only; the ``move_node`` feature flag must be on.

        Raises
        ------
        FormatError
            On a spec-1 repository (kind ``unsupported-spec-version``).
        SessionStateError
            The ``move_node`` feature flag is off (kind ``feature-flag-disabled``).
        ReadOnlyError
            The repository or its storage is read-only.
        """,
    )

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
    # Ref operations touch no session or store: their blocking twins run on the calling thread's
    # own loop (``here``), which costs less than a hand-off to zarr's loop and back.

    async def list_branches_async(self) -> set[str]:
        """Async version of :meth:`list_branches`."""
        return set((await self._state.refs()).branches)

    list_branches = blocking_twin(list_branches_async, "Names of all branches.", here=True)

    async def lookup_branch_async(self, branch: str) -> str:
        """Async version of :meth:`lookup_branch`."""
        return encode_id(await self._state.branch_tip(branch))

    lookup_branch = blocking_twin(
        lookup_branch_async, "The snapshot id a branch points at.", here=True
    )

    async def create_branch_async(self, branch: str, snapshot_id: str) -> None:
        """Async version of :meth:`create_branch`."""
        self._state.validate_ref_name(branch)
        await self._state.create_branch(branch, parse_snapshot_id(snapshot_id))

    create_branch = blocking_twin(
        create_branch_async, "Create a branch pointing at a snapshot.", here=True
    )

    async def delete_branch_async(self, branch: str) -> None:
        """Async version of :meth:`delete_branch`."""
        await self._state.delete_branch(branch)

    delete_branch = blocking_twin(
        delete_branch_async,
        "Delete a branch (never ``main``); its snapshots stay until garbage collection.",
        here=True,
    )

    async def reset_branch_async(
        self, branch: str, snapshot_id: str, *, from_snapshot_id: str | None = None
    ) -> None:
        """Async version of :meth:`reset_branch`."""
        sid = parse_snapshot_id(snapshot_id)
        expected = parse_snapshot_id(from_snapshot_id) if from_snapshot_id is not None else None
        await self._state.reset_branch(branch, sid, expected)

    reset_branch = blocking_twin(
        reset_branch_async,
        "Point a branch at any existing snapshot (only if at ``from_snapshot_id``, if given).",
        here=True,
    )

    async def list_tags_async(self) -> set[str]:
        """Async version of :meth:`list_tags`."""
        return set((await self._state.refs()).tags)

    list_tags = blocking_twin(
        list_tags_async, "Names of all tags (deleted ones excluded).", here=True
    )

    async def lookup_tag_async(self, tag: str) -> str:
        """Async version of :meth:`lookup_tag`."""
        return encode_id(await self._state.tag_target(tag))

    lookup_tag = blocking_twin(lookup_tag_async, "The snapshot id a tag points at.", here=True)

    async def create_tag_async(self, tag: str, snapshot_id: str) -> None:
        """Async version of :meth:`create_tag`."""
        self._state.validate_ref_name(tag)
        await self._state.create_tag(tag, parse_snapshot_id(snapshot_id))

    create_tag = blocking_twin(
        create_tag_async,
        "Create an immutable tag; a deleted tag's name can never be used again.",
        here=True,
    )

    async def delete_tag_async(self, tag: str) -> None:
        """Async version of :meth:`delete_tag`."""
        await self._state.delete_tag(tag)

    delete_tag = blocking_twin(
        delete_tag_async, "Delete a tag (writes a tombstone; the name cannot be reused).", here=True
    )


def _with_settings(storage: Storage, config: RepositoryConfig) -> Storage:
    """The storage as the repository uses it: backend defaults overridden by config.storage."""
    settings = (config.storage or StorageSettings()).merged_over(storage.default_settings())
    backend = storage.backend.with_settings(settings)
    return storage if backend is storage.backend else Storage.from_backend(backend)


def _probe_backend(storage: Storage, settings: StorageSettings | None) -> Any:
    """The backend that looks for a repository, with ``settings`` over its defaults."""
    _check_storage(storage)
    if settings is None:
        return storage.backend
    return storage.backend.with_settings(settings.merged_over(storage.default_settings()))


def _check_attribution(attribution: Any) -> Attribution:
    if attribution is None:
        return Attribution()
    if not isinstance(attribution, Attribution):
        raise TypeError(
            f"'{type(attribution).__name__}' object is not an instance of 'Attribution'"
        )
    return attribution


def _check_storage(storage: Any) -> None:
    if not isinstance(storage, Storage):
        raise TypeError(
            f"expected a Storage (from in_memory_storage(), local_filesystem_storage(...)), "
            f"got {type(storage).__name__}"
        )
