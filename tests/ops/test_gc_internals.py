"""The bulk id decoding and the fetch limits of garbage collection."""

from __future__ import annotations

import datetime as dt
import importlib
import os
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import zarr

from pyicechunk.format.ids import decode_id, encode_id
from pyicechunk.ops.gc import decode_object_names


def test_decode_object_names_matches_decode_id() -> None:
    ids = [os.urandom(12) for _ in range(500)] + [
        bytes(12),
        b"\x01" + bytes(11),
        bytes(11) + b"\xff",
    ]
    names = [encode_id(i) for i in ids]
    # Lenient forms the scalar decoder accepts, and names that are not ids at all.
    extra = [
        names[0].lower(),
        names[1].replace("1", "I"),
        "0" * 19,
        "0" * 21,
        "U" * 20,
        "é" * 20,
        "",
    ]
    decoded, valid = decode_object_names(names + extra)
    for k, name in enumerate(names + extra):
        try:
            expected = decode_id(name, 12)
        except ValueError:
            assert not valid[k], name
            continue
        assert valid[k], name
        assert decoded[k].ljust(12, b"\0") == expected
    assert decode_object_names([])[0].shape == (0,)


@pytest.mark.parametrize("module", ["icechunk", "pyicechunk"])
def test_gc_with_tight_fetch_limits(module: str, tmp_path: Path) -> None:
    ic: ModuleType = importlib.import_module(module)
    repo = ic.Repository.create(
        ic.local_filesystem_storage(str(tmp_path)),
        ic.RepositoryConfig(inline_chunk_threshold_bytes=0),
    )
    ids = []
    for i in range(4):
        session = repo.writable_session("main")
        if i == 0:
            for name in ("p", "q", "r"):
                zarr.create_array(session.store, name=name, shape=(6,), chunks=(2,), dtype="i4")
        for name in ("p", "q", "r"):
            zarr.open_array(session.store, path=name)[:] = np.arange(6) + i + 1
        ids.append(session.commit(f"c{i}"))
    repo.expire_snapshots(repo.lookup_snapshot(ids[-1]).written_at)
    now = dt.datetime.now(dt.UTC)
    loose = repo.garbage_collect(now, dry_run=True)
    tight = repo.garbage_collect(
        now, dry_run=True, max_compressed_manifest_mem_bytes=1, max_concurrent_manifest_fetches=1
    )
    assert tight == loose
    assert (loose.chunks_deleted, loose.manifests_deleted, loose.snapshots_deleted) == (27, 9, 3)
