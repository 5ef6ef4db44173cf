"""The repository config, persisted as ``config.yaml``, and its effective form."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from ._caching import CachingConfig
from ._checks import _instance, _opt_instance, _opt_uint, _str
from ._compression import CompressionAlgorithm, CompressionConfig
from ._manifest import ManifestConfig
from ._manifest_preload import ManifestPreloadCondition, ManifestPreloadConfig
from ._manifest_splitting import (
    ManifestSplitCondition,
    ManifestSplitDimCondition,
    ManifestSplittingConfig,
)
from ._record import _DefaultConstructor, _field, _Record
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
    num_snapshot_nodes: int
    num_chunk_refs: int
    num_transaction_changes: int
    num_bytes_attributes: int
    num_bytes_chunks: int
    preload_max_total_refs: int
    preload_if: ManifestPreloadCondition
    split_sizes: tuple[
        tuple[ManifestSplitCondition, tuple[tuple[ManifestSplitDimCondition, int], ...]], ...
    ]


def _containers(name: str, value: object) -> dict[str, VirtualChunkContainer] | None:
    if value is None:
        return None
    mapping = _instance(name, value, Mapping, "dict")  # type: ignore[type-abstract]
    return {
        _str(name, k): copy.deepcopy(_instance(name, v, VirtualChunkContainer))
        for k, v in mapping.items()
    }


class RepositoryConfig(_DefaultConstructor, _Record):
    """Configuration of a repository, persisted as ``config.yaml``.

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
        Manifest preloading and splitting.
    """

    inline_chunk_threshold_bytes: int | None = _field(_opt_uint(16), default=None, effective=512)
    get_partial_values_concurrency: int | None = _field(_opt_uint(16), default=None, effective=10)
    compression: CompressionConfig | None = _field(
        _opt_instance(CompressionConfig), default=None, nested=True
    )
    # Like the reference, the repr leaves out max_concurrent_requests and the containers.
    max_concurrent_requests: int | None = _field(
        _opt_uint(16), default=None, repr=False, effective=256
    )
    caching: CachingConfig | None = _field(_opt_instance(CachingConfig), default=None, nested=True)
    storage: StorageSettings | None = _field(
        _opt_instance(StorageSettings), default=None, nested=True
    )
    # Read as a copy and edited only through the methods below; on merge, the other config's
    # containers (even ``{}``) replace these.
    virtual_chunk_containers: dict[str, VirtualChunkContainer] | None = _field(
        _containers, default=None, repr=False, copied=True
    )
    manifest: ManifestConfig | None = _field(
        _opt_instance(ManifestConfig), default=None, nested=True
    )

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
        """Add a container, replacing any with the same ``url_prefix``.

        Parameters
        ----------
        cont
            The container.

        Raises
        ------
        ValueError
            If the prefix does not end in ``/``, is not an absolute URL, or its scheme does not
            fit the container's store.
        """
        _instance("cont", cont, VirtualChunkContainer)
        _validate_container(cont)
        containers = dict(self._virtual_chunk_containers or {})
        containers[cont.url_prefix] = copy.deepcopy(cont)
        # The field's storage, written directly: the attribute itself is read-only.
        self._virtual_chunk_containers: dict[str, VirtualChunkContainer] | None = containers

    def clear_virtual_chunk_containers(self) -> None:
        """Remove every container (the property becomes ``{}``, which replaces on merge)."""
        self._virtual_chunk_containers = {}

    def merge(self, other: RepositoryConfig) -> RepositoryConfig:
        """Return this config overridden by the fields set in ``other``.

        Nested compression, caching and storage settings merge field by field; the manifest
        config keeps whichever of ``preload`` and ``splitting`` ``other`` sets; containers in
        ``other`` (even ``{}``) replace these.

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
        manifest = self.manifest or ManifestConfig()
        preload = (manifest.preload or ManifestPreloadConfig())._resolved()
        splitting = (manifest.splitting or ManifestSplittingConfig())._resolved()
        # Own fields carry over by name; nested ones are flattened.
        return EffectiveConfig(
            **{f.name: own[f.name] for f in dataclasses.fields(EffectiveConfig) if f.name in own},
            compression_algorithm=compression["algorithm"],
            compression_level=compression["level"],
            **(self.caching or CachingConfig())._resolved(),
            preload_max_total_refs=preload["max_total_refs"],
            preload_if=preload["preload_if"],
            split_sizes=tuple((cond, tuple(dims)) for cond, dims in splitting["split_sizes"]),
        )
