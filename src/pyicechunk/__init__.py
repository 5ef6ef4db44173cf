"""pyicechunk: a pure-Python implementation of Icechunk.

Transactional, version-controlled storage for Zarr v3, reading and writing the same on-disk
formats as icechunk (spec version 2, the default of icechunk 2, and spec version 1, the format
of icechunk 1.x) through the same Python API::

    import pyicechunk as icechunk
"""

# icechunk 2.x's module of history value types, loaded with the package as there.
from pyicechunk import snapshots as snapshots
from pyicechunk._debug import print_debug_info
from pyicechunk._logging import initialize_logs, set_logs_filter
from pyicechunk._version import __version__
from pyicechunk.attribution import Attribution, user_agent
from pyicechunk.config import (
    AnyObjectStoreConfig,
    CachingConfig,
    ChecksumAlgorithm,
    CompressionAlgorithm,
    CompressionConfig,
    ManifestConfig,
    ManifestPreloadCondition,
    ManifestPreloadConfig,
    ManifestSplitCondition,
    ManifestSplitDimCondition,
    ManifestSplittingConfig,
    ManifestVirtualChunkLocationCompressionConfig,
    ObjectStoreConfig,
    RepositoryConfig,
    S3Options,
    StorageConcurrencySettings,
    StorageRetriesSettings,
    StorageSettings,
    StorageTimeoutSettings,
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
from pyicechunk.credentials import (
    AnyAzureCredential,
    AnyAzureStaticCredential,
    AnyCredential,
    AnyGcsCredential,
    AnyGcsStaticCredential,
    AnyS3Credential,
    AzureCredentials,
    AzureRefreshableCredential,
    AzureStaticCredentials,
    Credentials,
    GcsBearerCredential,
    GcsCredentials,
    GcsStaticCredentials,
    S3Credentials,
    S3StaticCredentials,
    azure_anonymous_credentials,
    azure_credentials,
    azure_from_env_credentials,
    azure_refreshable_credentials,
    azure_static_credentials,
    containers_credentials,
    gcs_credentials,
    gcs_from_env_credentials,
    gcs_refreshable_credentials,
    gcs_static_credentials,
    s3_anonymous_credentials,
    s3_credentials,
    s3_from_env_credentials,
    s3_refreshable_credentials,
    s3_static_credentials,
)
from pyicechunk.exceptions import (
    AlreadyExistsError,
    ConflictError,
    ErrorKind,
    FormatError,
    IcechunkError,
    InternalError,
    InvalidInputError,
    NodeNotFoundError,
    NotFoundError,
    ReadOnlyError,
    RebaseFailedError,
    RefNotFoundError,
    RepositoryNotFoundError,
    SessionStateError,
    SnapshotNotFoundError,
    StorageError,
)
from pyicechunk.graph import AncestryGraph

# icechunk 2 defines it at top level without listing it in ``__all__``; so do we.
from pyicechunk.migration import upgrade_icechunk_repository as upgrade_icechunk_repository
from pyicechunk.migration import (
    upgrade_icechunk_repository_async as upgrade_icechunk_repository_async,
)
from pyicechunk.ops_log import Update, UpdateType
from pyicechunk.repo_status import FeatureFlag, RepoAvailability, RepoStatus
from pyicechunk.repository import Repository
from pyicechunk.session import ForkSession, Session
from pyicechunk.session.mode import SessionMode
from pyicechunk.spec_versions import SpecVersion
from pyicechunk.storage import (
    Storage,
    azure_storage,
    gcs_storage,
    hf_storage,
    http_storage,
    in_memory_storage,
    local_filesystem_storage,
    r2_storage,
    redirect_storage,
    s3_storage,
    tigris_storage,
)
from pyicechunk.store import IcechunkStore
from pyicechunk.telemetry import shutdown_telemetry
from pyicechunk.types import (
    ChunkType,
    CommitMethod,
    Diff,
    GCSummary,
    ManifestFileInfo,
    SnapshotInfo,
)
from pyicechunk.virtual import VirtualChunkSpec


def spec_version() -> SpecVersion:
    """The newest Icechunk on-disk format version this package reads and writes (the default
    of :meth:`Repository.create`)."""
    return SpecVersion.current()


def supported_spec_versions() -> list[SpecVersion]:
    """Every on-disk format version this package reads and writes, newest first."""
    return [SpecVersion.v2, SpecVersion.v1]


__all__ = [
    "AnyAzureCredential",
    "AnyAzureStaticCredential",
    "AnyCredential",
    "AnyGcsCredential",
    "AnyGcsStaticCredential",
    "AnyObjectStoreConfig",
    "AnyS3Credential",
    "AzureCredentials",
    "AzureStaticCredentials",
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
    "Credentials",
    "Diff",
    "ForkSession",
    "GCSummary",
    "GcsBearerCredential",
    "GcsCredentials",
    "GcsStaticCredentials",
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
    "S3Credentials",
    "S3Options",
    "S3StaticCredentials",
    "Session",
    "SessionMode",
    "SnapshotInfo",
    "Storage",
    "StorageConcurrencySettings",
    "StorageRetriesSettings",
    "StorageSettings",
    "VersionSelection",
    "VirtualChunkContainer",
    "VirtualChunkSpec",
    "azure_credentials",
    "azure_from_env_credentials",
    "azure_static_credentials",
    "azure_storage",
    "containers_credentials",
    "gcs_credentials",
    "gcs_from_env_credentials",
    "gcs_refreshable_credentials",
    "gcs_static_credentials",
    "gcs_storage",
    "gcs_store",
    "http_store",
    "in_memory_storage",
    "initialize_logs",
    "local_filesystem_storage",
    "local_filesystem_store",
    "print_debug_info",
    "r2_storage",
    "s3_anonymous_credentials",
    "s3_credentials",
    "s3_from_env_credentials",
    "s3_refreshable_credentials",
    "s3_static_credentials",
    "s3_storage",
    "s3_store",
    "set_logs_filter",
    "spec_version",
    "tigris_storage",
    "__version__",
    "AlreadyExistsError",
    "ErrorKind",
    "FormatError",
    "InternalError",
    "InvalidInputError",
    "NodeNotFoundError",
    "NotFoundError",
    "ReadOnlyError",
    "RefNotFoundError",
    "RepositoryNotFoundError",
    "SessionStateError",
    "SnapshotNotFoundError",
    "StorageError",
    "FeatureFlag",
    "RepoAvailability",
    "RepoStatus",
    "Update",
    "UpdateType",
    "AncestryGraph",
    "Attribution",
    "ChecksumAlgorithm",
    "CommitMethod",
    "ManifestVirtualChunkLocationCompressionConfig",
    "SpecVersion",
    "StorageTimeoutSettings",
    "shutdown_telemetry",
    "user_agent",
    "hf_storage",
    "AzureRefreshableCredential",
    "azure_anonymous_credentials",
    "azure_refreshable_credentials",
    "http_storage",
    "redirect_storage",
]

initialize_logs()

# Modules that are loaded on first use but that opening any repository needs: the local
# filesystem backend (stdlib-only and the most used; the cloud backends, which need obstore, are
# not preloaded) and the repository states of both spec versions (spec 1's brings the
# config.yaml codec; finding out which version a repository has needs both). Loading them with
# the package spares the first Repository.open the import.
from pyicechunk.repo_state import spec1 as _spec1_state  # noqa: E402, F401
from pyicechunk.repo_state import spec2 as _spec2_state  # noqa: E402, F401
from pyicechunk.storage import local as _local_backend  # noqa: E402, F401
