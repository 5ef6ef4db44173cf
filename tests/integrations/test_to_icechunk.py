"""to_icechunk against real repositories, with numpy data and with dask data (threaded)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dask
import numpy as np
import pytest
import xarray as xr
import zarr

import pyicechunk as ic
from pyicechunk.xarray import _XarrayDatasetWriter, to_icechunk


@pytest.fixture(autouse=True)
def _threaded() -> Iterator[None]:
    with dask.config.set(scheduler="threads"):
        yield


@pytest.fixture
def repo() -> ic.Repository:
    return ic.Repository.create(ic.in_memory_storage())


def make_ds(start: int = 0, n: int = 12, seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    return xr.Dataset(
        {
            "temp": (("time", "x"), rng.random((n, 8))),
            "flag": (("time",), rng.integers(0, 100, n).astype("int32")),
        },
        coords={"time": np.arange(start, start + n), "x": np.arange(8) * 1.5},
        attrs={"title": "test"},
    )


def read(session: ic.Session, group: str | None = None) -> xr.Dataset:
    return xr.open_zarr(session.store, group=group, consolidated=False).load()


def commit_one(repo: ic.Repository, obj: Any, **kwargs: Any) -> str:
    session = repo.writable_session("main")
    to_icechunk(obj, session, **kwargs)
    return session.commit("write")


@pytest.mark.parametrize("chunked", [False, True], ids=["numpy", "dask"])
def test_roundtrip_and_append(repo: ic.Repository, chunked: bool) -> None:
    first, second = make_ds(0, 12, seed=1), make_ds(12, 6, seed=2)
    if chunked:
        first, second = first.chunk({"time": 3}), second.chunk({"time": 3})
    encoding = {"temp": {"chunks": (3, 8)}, "flag": {"chunks": (3,)}}
    commit_one(repo, first, encoding=encoding)
    session = repo.writable_session("main")
    to_icechunk(second, session, append_dim="time")
    assert session.has_uncommitted_changes
    session.commit("append")
    got = read(repo.readonly_session("main"))
    xr.testing.assert_identical(got, xr.concat([first, second], "time").compute())
    assert len(list(repo.ancestry(branch="main"))) == 3


def test_dask_data_is_written_through_fork_and_merged(repo: ic.Repository) -> None:
    ds = make_ds().chunk({"time": 2})
    session = repo.writable_session("main")
    to_icechunk(ds, session, encoding={"temp": {"chunks": (2, 8)}}, split_every=2)
    # The merged changes are visible in the session itself before the commit.
    xr.testing.assert_identical(read(session), ds.compute())
    arr = zarr.open_array(session.store, path="temp", mode="r")
    assert arr.nchunks_initialized == 6


def test_mode_w_minus_refuses_existing_and_w_overwrites(repo: ic.Repository) -> None:
    commit_one(repo, make_ds(seed=1))
    session = repo.writable_session("main")
    with pytest.raises(FileExistsError, match="already contains data"):
        to_icechunk(make_ds(seed=2), session)
    replacement = make_ds(0, 5, seed=3)
    to_icechunk(replacement, session, mode="w")
    session.commit("overwrite")
    xr.testing.assert_identical(read(repo.readonly_session("main")), replacement)


def test_mode_a_adds_variable(repo: ic.Repository) -> None:
    ds = make_ds()
    commit_one(repo, ds)
    extra = xr.Dataset({"extra": (("time",), np.arange(12.0))}, coords={"time": ds.time})
    commit_one(repo, extra.chunk({"time": 4}), mode="a")
    got = read(repo.readonly_session("main"))
    np.testing.assert_array_equal(got["extra"].values, np.arange(12.0))
    # mode "a" replaces the group attributes with those of the new dataset (xarray semantics)
    xr.testing.assert_equal(got[["temp", "flag"]], ds)
    assert got.attrs == {}


@pytest.mark.parametrize("chunked", [False, True], ids=["numpy", "dask"])
def test_region_write_r_plus(repo: ic.Repository, chunked: bool) -> None:
    ds = make_ds()
    commit_one(repo, ds, encoding={"temp": {"chunks": (3, 8)}, "flag": {"chunks": (3,)}})
    patch = ds.isel(time=slice(3, 9)).drop_vars("x")
    patch = patch.assign(temp=patch.temp * 0 - 7.0, flag=patch.flag * 0 + 5)
    if chunked:
        patch = patch.chunk({"time": 3})
    session = repo.writable_session("main")
    to_icechunk(patch.drop_vars("time"), session, region={"time": slice(3, 9)})
    session.commit("region")
    got = read(repo.readonly_session("main"))
    expected = ds.copy(deep=True)
    expected["temp"][3:9] = -7.0
    expected["flag"][3:9] = 5
    xr.testing.assert_identical(got, expected)


def test_region_auto(repo: ic.Repository) -> None:
    ds = make_ds()
    commit_one(repo, ds, encoding={"temp": {"chunks": (3, 8)}, "flag": {"chunks": (3,)}})
    patch = ds.isel(time=slice(6, 12)).copy(deep=True)
    patch["temp"][:] = 1.0
    session = repo.writable_session("main")
    to_icechunk(patch[["temp"]].drop_vars("x"), session, region="auto")
    got = read(session)
    assert (got.temp.values[6:] == 1.0).all()
    np.testing.assert_array_equal(got.temp.values[:6], ds.temp.values[:6])


def test_mode_r_plus_refuses_shape_change(repo: ic.Repository) -> None:
    commit_one(repo, make_ds())
    session = repo.writable_session("main")
    with pytest.raises(ValueError):
        to_icechunk(make_ds(0, 20), session, mode="r+")


APPEND_MESSAGE = "cannot set append_dim unless mode='a' or mode=None"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "w", "append_dim": "time"}, APPEND_MESSAGE),
        ({"mode": "r+", "append_dim": "time"}, APPEND_MESSAGE),
        (
            {"mode": "w", "region": {"time": slice(0, 2)}},
            "cannot set region unless mode='a', mode='a-', mode='r+' or mode=None",
        ),
        (
            {"mode": "r"},
            "The only supported options for mode are 'w', 'w-', 'a', 'a-', and 'r+', but mode='r'",
        ),
    ],
)
def test_mode_validation_messages(
    repo: ic.Repository, kwargs: dict[str, Any], message: str
) -> None:
    session = repo.writable_session("main")
    with pytest.raises(ValueError) as info:
        to_icechunk(make_ds(), session, **kwargs)
    assert str(info.value) == message
    assert not session.has_uncommitted_changes


def test_consolidated_true_is_refused(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    with pytest.raises(ValueError, match="consolidat"):
        to_icechunk(make_ds(), session, consolidated=True)
    to_icechunk(make_ds(), session, consolidated=False)


def test_dirty_session_rule(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    to_icechunk(make_ds(), session, group="eager")
    # numpy data may be written into a session with uncommitted changes ...
    to_icechunk(make_ds(seed=5), session, group="eager2")
    # ... dask data may not.
    with pytest.raises(ValueError) as info:
        to_icechunk(make_ds().chunk({"time": 4}), session, group="lazy")
    assert str(info.value) == (
        "Calling `to_icechunk` is not allowed on a Session with uncommitted changes. "
        "Please commit first."
    )
    session.commit("eager")
    session = repo.writable_session("main")
    to_icechunk(make_ds().chunk({"time": 4}), session, group="lazy")
    session.commit("lazy")
    ro = repo.readonly_session("main")
    assert set(zarr.open_group(ro.store, mode="r").group_keys()) == {"eager", "eager2", "lazy"}


def test_groups_and_mixed_eager_lazy_variables(repo: ic.Repository) -> None:
    ds = make_ds()
    mixed = ds.assign(temp=ds.temp.chunk({"time": 4}))  # flag and coords stay numpy
    commit_one(repo, mixed, group="a/b")
    xr.testing.assert_identical(read(repo.readonly_session("main"), group="a/b"), ds)


@pytest.mark.parametrize("chunked", [False, True], ids=["numpy", "dask"])
def test_dataarray_names(repo: ic.Repository, chunked: bool) -> None:
    da = make_ds().temp
    if chunked:
        da = da.chunk({"time": 6})
    commit_one(repo, da, group="named")
    commit_one(repo, da.rename(None), group="unnamed")
    commit_one(repo, da.rename("time"), group="clash")
    ro = repo.readonly_session("main")
    named = read(ro, "named")
    assert list(named.data_vars) == ["temp"]
    unnamed = read(ro, "unnamed")
    assert list(unnamed.data_vars) == ["__xarray_dataarray_variable__"]
    assert "__xarray_dataarray_name__" not in unnamed.attrs
    clash = read(ro, "clash")
    assert list(clash.data_vars) == ["__xarray_dataarray_variable__"]
    assert clash.attrs["__xarray_dataarray_name__"] == "time"
    np.testing.assert_array_equal(clash["__xarray_dataarray_variable__"].values, da.values)
    # xarray's own reader restores the name from the attribute
    back = xr.open_dataarray(ro.store, engine="zarr", group="clash", consolidated=False)
    assert back.name == "time"


def test_encoding_is_applied(repo: ic.Repository) -> None:
    ds = make_ds()
    encoding = {
        "temp": {"chunks": (4, 4), "dtype": "float32", "compressors": [zarr.codecs.ZstdCodec()]},
        "flag": {"chunks": (2,)},
    }
    commit_one(repo, ds.chunk({"time": 4, "x": 4}), encoding=encoding)
    ro = repo.readonly_session("main")
    temp = zarr.open_array(ro.store, path="temp", mode="r")
    assert temp.chunks == (4, 4)
    assert temp.dtype == np.float32
    assert [type(c).__name__ for c in temp.compressors] == ["ZstdCodec"]
    assert zarr.open_array(ro.store, path="flag", mode="r").chunks == (2,)
    np.testing.assert_allclose(read(ro).temp.values, ds.temp.values.astype("float32"))


def test_encoding_for_existing_variable_is_refused(repo: ic.Repository) -> None:
    commit_one(repo, make_ds())
    session = repo.writable_session("main")
    with pytest.raises(ValueError, match="already exists, but encoding was provided"):
        to_icechunk(
            make_ds(12, 3), session, append_dim="time", encoding={"temp": {"chunks": (1, 8)}}
        )


@pytest.mark.parametrize("chunked", [False, True], ids=["numpy", "dask"])
@pytest.mark.parametrize("write_empty", [True, False])
def test_write_empty_chunks_from_encoding(
    repo: ic.Repository, chunked: bool, write_empty: bool
) -> None:
    values = np.zeros((8, 4))
    values[0:2] = 3.0  # one of the four chunks holds data, the others equal the fill value
    ds = xr.Dataset({"v": (("y", "x"), values)})
    if chunked:
        ds = ds.chunk({"y": 2})
    encoding = {"v": {"chunks": (2, 4), "fill_value": 0.0, "write_empty_chunks": write_empty}}
    commit_one(repo, ds, encoding=encoding)
    ro = repo.readonly_session("main")
    arr = zarr.open_array(ro.store, path="v", mode="r")
    assert arr.nchunks_initialized == (4 if write_empty else 1)
    np.testing.assert_array_equal(arr[:], values)


def test_writer_refuses_non_icechunk_store() -> None:
    store = zarr.storage.MemoryStore()
    with pytest.raises(ValueError) as info:
        _XarrayDatasetWriter(make_ds(), store=store)  # type: ignore[arg-type]
    assert str(info.value) == (
        f"Please pass in an icechunk.Session. Received {type(store)!r} instead."
    )


def test_writer_steps_must_run_in_order(repo: ic.Repository) -> None:
    writer = _XarrayDatasetWriter(make_ds(), store=repo.writable_session("main").store)
    with pytest.raises(ValueError, match="write_metadata"):
        writer.write_eager()
    with pytest.raises(ValueError, match="write_metadata"):
        writer.write_lazy()


def test_chunkmanager_store_kwargs_reach_dask(repo: ic.Repository) -> None:
    ds = make_ds().chunk({"time": 3})
    session = repo.writable_session("main")
    # an unknown scheduler name fails inside dask, which shows the kwargs are passed through
    with pytest.raises(ValueError, match="Expected one of"):
        to_icechunk(ds, session, chunkmanager_store_kwargs={"scheduler": "no-such-scheduler"})
    session = repo.writable_session("main")
    to_icechunk(ds, session, chunkmanager_store_kwargs={"scheduler": "sync"})
    xr.testing.assert_identical(read(session), ds.compute())


def test_mode_a_minus_appends_only_variables_with_append_dim(repo: ic.Repository) -> None:
    first = make_ds(0, 6, seed=1).assign(static=(("x",), np.arange(8.0)))
    commit_one(repo, first, encoding={"temp": {"chunks": (3, 8)}, "flag": {"chunks": (3,)}})
    second = make_ds(6, 6, seed=2).assign(static=(("x",), np.full(8, -1.0)))
    commit_one(repo, second.chunk({"time": 3}), mode="a-", append_dim="time")
    got = read(repo.readonly_session("main"))
    # "a-" leaves variables without the append dimension alone; "a" would overwrite them
    np.testing.assert_array_equal(got.static.values, np.arange(8.0))
    appended = ["temp", "flag"]
    expected = xr.concat([first[appended], second[appended]], "time")
    xr.testing.assert_identical(got[appended], expected)


def test_safe_chunks_and_align_chunks(repo: ic.Repository) -> None:
    first = make_ds(0, 6, seed=1)
    commit_one(repo, first, encoding={"temp": {"chunks": (3, 8)}, "flag": {"chunks": (3,)}})
    second = make_ds(6, 6, seed=2).chunk({"time": 2})  # dask chunks straddle zarr chunks
    session = repo.writable_session("main")
    with pytest.raises(ValueError, match="would overlap multiple Dask chunks"):
        to_icechunk(second, session, append_dim="time")
    assert not session.has_uncommitted_changes
    to_icechunk(second, session, append_dim="time", align_chunks=True)
    session.commit("aligned")
    xr.testing.assert_identical(
        read(repo.readonly_session("main")), xr.concat([first, second], "time").compute()
    )
