"""`import pyicechunk as icechunk` exposes the same top-level names as icechunk 1.1.21."""

from __future__ import annotations

import icechunk

import pyicechunk


# Names icechunk 2.3.0 added to ``__all__`` (pyicechunk follows 2.x and keeps every 1.1 name).
ADDED_IN_2 = set(
    "AlreadyExistsError AncestryGraph Attribution AzureRefreshableCredential ChecksumAlgorithm "
    "CommitMethod ErrorKind FeatureFlag FormatError InternalError InvalidInputError "
    "ManifestVirtualChunkLocationCompressionConfig NodeNotFoundError NotFoundError "
    "ReadOnlyError RefNotFoundError RepoAvailability RepoStatus RepositoryNotFoundError "
    "SessionMode SessionStateError SnapshotNotFoundError SpecVersion StorageError "
    "StorageTimeoutSettings Update UpdateType azure_anonymous_credentials "
    "azure_refreshable_credentials hf_storage http_storage redirect_storage "
    "shutdown_telemetry user_agent".split()
)


def test_same_public_names_as_the_reference() -> None:
    assert set(icechunk.__all__) <= set(pyicechunk.__all__)
    assert set(pyicechunk.__all__) - set(icechunk.__all__) <= ADDED_IN_2
    for name in pyicechunk.__all__:
        assert getattr(pyicechunk, name) is not None, name


def test_submodules_exist() -> None:
    import pyicechunk.credentials
    import pyicechunk.dask
    import pyicechunk.distributed
    import pyicechunk.storage
    import pyicechunk.xarray

    assert callable(pyicechunk.xarray.to_icechunk)
    assert callable(pyicechunk.dask.store_dask)
    assert callable(pyicechunk.distributed.merge_sessions)
    assert pyicechunk.storage.s3_storage is pyicechunk.s3_storage
    assert pyicechunk.credentials.s3_credentials is pyicechunk.s3_credentials
    assert icechunk.spec_version() == 1
    assert pyicechunk.spec_version() == 2  # as icechunk 2.x
