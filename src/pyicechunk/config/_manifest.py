"""The manifest config: preloading, splitting, location compression and commit concurrency."""

from __future__ import annotations

from ._checks import _opt_instance, _opt_uint
from ._location_compression import ManifestVirtualChunkLocationCompressionConfig
from ._manifest_preload import ManifestPreloadConfig
from ._manifest_splitting import ManifestSplittingConfig, _default_split_sizes
from ._record import _field, _Record


def _default_splitting() -> ManifestSplittingConfig:
    # One manifest per array: what an unset splitting config means.
    return ManifestSplittingConfig(_default_split_sizes())


class ManifestConfig(_Record):
    """How manifests are preloaded, split, compressed and rewritten.

    Parameters
    ----------
    preload
        Which manifests to load when a session opens.
    splitting
        How chunk references are split over manifests.
    virtual_chunk_location_compression
        When spec-2 manifests compress the locations of virtual chunks.
    max_concurrent_manifest_fetches_during_commit
        Manifests fetched and rewritten at the same time by a commit, amend, flush or
        ``rewrite_manifests``; effective default 1 (one after the other).
    """

    # The reference replaces preload and splitting wholesale on merge instead of merging them.
    preload: ManifestPreloadConfig | None = _field(
        _opt_instance(ManifestPreloadConfig), default=None
    )
    splitting: ManifestSplittingConfig | None = _field(
        _opt_instance(ManifestSplittingConfig), default=None, effective_factory=_default_splitting
    )
    virtual_chunk_location_compression: ManifestVirtualChunkLocationCompressionConfig | None = (
        _field(
            _opt_instance(ManifestVirtualChunkLocationCompressionConfig),
            default=None,
            nested=True,
        )
    )
    max_concurrent_manifest_fetches_during_commit: int | None = _field(
        _opt_uint(16), default=None, effective=1
    )
