"""Behaviours 32-36 of API-1.1 for virtual chunks, run against icechunk 1.1.21 and pyicechunk."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import zarr
from virtual_helpers import DataFile, file_config
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import default_buffer_prototype

from pyicechunk._sync import sync


def _raw_array(store: Any, name: str = "a", n: int = 4) -> Any:
    """An int32 array of ``n`` chunks of 4 values, stored without compression."""
    return zarr.create_array(
        store, name=name, shape=(4 * n,), chunks=(4,), dtype="<i4", compressors=None, fill_value=-1
    )


def _virtual_repo(ic: ModuleType, data: DataFile, *, authorize: bool = True) -> Any:
    storage = ic.in_memory_storage()
    config = file_config(ic, data.prefix, data.path.parent)
    access = {data.prefix: None} if authorize else None
    return ic.Repository.create(storage, config, authorize_virtual_chunk_access=access)


def _error(ic: ModuleType) -> type[Exception]:
    return ic.IcechunkError  # type: ignore[no-any-return]


# --- 32: virtual bytes -------------------------------------------------------------------------


def test_chunk_storage_stats_counts_virtual_bytes_once(ic: ModuleType) -> None:
    repo = ic.Repository.create(ic.in_memory_storage())
    assert repo.chunk_storage_stats().virtual_bytes == 0
    s = repo.writable_session("main")
    _raw_array(s.store, n=6)
    for i in range(4):
        s.store.set_virtual_ref(
            f"a/c/{i}", f"s3://bucket/f{i}.nc", offset=8, length=8, validate_container=False
        )
    # the same (location, offset, length) under another index is the same bytes
    s.store.set_virtual_ref(
        "a/c/4", "s3://bucket/f0.nc", offset=8, length=8, validate_container=False
    )
    s.commit("virtual")
    stats = repo.chunk_storage_stats()
    assert (stats.virtual_bytes, stats.native_bytes, stats.inlined_bytes) == (32, 0, 0)


# --- 33: chunk types ---------------------------------------------------------------------------


def test_chunk_type_virtual_after_set_virtual_ref(ic: ModuleType) -> None:
    repo = ic.Repository.create(ic.in_memory_storage())
    s = repo.writable_session("main")
    arr = zarr.create_array(
        s.store, name="a", shape=(4000,), chunks=(2000,), dtype="u1", compressors=None
    )
    arr[:2000] = np.random.default_rng(0).integers(0, 255, 2000)
    s.store.set_virtual_ref("a/c/1", "s3://b/x", offset=0, length=10, validate_container=False)
    assert s.chunk_type("/a", [0]) == ic.ChunkType.NATIVE
    assert s.chunk_type("/a", [1]) == ic.ChunkType.VIRTUAL
    s.commit("c")
    s2 = repo.readonly_session("main")
    assert s2.chunk_type("/a", [1]) == ic.ChunkType.VIRTUAL
    assert s2.chunk_type("/a", [7]) == ic.ChunkType.UNINITIALIZED
    w = repo.writable_session("main")
    w.store.set_virtual_ref("a/c/0", "s3://b/y", offset=0, length=3, validate_container=False)
    assert w.chunk_type("/a", [0]) == ic.ChunkType.VIRTUAL
    zarr.open_array(w.store, path="a")[2000:] = 0
    assert w.chunk_type("/a", [1]) != ic.ChunkType.VIRTUAL


# --- 34: setting refs and validation -----------------------------------------------------------


def test_set_virtual_ref_validates_container(ic: ModuleType) -> None:
    repo = ic.Repository.create(ic.in_memory_storage())
    s = repo.writable_session("main")
    _raw_array(s.store)
    with pytest.raises(
        _error(ic), match="invalid chunk location, no matching virtual chunk container"
    ):
        s.store.set_virtual_ref("a/c/0", "s3://bucket/file.nc", offset=0, length=8)
    assert s.chunk_type("/a", [0]) == ic.ChunkType.UNINITIALIZED
    s.store.set_virtual_ref(
        "a/c/0", "s3://bucket/file.nc", offset=0, length=8, validate_container=False
    )
    assert s.chunk_type("/a", [0]) == ic.ChunkType.VIRTUAL


def test_set_virtual_ref_errors(ic: ModuleType) -> None:
    repo = ic.Repository.create(ic.in_memory_storage())
    s = repo.writable_session("main")
    _raw_array(s.store)
    err = _error(ic)
    with pytest.raises(err, match=r"use \.set to modify metadata for key a/zarr\.json"):
        s.store.set_virtual_ref(
            "a/zarr.json", "s3://b/f", offset=0, length=8, validate_container=False
        )
    with pytest.raises(err, match='error parsing virtual ref URL: "not a url"'):
        s.store.set_virtual_ref("a/c/0", "not a url", offset=0, length=8, validate_container=False)
    with pytest.raises(err, match="invalid chunk index"):
        s.store.set_virtual_ref("a/c/9", "s3://b/f", offset=0, length=8, validate_container=False)
    s.commit("array")
    ro = repo.readonly_session("main")
    with pytest.raises(err, match="cannot write to read-only store"):
        ro.store.set_virtual_ref("a/c/0", "s3://b/f", offset=0, length=8, validate_container=False)


def test_set_virtual_refs_skips_unmatched(ic: ModuleType, data_file: DataFile) -> None:
    repo = _virtual_repo(ic, data_file)
    s = repo.writable_session("main")
    _raw_array(s.store)
    specs = [
        ic.VirtualChunkSpec([0], "s3://bucket/a.nc", 0, 16),
        ic.VirtualChunkSpec([1], "s3://bucket/b.nc", 0, 16),
        ic.VirtualChunkSpec([2], data_file.url, 0, 16),
    ]
    assert s.store.set_virtual_refs("a", specs) == [(0,), (1,)]
    assert [s.chunk_type("/a", [i]) for i in range(3)] == [
        ic.ChunkType.UNINITIALIZED,
        ic.ChunkType.UNINITIALIZED,
        ic.ChunkType.VIRTUAL,
    ]
    assert s.store.set_virtual_refs("/a", specs, validate_containers=False) is None
    assert s.chunk_type("/a", [0]) == ic.ChunkType.VIRTUAL
    with pytest.raises(_error(ic), match="invalid chunk index"):
        s.store.set_virtual_refs("a", [ic.VirtualChunkSpec([9], data_file.url, 0, 16)])


def test_location_normalisation_matches_reference() -> None:
    import icechunk

    import pyicechunk

    cases = [
        "s3://mybucket//other//file.nc",
        "s3://Bucket//a/./b/../c d/é?x=1#f",
        "file://localhost/tmp//x",
        "file:///tmp/a b",
        "HTTP://Host:8080/x/",
        "http:foo/bar",
        "s3://user@b:99/k",
        "s3://b/a%20b/%2e%2e/c",
        "s3://b/a//..//c",
        "s3://b/{x}`^|",
        "file:/tmp/x",
        "gs://b/x\\y",
        "http://h/x\\y",
        "s3://b/x/..",
        "az://c/p%41th",
        # rejected
        "not a url",
        "s3:bucket/x",
        "s3:///x",
        "s3://b",
        "s3://b c/x",
    ]
    results = []
    for mod in (icechunk, pyicechunk):
        repo = mod.Repository.create(mod.in_memory_storage())
        s = repo.writable_session("main")
        zarr.create_array(s.store, name="a", shape=(len(cases),), chunks=(1,), dtype="u1")
        failed = []
        for i, location in enumerate(cases):
            try:
                s.store.set_virtual_ref(
                    f"a/c/{i}", location, offset=0, length=1, validate_container=False
                )
            except mod.IcechunkError as e:
                failed.append((i, str(e).strip().removeprefix("x ").split(":")[0]))
        results.append((s.all_virtual_chunk_locations(), failed))
    assert results[0] == results[1]
    assert results[1][0][0] == "s3://mybucket/other/file.nc"  # FORMAT-V1 §5.2
    assert len(results[1][1]) == 5


def test_all_virtual_chunk_locations_sees_uncommitted_and_keeps_duplicates(ic: ModuleType) -> None:
    repo = ic.Repository.create(ic.in_memory_storage())
    s = repo.writable_session("main")
    _raw_array(s.store, n=5)
    for i, loc in enumerate(["s3://b/x", "s3://b/y", "s3://b/x"]):
        s.store.set_virtual_ref(f"a/c/{i}", loc, offset=4 * i, length=4, validate_container=False)
    s.commit("c")
    w = repo.writable_session("main")
    w.store.set_virtual_ref("a/c/3", "s3://b/z", offset=0, length=4, validate_container=False)
    w.store.set_virtual_ref("a/c/1", "s3://b/w", offset=0, length=4, validate_container=False)
    sync(w.store.delete("a/c/2"))
    got = w.all_virtual_chunk_locations()
    assert sorted(got) == ["s3://b/w", "s3://b/x", "s3://b/z"]
    assert repo.readonly_session("main").all_virtual_chunk_locations() == [
        "s3://b/x",
        "s3://b/y",
        "s3://b/x",
    ]


def test_virtual_chunk_spec(ic: ModuleType) -> None:
    when = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    spec = ic.VirtualChunkSpec([1, 2], "s3://b/x", 3, 4, None, when)
    assert (spec.index, spec.location, spec.offset, spec.length) == ([1, 2], "s3://b/x", 3, 4)
    assert (spec.etag_checksum, spec.last_updated_at_checksum) == (None, when)
    with pytest.raises(AttributeError):
        spec.offset = 5  # type: ignore[misc]
    with pytest.raises(OverflowError):
        ic.VirtualChunkSpec([-1], "s3://b/x", 0, 1)
    with pytest.raises(TypeError):
        ic.VirtualChunkSpec([0], 3, 0, 1)
    with pytest.raises(TypeError):
        ic.VirtualChunkSpec([0], "s3://b/x", 0, 1, None, dt.datetime(2024, 1, 1))


# --- 35: reading -------------------------------------------------------------------------------


def test_read_virtual_chunks_from_file_container(ic: ModuleType, data_file: DataFile) -> None:
    repo = _virtual_repo(ic, data_file)
    s = repo.writable_session("main")
    arr = _raw_array(s.store)
    s.store.set_virtual_refs(
        "a",
        [ic.VirtualChunkSpec([i], data_file.url, 16 * (3 - i), 16) for i in range(4)],
    )
    expected = data_file.values.reshape(4, 4)[::-1].ravel()
    np.testing.assert_array_equal(arr[:], expected)
    s.commit("refs")
    reopened = repo.reopen(authorize_virtual_chunk_access={data_file.prefix: None})
    arr2 = zarr.open_array(reopened.readonly_session("main").store, path="a", mode="r")
    np.testing.assert_array_equal(arr2[2:7], expected[2:7])


def test_byte_ranges_narrow_inside_the_virtual_chunk(ic: ModuleType, data_file: DataFile) -> None:
    repo = _virtual_repo(ic, data_file)
    s = repo.writable_session("main")
    _raw_array(s.store)
    s.store.set_virtual_ref("a/c/0", data_file.url, offset=8, length=20)
    raw = data_file.path.read_bytes()
    proto = default_buffer_prototype()

    async def get(rng: Any) -> bytes:
        buf = await s.store.get("a/c/0", proto, rng)
        return buf.to_bytes()

    assert sync(get(None)) == raw[8:28]
    assert sync(get(RangeByteRequest(2, 6))) == raw[10:14]
    assert sync(get(OffsetByteRequest(15))) == raw[23:28]
    assert sync(get(SuffixByteRequest(3))) == raw[25:28]


def test_reading_needs_authorization_and_container(
    ic: ModuleType, data_file: DataFile, tmp_path: Path
) -> None:
    storage = ic.local_filesystem_storage(str(tmp_path / "repo"))
    config = file_config(ic, data_file.prefix, data_file.path.parent)
    repo = ic.Repository.create(storage, config)
    s = repo.writable_session("main")
    arr = _raw_array(s.store)
    s.store.set_virtual_ref("a/c/0", data_file.url, offset=0, length=16)
    s.store.set_virtual_ref(
        "a/c/1", "file:///elsewhere/x.bin", offset=0, length=16, validate_container=False
    )
    err = _error(ic)
    # The reference wraps long messages (this one holds a tmp path) and prefixes "  | ".
    with pytest.raises(err, match=r"you\s+(?:\|\s+)?need\s+(?:\|\s+)?to\s+(?:\|\s+)?authorize"):
        arr[:4]
    s.commit("refs")
    authorized = ic.Repository.open(
        storage, authorize_virtual_chunk_access={data_file.prefix: None}
    )
    arr = zarr.open_array(authorized.readonly_session("main").store, path="a", mode="r")
    np.testing.assert_array_equal(arr[:4], data_file.values[:4])
    with pytest.raises(err, match="no virtual chunk container can handle the chunk location"):
        arr[4:8]
    assert authorized.authorized_virtual_container_prefixes == {data_file.prefix}


def test_checksums(ic: ModuleType, data_file: DataFile) -> None:
    import obstore
    from obstore.store import LocalStore

    etag = obstore.head(LocalStore(), str(data_file.path).lstrip("/"))["e_tag"].strip('"')
    repo = _virtual_repo(ic, data_file)
    s = repo.writable_session("main")
    arr = _raw_array(s.store)
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    past = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)
    s.store.set_virtual_ref("a/c/0", data_file.url, offset=0, length=16, checksum=future)
    s.store.set_virtual_ref("a/c/1", data_file.url, offset=16, length=16, checksum=etag)
    s.store.set_virtual_ref("a/c/2", data_file.url, offset=32, length=16, checksum=past)
    s.store.set_virtual_ref("a/c/3", data_file.url, offset=48, length=16, checksum='"nope"')
    np.testing.assert_array_equal(arr[:8], data_file.values[:8])
    err = _error(ic)
    msg = "the checksum of the object owning the virtual chunk has changed"
    with pytest.raises(err, match=msg):
        arr[8:12]
    with pytest.raises(err, match=msg):
        arr[12:16]
    # modifying the file changes its etag
    stat = data_file.path.stat()
    data_file.path.write_bytes(data_file.path.read_bytes()[::-1] + b"!")
    os.utime(data_file.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(err, match=msg):
        arr[4:8]


def test_missing_file_and_short_file(ic: ModuleType, data_file: DataFile) -> None:
    repo = _virtual_repo(ic, data_file)
    s = repo.writable_session("main")
    arr = _raw_array(s.store)
    s.store.set_virtual_ref("a/c/0", f"{data_file.prefix}missing.bin", offset=0, length=16)
    s.store.set_virtual_ref("a/c/1", data_file.url, offset=56, length=16)
    err = _error(ic)
    with pytest.raises(err, match="error fetching virtual reference"):
        arr[:4]
    with pytest.raises(err, match="not enough data"):
        arr[4:8]


# --- 36: container validation ------------------------------------------------------------------


def test_container_validation(ic: ModuleType) -> None:
    config = ic.RepositoryConfig.default()
    with pytest.raises(ValueError, match="url_prefix must end in a / character"):
        config.set_virtual_chunk_container(ic.VirtualChunkContainer("s3://bucket", ic.s3_store()))
    with pytest.raises(ValueError, match=r"Invalid url prefix scheme \(gs\)"):
        config.set_virtual_chunk_container(ic.VirtualChunkContainer("gs://bucket/", ic.s3_store()))


def test_longest_matching_container_wins(
    ic: ModuleType, data_file: DataFile, tmp_path: Path
) -> None:
    sub = data_file.path.parent / "sub"
    sub.mkdir()
    (sub / "v.bin").write_bytes(np.arange(4, dtype="<i4").tobytes())
    config = file_config(ic, f"file://{tmp_path}/", tmp_path)
    deep = f"file://{sub}/"
    config.set_virtual_chunk_container(
        ic.VirtualChunkContainer(deep, ic.local_filesystem_store(str(sub)))
    )
    # only the deeper prefix is authorized: the chunk below it must resolve to that container
    repo = ic.Repository.create(
        ic.in_memory_storage(), config, authorize_virtual_chunk_access={deep: None}
    )
    s = repo.writable_session("main")
    arr = _raw_array(s.store)
    s.store.set_virtual_ref("a/c/0", f"{deep}v.bin", offset=0, length=16)
    s.store.set_virtual_ref("a/c/1", data_file.url, offset=0, length=16)
    np.testing.assert_array_equal(arr[:4], np.arange(4))
    with pytest.raises(_error(ic), match=f"resolves to the url prefix file://{tmp_path}/,"):
        arr[4:8]
