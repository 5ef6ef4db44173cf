"""pyicechunk: a pure-Python implementation of Icechunk.

Transactional, version-controlled storage for Zarr v3, reading and writing the same on-disk
format (spec version 1) as icechunk 1.1 through the same Python API::

    import pyicechunk as icechunk
"""

from pyicechunk._debug import print_debug_info
from pyicechunk._logging import initialize_logs, set_logs_filter
from pyicechunk._version import __version__
from pyicechunk.config import (
    CachingConfig,
    CompressionAlgorithm,
    CompressionConfig,
    ManifestConfig,
    ManifestPreloadCondition,
    ManifestPreloadConfig,
    ManifestSplitCondition,
    ManifestSplitDimCondition,
    ManifestSplittingConfig,
    ObjectStoreConfig,
    RepositoryConfig,
    S3Options,
    StorageConcurrencySettings,
    StorageRetriesSettings,
    StorageSettings,
    VirtualChunkContainer,
    gcs_store,
    http_store,
    local_filesystem_store,
    s3_store,
)
from pyicechunk.conflicts import (
    BasicConflictSolver,
    Conflict,
    ConflictDetector,
    ConflictSolver,
    ConflictType,
    VersionSelection,
)
from pyicechunk.exceptions import ConflictError, IcechunkError, RebaseFailedError
from pyicechunk.repository import Repository
from pyicechunk.session import ForkSession, Session
from pyicechunk.storage import Storage, in_memory_storage, local_filesystem_storage
from pyicechunk.store import IcechunkStore
from pyicechunk.types import ChunkType, Diff, GCSummary, ManifestFileInfo, SnapshotInfo
from pyicechunk.virtual import VirtualChunkSpec


def spec_version() -> int:
    """The Icechunk on-disk format version this package reads and writes."""
    return 1


__all__ = [
    "BasicConflictSolver",
    "CachingConfig",
    "ChunkType",
    "CompressionAlgorithm",
    "CompressionConfig",
    "Conflict",
    "ConflictDetector",
    "ConflictError",
    "ConflictSolver",
    "ConflictType",
    "Diff",
    "ForkSession",
    "GCSummary",
    "IcechunkError",
    "IcechunkStore",
    "ManifestConfig",
    "ManifestFileInfo",
    "ManifestPreloadCondition",
    "ManifestPreloadConfig",
    "ManifestSplitCondition",
    "ManifestSplitDimCondition",
    "ManifestSplittingConfig",
    "ObjectStoreConfig",
    "RebaseFailedError",
    "Repository",
    "RepositoryConfig",
    "S3Options",
    "Session",
    "SnapshotInfo",
    "Storage",
    "StorageConcurrencySettings",
    "StorageRetriesSettings",
    "StorageSettings",
    "VersionSelection",
    "VirtualChunkContainer",
    "VirtualChunkSpec",
    "__version__",
    "gcs_store",
    "http_store",
    "in_memory_storage",
    "initialize_logs",
    "local_filesystem_storage",
    "local_filesystem_store",
    "print_debug_info",
    "s3_store",
    "set_logs_filter",
    "spec_version",
]

initialize_logs()
