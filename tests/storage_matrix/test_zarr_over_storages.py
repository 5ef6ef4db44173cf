"""zarr end to end on each storage kind: several dtypes written, committed, reopened, read."""

from __future__ import annotations

from typing import Any

import numpy as np
import zarr

import pyicechunk

DTYPES = ["int8", "uint16", "int64", "float32", "float64", "complex128", "bool", "datetime64[s]"]


def _values(dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    n = int(np.prod(shape))
    raw = np.arange(n) * 7 % 251 - 100
    if dtype == "bool":
        return (raw % 3 == 0).reshape(shape)
    if dtype.startswith("datetime64"):
        return (raw + 1_700_000_000).astype(dtype).reshape(shape)
    if dtype.startswith("complex"):
        return (raw + 1j * raw[::-1]).astype(dtype).reshape(shape)
    return (
        raw.astype(dtype).reshape(shape)
        if not dtype.startswith("u")
        else (np.abs(raw).astype(dtype).reshape(shape))
    )


def test_dtypes_round_trip_through_commit_and_reopen(repo: Any) -> None:
    session = repo.writable_session("main")
    root = zarr.open_group(session.store, mode="w", attributes={"kind": "matrix"})
    shape, chunks = (10, 7), (4, 3)  # partial edge chunks in both dimensions
    for dtype in DTYPES:
        arr = root.create_array(
            dtype.replace("[", "_").rstrip("]"), shape=shape, chunks=chunks, dtype=dtype
        )
        arr[:] = _values(dtype, shape)
    first = session.commit("all dtypes")

    session = repo.writable_session("main")
    root = zarr.open_group(session.store, mode="r+")
    root["float64"][2:5, 1:6] = -1.5  # an update across chunk boundaries
    second = session.commit("update")

    again = pyicechunk.Repository.open(repo.storage)
    for snapshot, changed in [(first, False), (second, True)]:
        group = zarr.open_group(again.readonly_session(snapshot_id=snapshot).store, mode="r")
        assert group.attrs["kind"] == "matrix"
        for dtype in DTYPES:
            expected = _values(dtype, shape)
            if changed and dtype == "float64":
                expected[2:5, 1:6] = -1.5
            got = group[dtype.replace("[", "_").rstrip("]")][:]
            assert got.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(got, expected)
    diff = again.diff(from_snapshot_id=first, to_snapshot_id=second)
    assert set(diff.updated_chunks) == {"/float64"}
