"""The 39-byte header and zstd envelope (FORMAT-V1 §3, FORMAT-V2 §2)."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any

import icechunk
import numpy as np
import pytest
import zarr
import zstandard
from oracle import raises

import pyicechunk
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.header import (
    HEADER_SIZE,
    IMPLEMENTATION_NAME,
    SPEC_V1,
    SPEC_V2,
    FileType,
    check_spec_version,
    decode_object,
    encode_object,
    open_object,
)

MAGIC = bytes.fromhex("494345f09fa78a434855 4e4b".replace(" ", ""))
KEY = "snapshots/ABCDEFGHJKMNPQRSTVWX"


def _object(spec: int = 1, file_type: int = 1, compression: int = 1, body: bytes = b"") -> bytes:
    body = body or zstandard.ZstdCompressor().compress(b"payload")
    return MAGIC + b"x" * 24 + bytes((spec, file_type, compression)) + body


def test_layout() -> None:
    data = encode_object(FileType.MANIFEST, b"flatbuffer bytes", compression_level=5)
    assert data[:12] == MAGIC
    assert data[12:36] == IMPLEMENTATION_NAME and len(IMPLEMENTATION_NAME) == 24
    assert IMPLEMENTATION_NAME.rstrip(b" ").startswith(b"pyic-")
    assert data[36:39] == bytes((1, 2, 1))
    assert data[39:43] == bytes.fromhex("28b52ffd")
    assert decode_object(data, FileType.MANIFEST, "m") == b"flatbuffer bytes"
    assert (FileType.SNAPSHOT, FileType.MANIFEST, FileType.TRANSACTION_LOG) == (1, 2, 4)
    assert FileType.REPO_INFO == 6


def test_frames_record_size_and_checksum() -> None:
    """Every object type of both spec versions: one frame with content size and checksum."""
    small = bytes(range(256)) * 3
    large = os.urandom(1 << 16) * 48  # 3 MiB: more than zstd level 3's 2 MiB window
    for spec in (SPEC_V1, SPEC_V2):
        for file_type in FileType:
            if file_type == FileType.REPO_INFO and spec == SPEC_V1:
                continue
            for content in (small, large):
                data = encode_object(file_type, content, spec_version=spec)
                assert data[36:39] == bytes((spec, file_type, 1))
                params = zstandard.get_frame_parameters(data[HEADER_SIZE:])
                assert params.content_size == len(content) and params.has_checksum
                # Single-segment when the content fits the level's window, as 2.3.0 writes.
                single_segment = bool(data[HEADER_SIZE + 4] & 0x20)
                assert single_segment == (content is small)
                assert open_object(data, file_type, KEY) == (spec, content)
    data = encode_object(FileType.REPO_INFO, small, spec_version=SPEC_V2)
    with pytest.raises(IcechunkError, match="version 2, which this reader does not handle"):
        decode_object(data, FileType.REPO_INFO, "repo")
    with pytest.raises(ValueError, match="only in spec version 2"):
        encode_object(FileType.REPO_INFO, small)
    with pytest.raises(ValueError, match="spec version 3"):
        encode_object(FileType.SNAPSHOT, small, spec_version=3)


def test_damage_that_still_decodes_fails_the_checksum() -> None:
    content = os.urandom(1000)  # incompressible: stored as one raw block, then the checksum
    for spec in (SPEC_V1, SPEC_V2):
        data = bytearray(encode_object(FileType.MANIFEST, content, spec_version=spec))
        data[-500] ^= 0x10
        with pytest.raises(
            IcechunkError,
            match=f"cannot read {KEY}: its content does not match the checksum of its zstd frame",
        ):
            open_object(bytes(data), FileType.MANIFEST, KEY)
    # The same damage in a frame without a checksum (as the references write) goes unnoticed.
    unchecked = bytearray(_object(body=zstandard.ZstdCompressor().compress(content)))
    unchecked[-500] ^= 0x10
    damaged = open_object(bytes(unchecked), FileType.SNAPSHOT, KEY).content
    assert damaged != content and len(damaged) == len(content)


def test_reads_reference_objects(tmp_path: Path) -> None:
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(tmp_path)))
    s = repo.writable_session("main")
    zarr.create_array(s.store, name="a", shape=(4,), chunks=(2,), dtype="i1")[:] = 1
    s.commit("c")
    kinds = {
        "snapshots": FileType.SNAPSHOT,
        "manifests": FileType.MANIFEST,
        "transactions": FileType.TRANSACTION_LOG,
    }
    for prefix, kind in kinds.items():
        files = list((tmp_path / prefix).iterdir())
        assert files
        for path in files:
            data = path.read_bytes()
            # Frames without a content size, as the Rust streaming encoder writes them.
            assert data[HEADER_SIZE + 4] & 0xC0 == 0
            assert int.from_bytes(decode_object(data, kind, path.name)[4:8], "little")
            for other in set(kinds.values()) - {kind}:
                with pytest.raises(IcechunkError, match="cannot read this file type, expected"):
                    decode_object(data, other, path.name)


# Run by each reference: read what pyicechunk wrote, then commit on top of it.
READ_AND_EXTEND = """
def read_history(icechunk, path):
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(path)))
    return [(s.id, s.message) for s in repo.ancestry(branch="main")]

