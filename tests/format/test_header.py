"""The 39-byte header and zstd envelope (FORMAT-V1 §3, FORMAT-V2 §2)."""

from __future__ import annotations

import threading
from pathlib import Path

import icechunk
import pytest
import zarr
import zstandard

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


def test_spec2_layout_is_one_sized_frame() -> None:
    content = bytes(range(256)) * 3
    data = encode_object(FileType.REPO_INFO, content, spec_version=SPEC_V2)
    assert data[36:39] == bytes((2, 6, 1))
    params = zstandard.get_frame_parameters(data[HEADER_SIZE:])
    assert params.content_size == len(content) and not params.has_checksum
    assert open_object(data, FileType.REPO_INFO, "repo") == (2, content)
    with pytest.raises(IcechunkError, match="version 2, which this reader does not handle"):
        decode_object(data, FileType.REPO_INFO, "repo")
    with pytest.raises(ValueError, match="only in spec version 2"):
        encode_object(FileType.REPO_INFO, content)
    with pytest.raises(ValueError, match="spec version 3"):
        encode_object(FileType.SNAPSHOT, content, spec_version=3)


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


def test_damaged_objects_raise_only_icechunk_error() -> None:
    data = encode_object(FileType.SNAPSHOT, bytes(range(256)) * 4)
    for i in range(len(data)):
        damaged = bytearray(data)
        damaged[i] ^= 0x5A
        try:
            decode_object(bytes(damaged), FileType.SNAPSHOT, KEY)
        except IcechunkError as exc:
            assert KEY in str(exc)


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
