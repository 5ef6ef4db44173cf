"""Repository configuration: the user-facing classes of icechunk's configuration API (1.1 and 2).

Every field is optional; ``None`` means "use the effective default". Each class declares its
fields, with their effective defaults, once (see ``_record``); ``RepositoryConfig._effective``
and ``StorageSettings._effective`` turn a configuration into frozen records of plain values
for the rest of the library.

One module per concept: ``_object_store`` (``ObjectStoreConfig``, ``S3Options``,
``ChecksumAlgorithm``, the ``*_store`` constructors), ``_virtual_chunk_container``,
``_compression``, ``_caching``, ``_storage_settings``, ``_manifest_preload``,
``_manifest_splitting`` (both on the condition algebra of ``_condition``),
``_location_compression``, ``_manifest``, ``_repo_update_retries`` and ``_repository_config``;
``_record``, ``_variant``, ``_checks`` and ``_formatting`` are what they are built from. Import
from this package, not from those modules. The persisted forms are in
:mod:`pyicechunk.format.config_serde` and the codecs beside it.

Differences from the reference, all deliberate:

- Every class here pickles (the reference's native classes do not), because a pickled
  ``Repository`` or ``Session`` carries its configuration. ``ChecksumAlgorithm`` is an
  ``IntEnum``, so it also hashes and can be built from its value.
- ``ManifestSplitDimCondition`` values compare by value (the reference compares by identity).
- Classes whose reference repr is the default ``<... object at 0x...>`` get a readable repr, and
  ``CompressionConfig``'s repr shows the algorithm it holds.
- ``set_virtual_chunk_container`` validates only the container being added, so one bad entry
  read from an old ``config.yaml`` does not block unrelated edits.
"""

from __future__ import annotations

from typing import Any

from ._caching import CachingConfig
from ._checks import U32_MAX as U32_MAX
from ._compression import CompressionAlgorithm, CompressionConfig
from ._formatting import _rust_debug_str
from ._location_compression import ManifestVirtualChunkLocationCompressionConfig
from ._manifest import ManifestConfig
from ._manifest_preload import ManifestPreloadCondition, ManifestPreloadConfig
from ._manifest_preload import effective_preload as effective_preload
from ._manifest_splitting import (
    ManifestSplitCondition,
    ManifestSplitDimCondition,
    ManifestSplittingConfig,
)
from ._object_store import S3_OPTION_ARGS as S3_OPTION_ARGS
from ._object_store import (
    AnyObjectStoreConfig as AnyObjectStoreConfig,
)
from ._object_store import (
    ChecksumAlgorithm,
    ObjectStoreConfig,
    S3Options,
    azure_store,
    gcs_store,
    http_store,
    local_filesystem_store,
    s3_store,
)
from ._object_store import s3_options_from as s3_options_from
from ._object_store import store_tag as store_tag
from ._record import record_fields as record_fields
from ._record import record_from_fields as record_from_fields
from ._record import record_unknown_keys as record_unknown_keys
from ._repo_update_retries import RepoUpdateRetryConfig
from ._repository_config import EffectiveConfig, RepositoryConfig
from ._storage_settings import (
    EffectiveStorageSettings,
    StorageConcurrencySettings,
    StorageRetriesSettings,
    StorageSettings,
    StorageTimeoutSettings,
)
from ._storage_settings import effective_storage_settings as effective_storage_settings
from ._virtual_chunk_container import VirtualChunkContainer, _validate_container

# For the rest of the library, not part of the public API.
rust_debug_str = _rust_debug_str
validate_container = _validate_container

__all__ = [
    "CachingConfig",
    "ChecksumAlgorithm",
    "CompressionAlgorithm",
    "CompressionConfig",
    "EffectiveConfig",
    "EffectiveStorageSettings",
    "ManifestConfig",
    "ManifestPreloadCondition",
    "ManifestPreloadConfig",
    "ManifestSplitCondition",
    "ManifestSplitDimCondition",
    "ManifestSplittingConfig",
    "ManifestVirtualChunkLocationCompressionConfig",
    "ObjectStoreConfig",
    "RepoUpdateRetryConfig",
    "RepositoryConfig",
    "S3Options",
    "StorageConcurrencySettings",
    "StorageRetriesSettings",
    "StorageSettings",
    "StorageTimeoutSettings",
    "VirtualChunkContainer",
    "azure_store",
    "gcs_store",
    "http_store",
    "local_filesystem_store",
    "s3_store",
]


def _make_home(obj: Any) -> None:
    # Public classes and functions (and nested variants) name this package as their module,
    # so that pickles and introspection show the public path and survive moves between the
    # private modules.
    obj.__module__ = __name__
    for inner in vars(obj).values() if isinstance(obj, type) else ():
        if isinstance(inner, type) and inner.__qualname__.startswith(obj.__qualname__ + "."):
            inner.__module__ = __name__


for _public in __all__:
    _make_home(globals()[_public])
del _public
