"""The manifest config: preloading and splitting together."""

from __future__ import annotations

from ._checks import _opt_instance
from ._manifest_preload import ManifestPreloadConfig
from ._manifest_splitting import ManifestSplittingConfig
from ._record import _field, _Record


class ManifestConfig(_Record):
    """Manifest preloading and splitting.

    Parameters
    ----------
    preload
        Which manifests to load when a session opens.
    splitting
        How chunk references are split over manifests.
    """

    # The reference replaces preload and splitting wholesale on merge instead of merging them.
    preload: ManifestPreloadConfig | None = _field(
        _opt_instance(ManifestPreloadConfig), default=None
    )
    splitting: ManifestSplittingConfig | None = _field(
        _opt_instance(ManifestSplittingConfig), default=None
    )
