"""The repository config (spec 1: ``config.yaml``; spec 2: in ``repo``) and its effective form."""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

from ._caching import CachingConfig
from ._checks import _instance, _opt_instance, _opt_str, _opt_uint, _str
from ._compression import CompressionAlgorithm, CompressionConfig
from ._location_compression import ManifestVirtualChunkLocationCompressionConfig
from ._manifest import ManifestConfig
from ._manifest_preload import ManifestPreloadCondition, ManifestPreloadConfig
from ._manifest_splitting import (
    ManifestSplitCondition,
    ManifestSplitDimCondition,
    ManifestSplittingConfig,
)
from ._record import _DefaultConstructor, _field, _Record
from ._repo_update_retries import RepoUpdateRetryConfig
from ._storage_settings import StorageSettings
from ._virtual_chunk_container import VirtualChunkContainer, _validate_container


@dataclass(frozen=True)
class EffectiveConfig:
    """A :class:`RepositoryConfig` with every default applied (internal).

    Storage settings are not here: they depend on the backend, see
    :meth:`StorageSettings.merged_over` and :meth:`StorageSettings._effective`.
    """

    inline_chunk_threshold_bytes: int
    get_partial_values_concurrency: int
    compression_algorithm: CompressionAlgorithm
    compression_level: int
    max_concurrent_requests: int
    max_concurrent_decodes: int
    num_updates_per_repo_info_file: int
    repo_update_max_tries: int
    repo_update_initial_backoff_ms: int
    repo_update_max_backoff_ms: int
    num_snapshot_nodes: int
    num_chunk_refs: int
    num_transaction_changes: int
    num_bytes_attributes: int
    num_bytes_chunks: int
    preload_max_total_refs: int
    preload_max_arrays_to_scan: int
    preload_if: ManifestPreloadCondition
    split_sizes: tuple[
        tuple[ManifestSplitCondition, tuple[tuple[ManifestSplitDimCondition, int], ...]], ...
    ]
    max_concurrent_manifest_fetches_during_commit: int
    location_compression_min_num_chunks: int
    location_compression_dictionary_max_training_samples: int
    location_compression_dictionary_max_size_bytes: int
    location_compression_level: int


def _available_cpus() -> int:
    # The CPUs this process may run on (its affinity mask), as the reference counts them.
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _containers(name: str, value: object) -> dict[str, VirtualChunkContainer] | None:
    if value is None:
        return None
    mapping = _instance(name, value, Mapping, "dict")  # type: ignore[type-abstract]
    return {
        _str(name, k): copy.deepcopy(_instance(name, v, VirtualChunkContainer))
        for k, v in mapping.items()
    }


