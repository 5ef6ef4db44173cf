"""Virtual refs written by one implementation and read by the other (file:// container)."""

from __future__ import annotations

import datetime as dt
import importlib
from pathlib import Path

import numpy as np
import obstore
import pytest
import zarr
from obstore.store import LocalStore
from virtual_helpers import DataFile, file_config

PAIRS = [("pyicechunk", "icechunk"), ("icechunk", "pyicechunk")]


@pytest.mark.parametrize(("writer_name", "reader_name"), PAIRS)
def test_virtual_refs_cross_implementation(
    writer_name: str, reader_name: str, data_file: DataFile, tmp_path: Path
) -> None:
    writer = importlib.import_module(writer_name)
    reader = importlib.import_module(reader_name)
    repo_path = str(tmp_path / "repo")
    etag = obstore.head(LocalStore(), str(data_file.path).lstrip("/"))["e_tag"].strip('"')
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    past = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)

    repo = writer.Repository.create(
        writer.local_filesystem_storage(repo_path),
        file_config(writer, data_file.prefix, data_file.path.parent),
        # spec 1, the format both implementations read
        **({"spec_version": 1} if writer_name == "pyicechunk" else {}),
    )
    s = repo.writable_session("main")
    zarr.create_array(
        s.store, name="a", shape=(16,), chunks=(4,), dtype="<i4", compressors=None, fill_value=-1
    )
    location = data_file.url.replace("/data/", "//data/")
    assert (
        s.store.set_virtual_refs(
            "a",
            [
                writer.VirtualChunkSpec([0], location, 48, 16, etag_checksum=etag),
                writer.VirtualChunkSpec([1], location, 0, 16, last_updated_at_checksum=future),
                writer.VirtualChunkSpec([2], location, 16, 16, last_updated_at_checksum=past),
            ],
        )
        is None
    )
    s.commit("virtual refs")

    opened = reader.Repository.open(
        reader.local_filesystem_storage(repo_path),
        authorize_virtual_chunk_access={data_file.prefix: None},
    )
    session = opened.readonly_session("main")
    assert session.all_virtual_chunk_locations() == [data_file.url] * 3
    assert session.chunk_type("/a", [0]) == reader.ChunkType.VIRTUAL
    arr = zarr.open_array(session.store, path="a", mode="r")
    np.testing.assert_array_equal(
        arr[:8], np.concatenate([data_file.values[12:], data_file.values[:4]])
    )
    np.testing.assert_array_equal(arr[12:], [-1] * 4)
    with pytest.raises(reader.IcechunkError, match="the checksum of the object owning"):
        arr[8:12]
    assert opened.chunk_storage_stats().virtual_bytes == 48