def read_and_extend(icechunk, path):
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(path)))
    history = read_history(icechunk, path)
    tip, parent = history[0][0], history[1][0]
    group = zarr.open_group(repo.readonly_session(snapshot_id=tip).store, mode="r")
    arrays = {name: a[...].tolist() for name, a in group.arrays()}
    diff = repo.diff(from_snapshot_id=parent, to_snapshot_id=tip)
    chunks = {p: sorted(list(c) for c in cs) for p, cs in diff.updated_chunks.items()}
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="native", mode="r+")[3] = 7.0
    return history, arrays, dict(group.attrs), chunks, session.commit("on top, by a reference")
"""
NATIVE = np.arange(4 * 300, dtype="f8").reshape(4, 300)


def _write_spec1_repository(path: Path) -> list[str]:
    """Two commits by pyicechunk: inline and native chunks, attributes; the ids, newest first."""
    storage = pyicechunk.local_filesystem_storage(str(path))
    repo = pyicechunk.Repository.create(storage, spec_version=1)
    session = repo.writable_session("main")
    root = zarr.group(session.store, attributes={"by": "pyicechunk"})
    root.create_array("inline", shape=(6,), chunks=(2,), dtype="i4")[:] = np.arange(6)
    root.create_array("native", shape=(4, 300), chunks=(1, 300), dtype="f8", compressors=None)[
        :
    ] = NATIVE
    first = session.commit("first")
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="native", mode="r+")[0] = -1.0
    return [session.commit("second, by pyicechunk"), first]


@pytest.mark.parametrize("reference", ["icechunk-1.1.21", "icechunk-2.3.0"])
def test_references_read_and_extend_checksummed_objects(
    reference: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Both references open, read, diff and commit on a spec-1 repository we wrote, and
    refuse an object whose content does not match its frame's checksum."""
    path = tmp_path / "repo"
    ours = _write_spec1_repository(path)
    objects = [f for d in ("snapshots", "manifests", "transactions") for f in (path / d).iterdir()]
    assert {f.parent.name for f in objects} == {"snapshots", "manifests", "transactions"}
    for f in objects:
        data = f.read_bytes()
        assert data[36] == SPEC_V1
        assert zstandard.get_frame_parameters(data[HEADER_SIZE:]).has_checksum, f
    damaged = tmp_path / "damaged"
    shutil.copytree(path, damaged)
    tip_file = damaged / "snapshots" / ours[0]
    original = tip_file.read_bytes()
    content = open_object(original, FileType.SNAPSHOT, ours[0]).content
    assert content.count(b"by pyicechunk") == 1
    altered = content.replace(b"by pyicechunk", b"by PYICECHUNK")
    # The altered content in a frame carrying the original content's checksum.
    tip_file.write_bytes(
        original[:HEADER_SIZE]
        + encode_object(FileType.SNAPSHOT, altered)[HEADER_SIZE:-4]
        + original[-4:]
    )

    result: Any
    if reference == "icechunk-1.1.21":
        namespace: dict[str, Any] = {"zarr": zarr}
        exec(READ_AND_EXTEND, namespace)
        result = namespace["read_and_extend"](icechunk, path)
        with pytest.raises(icechunk.IcechunkError):
            namespace["read_history"](icechunk, damaged)
    else:
        ic2 = request.getfixturevalue("ic2")
        ic2.run(READ_AND_EXTEND)
        result = ic2.run("read_and_extend(icechunk, path)", path=path)
        with raises("IcechunkError", match="doesn't match checksum"):
            ic2.run("read_history(icechunk, path)", path=damaged)
    with pytest.raises(IcechunkError, match="does not match the checksum"):
        list(
            pyicechunk.Repository.open(pyicechunk.local_filesystem_storage(str(damaged))).ancestry(
                branch="main"
            )
        )

    history, arrays, attributes, chunks, theirs = result
    assert [h[0] for h in history][:2] == ours
    assert [h[1] for h in history] == ["second, by pyicechunk", "first", "Repository initialized"]
    want = NATIVE.copy()
    want[0] = -1.0
    assert arrays == {"inline": list(range(6)), "native": want.tolist()}
    assert attributes == {"by": "pyicechunk"}
    assert chunks == {"/native": [[0, 0]]}
    # pyicechunk reads the reference's commit on top of its own.
    repo = pyicechunk.Repository.open(pyicechunk.local_filesystem_storage(str(path)))
    assert [s.id for s in repo.ancestry(branch="main")][:3] == [theirs, *ours]
    want[3] = 7.0
    native = zarr.open_array(repo.readonly_session("main").store, path="native", mode="r")
    np.testing.assert_array_equal(native[...], want)


