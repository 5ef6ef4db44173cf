"""Virtual chunks on an s3:// container served by the moto test server, for both implementations."""

from __future__ import annotations

import datetime as dt
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import zarr


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, s3_server: Any) -> None:
    """Credentials from the environment, as an authorization without credentials implies."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_access_key)
    monkeypatch.setenv("AWS_REGION", s3_server.region)


def test_virtual_chunks_on_s3(ic: ModuleType, s3_server: Any, s3_bucket: str, s3_env: None) -> None:
    client = s3_server.client()
    values = np.arange(1000, 1032, dtype="<i4")
    client.put_object(Bucket=s3_bucket, Key="dir/data.bin", Body=values.tobytes())
    etag = client.head_object(Bucket=s3_bucket, Key="dir/data.bin")["ETag"]
    prefix = f"s3://{s3_bucket}/"
    config = ic.RepositoryConfig.default()
    store_config = ic.s3_store(
        region=s3_server.region,
        endpoint_url=s3_server.endpoint_url,
        allow_http=True,
        force_path_style=True,
        s3_compatible=True,
    )
    config.set_virtual_chunk_container(ic.VirtualChunkContainer(prefix, store_config))
    repo = ic.Repository.create(
        ic.in_memory_storage(), config, authorize_virtual_chunk_access={prefix: None}
    )
    s = repo.writable_session("main")
    arr = zarr.create_array(
        s.store, name="a", shape=(32,), chunks=(8,), dtype="<i4", compressors=None
    )
    location = f"s3://{s3_bucket}//dir/data.bin"
    s.store.set_virtual_ref("a/c/0", location, offset=96, length=32, checksum=etag)
    s.store.set_virtual_ref("a/c/1", location, offset=0, length=32)
    s.store.set_virtual_ref(
        "a/c/2", location, offset=32, length=32, checksum=dt.datetime(2001, 1, 1, tzinfo=dt.UTC)
    )
    s.store.set_virtual_ref("a/c/3", f"s3://{s3_bucket}/dir/missing.bin", offset=0, length=32)
    np.testing.assert_array_equal(arr[:16], np.concatenate([values[24:], values[:8]]))
    with pytest.raises(ic.IcechunkError, match="the checksum of the object owning"):
        arr[16:24]
    with pytest.raises(ic.IcechunkError, match="error fetching virtual reference"):
        arr[24:]
    s.commit("virtual")
    assert s.all_virtual_chunk_locations() == [f"s3://{s3_bucket}/dir/data.bin"] * 3 + [
        f"s3://{s3_bucket}/dir/missing.bin"
    ]
    client.put_object(Bucket=s3_bucket, Key="dir/data.bin", Body=values[::-1].tobytes())
    ro = zarr.open_array(repo.readonly_session("main").store, path="a", mode="r")
    with pytest.raises(ic.IcechunkError, match="the checksum of the object owning"):
        ro[:8]
    np.testing.assert_array_equal(ro[8:16], values[::-1][:8])
