"""Virtual refs that name their container (``vcc://<name>/<path>``, FORMAT-V2 §8.3), beside
icechunk 2.3.0: stored verbatim, resolved against the named container when read."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from oracle import Both, equal, raises

SETUP = """
prefix = f"file://{directory}/"
config = icechunk.RepositoryConfig.default()
config.set_virtual_chunk_container(
    icechunk.VirtualChunkContainer(prefix, icechunk.local_filesystem_store(directory), name="here")
)
access = getattr(getattr(icechunk, "credentials", None), "LocalFileSystemAccess", None)
repo = icechunk.Repository.create(
    make_storage(where), config, authorize_virtual_chunk_access={prefix: access}, spec_version=2
)
s = repo.writable_session("main")
a = zarr.create_array(s.store, name="a", shape=(8,), chunks=(4,), dtype="<i4", compressors=None)
s.store.set_virtual_ref("a/c/0", "vcc://here/values.bin", offset=16, length=16)
s.store.set_virtual_ref("a/c/1", f"file://{directory}/values.bin", offset=0, length=16)
s.commit("named")
repo = icechunk.Repository.open(
    make_storage(where), authorize_virtual_chunk_access={prefix: access}
)
r = repo.readonly_session("main")
(zarr.open_array(r.store, path="a", mode="r")[:], r.all_virtual_chunk_locations())
"""


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    (tmp_path / "values.bin").write_bytes(np.arange(8, dtype="<i4").tobytes())
    return tmp_path


def test_a_named_location_reads_from_its_container(
    both: Both, directory: Path, storage_spec: Callable[..., dict[str, Any]]
) -> None:
    ours = both.ours.run(SETUP, where=storage_spec("local"), directory=str(directory))
    theirs = both.reference.run(SETUP, where=storage_spec("local"), directory=str(directory))
    assert equal(ours, theirs), (ours, theirs)
    data, locations = ours
    np.testing.assert_array_equal(data, np.array([4, 5, 6, 7, 0, 1, 2, 3], dtype="<i4"))
    # Listed resolved, as the reference lists them.
    assert locations == [(directory / "values.bin").as_uri()] * 2


def test_a_location_naming_no_container_is_refused(
    both: Both, directory: Path, storage_spec: Callable[..., dict[str, Any]]
) -> None:
    for impl in (both.ours, both.reference):
        impl.run(SETUP, where=storage_spec("local"), directory=str(directory))
        with raises("IcechunkError", kind="no-container-for-virtual-chunk"):
            impl.run(
                """
s = repo.writable_session("main")
s.store.set_virtual_ref("a/c/1", "vcc://nope/values.bin", offset=0, length=16)
"""
            )
