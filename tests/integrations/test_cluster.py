"""Cooperative writes from a real two-process dask.distributed cluster to a local repository."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import xarray as xr
import zarr
from distributed import Client, LocalCluster

import pyicechunk as ic
from pyicechunk.dask import store_dask
from pyicechunk.xarray import to_icechunk


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with (
        LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            scheduler_kwargs={"dashboard": False},  # no HTTP server at all
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def local_repo(path: Path) -> ic.Repository:
    return ic.Repository.create(ic.local_filesystem_storage(str(path)))


def dataset(start: int, n_time: int, seed: int) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    return xr.Dataset(
        {
            "temp": (("time", "y", "x"), rng.random((n_time, 16, 16)).astype("float32")),
            "count": (("time", "y"), rng.integers(0, 1000, (n_time, 16)).astype("int64")),
        },
        coords={"time": np.arange(start, start + n_time), "y": np.arange(16), "x": np.arange(16)},
    )


def test_to_icechunk_on_cluster_then_append(client: Client, tmp_path: Path) -> None:
    repo = local_repo(tmp_path / "repo")
    chunks = {"time": 2, "y": 8, "x": 8}
    first = dataset(0, 32, seed=1).chunk(chunks)  # 16 x 2 x 2 = 64 temp chunks
    second = dataset(32, 16, seed=2).chunk(chunks)
    assert first.temp.data.npartitions >= 64

    session = repo.writable_session("main")
    to_icechunk(first, session)
    first_id = session.commit("initial write")
    session = repo.writable_session("main")
    to_icechunk(second, session, append_dim="time")
    second_id = session.commit("append")

    ancestry = [snap.id for snap in repo.ancestry(branch="main")]
    assert ancestry[:2] == [second_id, first_id]
    assert len(ancestry) == 3  # one commit each, on top of the initial snapshot

    expected = xr.concat([first, second], "time").compute()
    got = xr.open_zarr(repo.readonly_session("main").store, consolidated=False).compute()
    xr.testing.assert_identical(got, expected)
    after_first = xr.open_zarr(
        repo.readonly_session(snapshot_id=first_id).store, consolidated=False
    ).compute()
    xr.testing.assert_identical(after_first, first.compute())
    # a fresh Repository object (another reader) sees the same data
    reopened = ic.Repository.open(ic.local_filesystem_storage(str(tmp_path / "repo")))
    reread = xr.open_zarr(reopened.readonly_session("main").store, consolidated=False)
    np.testing.assert_array_equal(reread.temp.values, expected.temp.values)


def test_store_dask_on_cluster(client: Client, tmp_path: Path) -> None:
    repo = local_repo(tmp_path / "repo")
    source = da.random.default_rng(7).random((64, 32), chunks=(8, 4))  # 64 chunks
    values = source.compute()

    session = repo.writable_session("main")
    fork = session.fork()
    target = zarr.open_group(fork.store, mode="a").create_array(
        "a", shape=(64, 32), chunks=(8, 4), dtype="f8", fill_value=np.nan
    )
    merged = store_dask(sources=[source], targets=[target], split_every=4)
    # The tasks wrote into copies of the fork unpickled on the workers; the merged result is one
    # of those copies, not the fork living here.
    assert merged._core is not fork._core
    session.merge(merged)
    first_id = session.commit("store")

    session = repo.writable_session("main")
    fork = session.fork()
    target = zarr.open_array(fork.store, path="a")
    target.resize((96, 32))
    extra = da.full((32, 32), 5.0, chunks=(8, 8))
    merged = store_dask(sources=[extra], targets=[target], regions=[(slice(64, 96), slice(None))])
    session.merge(merged)
    second_id = session.commit("grow")

    assert [snap.id for snap in repo.ancestry(branch="main")][:2] == [second_id, first_id]
    ro = zarr.open_array(repo.readonly_session("main").store, path="a", mode="r")
    np.testing.assert_array_equal(ro[:64], values)
    np.testing.assert_array_equal(ro[64:], np.full((32, 32), 5.0))
    assert ro.nchunks_initialized == 96