class RepositoryConfig(_DefaultConstructor, _Record):
    """Configuration of a repository, persisted with it (spec 1: ``config.yaml``).

    Parameters
    ----------
    inline_chunk_threshold_bytes
        Chunks smaller than this are stored inside the manifest; effective default 512.
    get_partial_values_concurrency
        Concurrency of partial reads; effective default 10.
    compression
        Compression of metadata files.
    max_concurrent_requests
        Maximum concurrent storage requests; effective default 256.
    caching
        Cache sizes.
    storage
        Storage settings, over the backend's defaults.
    virtual_chunk_containers
        Virtual chunk containers by URL prefix.
    manifest
        Manifest preloading, splitting and location compression.
    repo_update_retries
        Retries of conflicting updates of a spec-2 repository's ``repo`` object.
    num_updates_per_repo_info_file
        Ops-log entries kept in the ``repo`` object before older ones move to a file of their
        own (spec 2); effective default 1000.
    max_concurrent_decodes
        Metadata files decompressed and parsed at the same time; effective default the number
        of CPUs this process may use.
    """

    _ORDER = (
        "inline_chunk_threshold_bytes",
        "get_partial_values_concurrency",
        "max_concurrent_requests",
        "max_concurrent_decodes",
        "num_updates_per_repo_info_file",
        "compression",
        "caching",
        "storage",
        "manifest",
        "repo_update_retries",
        "virtual_chunk_containers",
    )

    inline_chunk_threshold_bytes: int | None = _field(_opt_uint(16), default=None, effective=512)
    get_partial_values_concurrency: int | None = _field(_opt_uint(16), default=None, effective=10)
    compression: CompressionConfig | None = _field(
        _opt_instance(CompressionConfig), default=None, nested=True
    )
    max_concurrent_requests: int | None = _field(_opt_uint(16), default=None, effective=256)
    caching: CachingConfig | None = _field(_opt_instance(CachingConfig), default=None, nested=True)
    storage: StorageSettings | None = _field(
        _opt_instance(StorageSettings), default=None, nested=True
    )
    # Read as a copy and edited only through the methods below; on merge, the other config's
    # containers (even ``{}``) replace these.
    virtual_chunk_containers: dict[str, VirtualChunkContainer] | None = _field(
        _containers, default=None, copied=True
    )
    manifest: ManifestConfig | None = _field(
        _opt_instance(ManifestConfig), default=None, nested=True
    )
    repo_update_retries: RepoUpdateRetryConfig | None = _field(
        _opt_instance(RepoUpdateRetryConfig), default=None, nested=True
    )
    num_updates_per_repo_info_file: int | None = _field(_opt_uint(16), default=None, effective=1000)
    max_concurrent_decodes: int | None = _field(
        _opt_uint(16), default=None, effective_factory=_available_cpus
    )
    # Stored by the reference and read-only in its API; kept so that a save writes it back.
    # The reference does not show it.
    previous_file: str | None = _field(_opt_str, default=None, init=False, repr=False, copied=True)

    def get_virtual_chunk_container(self, name: str) -> VirtualChunkContainer | None:
        """Return the container for a URL prefix, or None.

        Parameters
        ----------
        name
            The container's ``url_prefix``.

        Returns
        -------
        VirtualChunkContainer or None
        """
        found = (self._virtual_chunk_containers or {}).get(name)
        return copy.deepcopy(found)

    def set_virtual_chunk_container(self, cont: VirtualChunkContainer) -> None:
        """Add a container, replacing any with the same ``url_prefix`` or the same name.

        Parameters
        ----------
        cont
            The container.

        Raises
        ------
        ValueError
            If the name is empty or holds ``/``, the prefix does not end in ``/``, is not an
            absolute URL, or its scheme does not fit the container's store.
        """
        _instance("cont", cont, VirtualChunkContainer)
        _validate_container(cont)
        containers = dict(self._virtual_chunk_containers or {})
        if cont.name is not None:
            # A name identifies one container: an older one of that name goes, whatever its
            # prefix.
            containers = {k: v for k, v in containers.items() if v.name != cont.name}
        containers[cont.url_prefix] = copy.deepcopy(cont)
        # The field's storage, written directly: the attribute itself is read-only.
        self._virtual_chunk_containers: dict[str, VirtualChunkContainer] | None = containers

    def clear_virtual_chunk_containers(self) -> None:
        """Remove every container (the property becomes ``{}``, which replaces on merge)."""
        self._virtual_chunk_containers = {}

    def merge(self, other: RepositoryConfig) -> RepositoryConfig:
        """Return this config overridden by the fields set in ``other``.

        Nested compression, caching, storage, repo-update retry and location compression
        settings merge field by field; the manifest config keeps whichever of ``preload`` and
        ``splitting`` ``other`` sets; containers in ``other`` (even ``{}``) replace these.

        Parameters
        ----------
        other
            The overriding config.

        Returns
        -------
        RepositoryConfig
            A new object; neither input changes.
        """
        _instance("other", other, RepositoryConfig)
        return self._merge(other)

    def _effective(self) -> EffectiveConfig:
        own = self._resolved()
        compression = (self.compression or CompressionConfig())._resolved()
        manifest = (self.manifest or ManifestConfig())._resolved()
        preload = (manifest["preload"] or ManifestPreloadConfig())._resolved()
        splitting = (manifest["splitting"] or ManifestSplittingConfig())._resolved()
        locations = (
            manifest["virtual_chunk_location_compression"]
            or ManifestVirtualChunkLocationCompressionConfig()
        )._resolved()
        retries = (self.repo_update_retries or RepoUpdateRetryConfig())._resolved()["default"]
        # Own fields carry over by name; nested ones are flattened.
        return EffectiveConfig(
            **{f.name: own[f.name] for f in dataclasses.fields(EffectiveConfig) if f.name in own},
            compression_algorithm=compression["algorithm"],
            compression_level=compression["level"],
            **(self.caching or CachingConfig())._resolved(),
            **{f"repo_update_{k}": v for k, v in retries._resolved().items()},
            preload_max_total_refs=preload["max_total_refs"],
            preload_max_arrays_to_scan=preload["max_arrays_to_scan"],
            preload_if=preload["preload_if"],
            split_sizes=tuple((cond, tuple(dims)) for cond, dims in splitting["split_sizes"]),
            max_concurrent_manifest_fetches_during_commit=manifest[
                "max_concurrent_manifest_fetches_during_commit"
            ],
            location_compression_min_num_chunks=locations["min_num_chunks"],
            location_compression_dictionary_max_training_samples=locations[
                "dictionary_max_training_samples"
            ],
            location_compression_dictionary_max_size_bytes=locations["dictionary_max_size_bytes"],
            location_compression_level=locations["compression_level"],
        )
