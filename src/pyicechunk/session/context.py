"""What a session needs from its repository: storage, config, caches and the repository state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyicechunk.asset_manager import AssetManager
from pyicechunk.format.header import SPEC_V1
from pyicechunk.format.manifest import LocationCompression
from pyicechunk.format.snapshot import encode_metadata_value
from pyicechunk.repo_state import RepoState, new_state

if TYPE_CHECKING:
    from pyicechunk.config import RepositoryConfig
    from pyicechunk.storage import Storage

__all__ = ["RepoContext", "check_metadata"]


@dataclass
class RepoContext:
    """A repository as its sessions see it; picklable (the caches and the state are rebuilt)."""

    storage: Storage
    """The storage, with the repository's storage settings applied."""
    config: RepositoryConfig
    spec_version: int = 1
    """The repository's on-disk format version."""
    default_metadata: dict[str, Any] = field(default_factory=dict)
    authorized: dict[str, Any] = field(default_factory=dict)
    """Virtual chunk container prefix -> credentials (None: use the container's defaults)."""
    found: object = None
    """What opening the repository read, for the state to start from (not pickled)."""
    _assets: AssetManager | None = None
    _state: RepoState | None = None

    @property
    def assets(self) -> AssetManager:
        """Reads and writes the repository's immutable objects, through bounded caches."""
        if self._assets is None:
            self._assets = _asset_manager(self.storage, self.config, self.spec_version)
        return self._assets

    @property
    def state(self) -> RepoState:
        """The repository's refs, config and history."""
        if self._state is None:
            self._state = new_state(
                self.spec_version,
                self.storage.backend,
                self.assets,
                self.config,
                conditional_create=self.setting("unsafe_use_conditional_create"),
                conditional_update=self.setting("unsafe_use_conditional_update"),
                found=self.found,
            )
            self.found = None
        return self._state

    @property
    def inline_threshold(self) -> int:
        """Chunks of at most this many bytes are stored inside the manifest."""
        return int(_opt(self.config, "inline_chunk_threshold_bytes", 512))

    def setting(self, name: str) -> bool:
        """An ``unsafe_use_*`` flag: repository config over the backend's default; unset is true."""
        for settings in (self.config.storage, self.storage.default_settings()):
            value = getattr(settings, name, None) if settings is not None else None
            if value is not None:
                return bool(value)
        return True

    def for_session(self) -> RepoContext:
        """A context for a new session: default metadata frozen at session creation.

        The caches and the state are shared with the repository (a pickled copy rebuilds them).
        """
        return RepoContext(
            storage=self.storage,
            config=self.config,
            spec_version=self.spec_version,
            default_metadata=dict(self.default_metadata),
            authorized=self.authorized,
            _assets=self.assets,
            _state=self.state,
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["found"] = None
        state["_assets"] = None
        state["_state"] = None
        return state


def _opt(obj: Any, name: str, default: Any) -> Any:
    value = getattr(obj, name, None) if obj is not None else None
    return default if value is None else value


def _asset_manager(storage: Storage, config: RepositoryConfig, spec_version: int) -> AssetManager:
    caching = config.caching
    return AssetManager(
        storage.backend,
        compression_level=_opt(config.compression, "level", 3),
        num_snapshot_nodes=_opt(caching, "num_snapshot_nodes", 500_000),
        num_chunk_refs=_opt(caching, "num_chunk_refs", 15_000_000),
        num_transaction_changes=max(_opt(caching, "num_transaction_changes", 0), 100_000),
        spec_version=spec_version,
        location_compression=None if spec_version == SPEC_V1 else _location_compression(config),
    )


def _location_compression(config: RepositoryConfig) -> LocationCompression:
    """``manifest.virtual_chunk_location_compression``, unset fields at their defaults."""
    given = _opt(config.manifest, "virtual_chunk_location_compression", None)
    default = LocationCompression()
    return LocationCompression(
        *(
            _opt(given, name, getattr(default, name))
            for name in (
                "min_num_chunks",
                "dictionary_max_training_samples",
                "dictionary_max_size_bytes",
                "compression_level",
            )
        )
    )


def check_metadata(metadata: Any) -> dict[str, Any]:
    """Commit metadata as given by a user, checked: a dict of JSON-like values with str keys.

    Raises
    ------
    TypeError
        If it is not such a dict.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise TypeError(
            f"argument 'metadata': '{type(metadata).__name__}' object cannot be cast as 'dict'"
        )
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise TypeError(f"commit metadata keys must be str, got {key!r}")
        encode_metadata_value(value)  # raises TypeError naming what is not JSON-like
    return dict(metadata)


RESERVED_METADATA_KEY = "__icechunk"
"""The metadata map under which icechunk 2.x records its own keys (FORMAT-V2 §6.2)."""


def with_reserved(properties: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    """``properties`` with ``key: value`` under :data:`RESERVED_METADATA_KEY`, as 2.x records
    its own keys: merged with the user's keys there (a non-map value there is replaced)."""
    reserved = properties.get(RESERVED_METADATA_KEY)
    merged = dict(reserved) if isinstance(reserved, dict) else {}
    merged[key] = value
    return {**properties, RESERVED_METADATA_KEY: merged}
