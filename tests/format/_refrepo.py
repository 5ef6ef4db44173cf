"""Test helpers: build repositories with the reference (icechunk 1.1.21) and read their files.

The snapshot reading here is deliberately minimal (node ids, paths, manifest ids, the
``manifest_files`` sizes) so that the manifest and transaction-log tests do not depend on the
snapshot codec.
"""

from __future__ import annotations

import asyncio
import datetime
import shutil
from pathlib import Path

import icechunk
import numpy as np
import zarr
import zstandard

from pyicechunk.format.flatbuf import ColumnReader
from pyicechunk.format.header import FileType, encode_object

HEADER = 39
VIRTUAL_REFS = {
    # key: (location, offset, length, checksum given, (etag, last_modified) stored)
    "virt/c/0": ("s3://bucket/x.nc", 10, 5, "etag-ü", ("etag-ü", 0)),
    "virt/c/1": (
        "s3://bucket/dir/y.nc",
        0,
        5,
        datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
        (None, 1704067200),
    ),
    "virt/c/3": ("s3://bucket/z.nc", 100, 7, None, (None, 0)),
}
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def crockford(raw: bytes) -> str:
    bits = "".join(f"{b:08b}" for b in raw)
    bits += "0" * (-len(bits) % 5)
    return "".join(_CROCKFORD[int(bits[i : i + 5], 2)] for i in range(0, len(bits), 5))


def uncrockford(text: str) -> bytes:
    bits = "".join(f"{_CROCKFORD.index(c):05b}" for c in text)
    n = len(bits) // 8
    return int(bits[: 8 * n], 2).to_bytes(n, "big")


def read_flat(path: Path) -> tuple[bytes, bytes]:
    """(header, decompressed flatbuffer) of a snapshot / manifest / tx-log file."""
    data = path.read_bytes()
    d = zstandard.ZstdDecompressor().decompressobj()
    return data[:HEADER], d.decompress(data[HEADER:])


def write_flat(path: Path, header: bytes, flat: bytes) -> int:
    """Store ``flat`` under ``header`` (kept as read) in pyicechunk's frame; return the size."""
    spec, file_type = header[36], FileType(header[37])
    data = header + encode_object(file_type, flat, spec_version=spec)[HEADER:]
    path.write_bytes(data)
    return len(data)


def snapshot_nodes(flat: bytes) -> dict[str, tuple[bytes, bool, list[bytes]]]:
    """path -> (node id, is array, manifest ids) of a snapshot flatbuffer."""
    r = ColumnReader(flat, "snapshot")
    root = r.tables(r.root(), 7, "Snapshot")
    start, n = r.vector(root.require(2, "nodes"), 4, "nodes")
    out = {}
    for pos in r.offsets(start, n, "node"):
        f = r.tables(np.array([pos]), 5, "node")
        nid = r.structs(f.require(0, "id"), 8, "id")[0].tobytes()
        ps, pl = r.vector(f.require(1, "path"), 1, "path")
        path = r.u8[ps[0] : ps[0] + pl[0]].tobytes().decode()
        tag = int(r.u8[f.pos(3)[0]]) if f.pos(3)[0] >= 0 else 0
        ids: list[bytes] = []
        if tag == 1:
            af = r.tables(r.deref(f.require(4, "data"), "data"), 3, "array")
            ms, ml = r.vector(af.require(2, "manifests"), 4, "manifests")
            mf = r.tables(r.offsets(ms, ml, "ref"), 2, "ref")
            ids = [row.tobytes() for row in r.structs(mf.require(0, "object_id"), 12, "oid")]
        out[path] = (nid, tag == 1, ids)
    return out


def manifest_size_slots(flat: bytes) -> dict[bytes, int]:
    """manifest id -> byte position of its ``size_bytes`` inside the snapshot flatbuffer."""
    r = ColumnReader(flat, "snapshot")
    root = r.tables(r.root(), 7, "Snapshot")
    start, n = r.vector(root.require(6, "manifest_files"), 32, "manifest_files")
    return {
        r.u8[s : s + 12].tobytes(): int(s) + 16
        for s in (int(start[0]) + 32 * i for i in range(int(n[0])))
    }


def build_repo(path: Path, splitting: bool) -> icechunk.Repository:
    """A repository with inline, native, virtual, deleted, resized, 0-d and 4-d chunks."""
    cfg = icechunk.RepositoryConfig(inline_chunk_threshold_bytes=16)
    if splitting:
        any_dim = icechunk.ManifestSplitDimCondition.Any()
        split = icechunk.ManifestSplittingConfig.from_dict(
            {icechunk.ManifestSplitCondition.AnyArray(): {any_dim: 2}}
        )
        cfg.manifest = icechunk.ManifestConfig(splitting=split)
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(path)), cfg)
    s = repo.writable_session("main")
    root = zarr.group(store=s.store, attributes={"t": 1})
    kw = {"compressors": None, "fill_value": 0}
    small = root.create_array("small", shape=(6, 6), chunks=(2, 2), dtype="int32", **kw)
    small[:] = np.arange(36).reshape(6, 6) + 1  # 16-byte chunks: inline
    big = root.create_array("big", shape=(8, 8), chunks=(4, 4), dtype="int64", **kw)
    big[:] = np.arange(64).reshape(8, 8) + 1  # 128-byte chunks: native
    scalar = root.create_array("scalar", shape=(), dtype="float64", **kw)
    scalar[()] = 3.5
    cube = root.create_array("cube", shape=(4, 3, 2, 5), chunks=(1, 1, 1, 5), dtype="uint8", **kw)
    cube[:] = (np.arange(120).reshape(4, 3, 2, 5) % 250) + 1
    root.create_array("virt", shape=(20,), chunks=(5,), dtype="uint8", **kw)
    for key, (loc, off, ln, checksum, _) in VIRTUAL_REFS.items():
        s.store.set_virtual_ref(
            key, loc, offset=off, length=ln, checksum=checksum, validate_container=False
        )
    s.commit("one")

    s = repo.writable_session("main")
    root = zarr.open_group(store=s.store)
    root["big"][0:4, 0:4] = 0  # all fill: zarr deletes chunk (0, 0)
    root["big"][4:8, 4:8] = 7
    root["small"].resize((3, 3))
    root.attrs["t"] = 2
    del root["scalar"]
    s.commit("two")

    s = repo.writable_session("main")
    root = zarr.open_group(store=s.store)
    root["cube"][0, 0, 0, :] = 9
    s.commit("three")
    return repo


def snapshot_ids(repo: icechunk.Repository) -> list[str]:
    return [snap.id for snap in repo.ancestry(branch="main")]


def chunk_coords(session: icechunk.Session, path: str) -> set[tuple[int, ...]]:
    async def collect() -> set[tuple[int, ...]]:
        return {tuple(c) async for c in session.chunk_coordinates(path)}

    return asyncio.run(collect())


def copy_repo(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
