"""`import pyicechunk as icechunk` exposes the same top-level names as icechunk 1.1.21."""

from __future__ import annotations

import icechunk

import pyicechunk


def test_same_public_names_as_the_reference() -> None:
    assert set(pyicechunk.__all__) == set(icechunk.__all__)
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