def test_checks_in_reference_order() -> None:
    """Size, magic, spec version, file type, compression: 2.3.0's order and messages."""
    bad_everything = b"NOTICECHUNK!" + b" " * 24 + bytes((9, 9, 9))
    with pytest.raises(IcechunkError, match="invalid icechunk header size, got 38 bytes"):
        open_object(bad_everything[:38], FileType.SNAPSHOT, KEY)
    with pytest.raises(IcechunkError, match=f"cannot read {KEY}: invalid magic numbers in file"):
        open_object(bad_everything, FileType.SNAPSHOT, KEY)
    upgrade = (
        "this repository uses Icechunk format version 3, but this library only supports up "
        "to version 2. Please upgrade the icechunk library"
    )
    with pytest.raises(IcechunkError, match=upgrade):
        open_object(_object(spec=3, file_type=9, compression=9), FileType.SNAPSHOT, KEY)
    with pytest.raises(IcechunkError, match="format version 0"):
        open_object(_object(spec=0), FileType.SNAPSHOT, KEY)
    for spec in (1, 2):
        with pytest.raises(IcechunkError, match="expected RepoInfo got 1"):
            open_object(_object(spec, file_type=1, compression=9), FileType.REPO_INFO, KEY)
        with pytest.raises(IcechunkError, match="expected TransactionLog got 5"):
            open_object(_object(spec, file_type=5), FileType.TRANSACTION_LOG, KEY)
        with pytest.raises(IcechunkError, match="expected Snapshot got 77"):
            open_object(_object(spec, file_type=77), FileType.SNAPSHOT, KEY)
        with pytest.raises(IcechunkError, match="invalid compression algorithm 2"):
            open_object(_object(spec, compression=2), FileType.SNAPSHOT, KEY)
    # 2.3.0 insists on the zstd byte; 1.1.21 ignores it, so spec-1 objects keep that leniency.
    with pytest.raises(IcechunkError, match="invalid compression algorithm 0"):
        open_object(_object(spec=2, compression=0), FileType.SNAPSHOT, KEY)
    assert open_object(_object(spec=1, compression=0), FileType.SNAPSHOT, KEY) == (1, b"payload")


def test_truncated_header() -> None:
    full = _object()
    for cut in (0, 5, 12, 20, 38):
        with pytest.raises(IcechunkError, match=KEY):
            decode_object(full[:cut], FileType.SNAPSHOT, KEY)
    with pytest.raises(IcechunkError, match=r"header size, got 38 bytes.*truncated"):
        decode_object(full[:38], FileType.SNAPSHOT, KEY)
    with pytest.raises(IcechunkError, match="no content"):
        decode_object(full[:39], FileType.SNAPSHOT, KEY)


def test_tolerates_what_the_reference_tolerates() -> None:
    cctx = zstandard.ZstdCompressor(write_checksum=True, write_content_size=True)
    two_frames = cctx.compress(b"first ") + zstandard.ZstdCompressor().compress(b"second")
    assert decode_object(_object(body=two_frames), FileType.SNAPSHOT, KEY) == b"first second"
    # Compression byte 0 with a zstd body is read as zstd, like the reference does.
    assert decode_object(_object(compression=0), FileType.SNAPSHOT, KEY) == b"payload"
    big = bytes(range(256)) * 40_000
    stream = zstandard.ZstdCompressor().compressobj()
    body = stream.compress(big) + stream.flush()
    assert decode_object(_object(body=body), FileType.SNAPSHOT, KEY) == big
    # Spec 2 accepts one frame with or without content size or checksum, never two.
    for frame in (cctx.compress(big), body):
        assert open_object(_object(spec=2, body=frame), FileType.SNAPSHOT, KEY) == (2, big)
    with pytest.raises(IcechunkError, match="more than one zstd frame"):
        open_object(_object(spec=2, body=two_frames), FileType.SNAPSHOT, KEY)


def test_corrupt_and_truncated_bodies() -> None:
    body = zstandard.ZstdCompressor().compress(bytes(range(256)) * 100)
    with pytest.raises(IcechunkError, match="truncated"):
        decode_object(_object(body=body[:-4]), FileType.SNAPSHOT, KEY)
    with pytest.raises(IcechunkError, match="corrupt"):
        decode_object(_object(body=b"not zstd at all"), FileType.SNAPSHOT, KEY)
    with pytest.raises(IcechunkError, match="corrupt"):
        decode_object(_object(body=body + b"trailing junk"), FileType.SNAPSHOT, KEY)
    with pytest.raises(IcechunkError, match=KEY):
        decode_object(_object(body=b"uncompressed"), FileType.SNAPSHOT, KEY)


def test_every_bit_flip_is_refused_or_harmless() -> None:
    """No flip of one bit of an object we wrote reads as other content without an error."""
    content = os.urandom(300) + bytes(range(256)) * 2
    for spec, file_type in ((SPEC_V1, FileType.SNAPSHOT), (SPEC_V2, FileType.TRANSACTION_LOG)):
        data = encode_object(file_type, content, spec_version=spec)
        for i in range(len(data)):
            for bit in range(8):
                damaged = bytearray(data)
                damaged[i] ^= 1 << bit
                try:
                    opened = open_object(bytes(damaged), file_type, KEY)
                except IcechunkError as exc:
                    assert KEY in str(exc)
                else:
                    # The name bytes, spec 1's compression byte, the frame's unused bit.
                    assert opened.content == content, (spec, i, bit)


def test_concurrent_encoding_from_threads() -> None:
    payloads = [bytes([i]) * 100_000 + bytes(range(256)) for i in range(8)]
    results: dict[int, bytes] = {}

    def work(i: int) -> None:
        for _ in range(20):
            results[i] = encode_object(FileType.MANIFEST, payloads[i], compression_level=1)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, data in results.items():
        assert decode_object(data, FileType.MANIFEST, "m") == payloads[i]


def test_check_spec_version() -> None:
    assert [check_spec_version(v) for v in (SPEC_V1, SPEC_V2)] == [1, 2]
    for bad in (0, 3, -1):
        with pytest.raises(ValueError, match=f"unsupported spec version {bad}; the supported"):
            check_spec_version(bad)
