"""Micro-benchmark of manifest decode/lookup/encode (not a test; run it directly).

Prints the best of several runs per phase, in milliseconds.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable

import numpy as np
import zstandard

from pyicechunk.format.header import FileType, decode_object, encode_object
from pyicechunk.format.manifest import (
    INLINE,
    NATIVE,
    ArrayManifest,
    LocationCompression,
    VirtualPayload,
    decode_manifest,
    encode_manifest,
)


def best(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3


def inline_1d(n: int) -> ArrayManifest:
    data = np.arange(1, n + 1, dtype="<f8").tobytes()
    return ArrayManifest(
        b"\x01" * 8,
        np.arange(n, dtype=np.uint32).reshape(n, 1),
        np.full(n, INLINE, dtype=np.uint8),
        np.zeros((n, 12), dtype=np.uint8),
        np.zeros(n),
        np.zeros(n),
        data,
        np.arange(n) * 8,
        np.full(n, 8),
        np.zeros(n),
        np.full(n, -1),
        np.zeros(n),
    )


def native_2d(n: int) -> ArrayManifest:
    side = int(np.ceil(np.sqrt(n)))
    idx = np.arange(n)
    coords = np.stack([idx // side, idx % side], axis=1)
    rng = np.random.default_rng(0)
    return ArrayManifest(
        b"\x02" * 8,
        coords,
        np.full(n, NATIVE, dtype=np.uint8),
        rng.integers(0, 256, (n, 12), dtype=np.uint8),
        np.zeros(n),
        np.full(n, 1 << 20),
        b"",
        np.zeros(n),
        np.zeros(n),
        np.zeros(n),
        np.full(n, -1),
        np.zeros(n),
    )


def envelope(name: str, flat: bytes, runs: int) -> None:
    """encode_object and decode_object of one manifest, beside the references' frames.

    Ours record the content size and a checksum; 2.3.0's record the size without a checksum;
    1.1.21 streams its objects (neither size nor checksum).
    """
    header = encode_object(FileType.MANIFEST, b"")[:39]
    unchecked = zstandard.ZstdCompressor(level=3, write_content_size=True)

    def streamed() -> bytes:
        cobj = zstandard.ZstdCompressor(level=3).compressobj()
        return header + cobj.compress(flat) + cobj.flush()

    writers: dict[str, Callable[[], bytes]] = {
        "size + checksum (ours)": lambda: encode_object(FileType.MANIFEST, flat),
        "size, no checksum (2.3.0)": lambda: header + unchecked.compress(flat),
        "streamed (1.1.21)": streamed,
    }
    print(f"{name}: {len(flat) / 1e6:.2f} MB decompressed")
    for frame, write in writers.items():
        obj = write()
        assert decode_object(obj, FileType.MANIFEST, "m") == flat
        enc = best(write, runs)
        dec = best(lambda o=obj: decode_object(o, FileType.MANIFEST, "m"), runs)  # type: ignore[misc]
        print(f"  {frame}: encode {enc:.2f} ms, decode_object {dec:.2f} ms, {len(obj)} bytes")


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    mid = b"\x07" * 12
    inl = inline_1d(100_000)
    flat = encode_manifest(mid, [inl])
    envelope("100k inline manifest", flat, runs)

    def read_one() -> None:
        m = decode_manifest(flat)
        a = m.array(b"\x01" * 8)
        assert a is not None
        i = a.find((54_321,))
        a.payload(i)

    print(f"decode_manifest + find + payload (100k inline): {best(read_one, runs):.2f} ms")

    def full() -> None:
        a = decode_manifest(flat).arrays[0]
        a.take(np.arange(len(a)))

    print(f"decode_manifest + full decode (100k inline): {best(full, runs):.2f} ms")
    print(f"encode 100k inline: {best(lambda: encode_manifest(mid, [inl]), runs):.2f} ms")
    nat = native_2d(1_000_000)
    print(f"encode 1M native 2-d: {best(lambda: encode_manifest(mid, [nat]), runs):.2f} ms")
    nat_flat = encode_manifest(mid, [nat])
    envelope("1M native manifest", nat_flat, runs)

    def nat_one() -> None:
        a = decode_manifest(nat_flat).arrays[0]
        a.payload(a.find((700, 300)))

    print(f"decode_manifest + find + payload (1M native): {best(nat_one, runs):.2f} ms")

    def nat_full() -> None:
        a = decode_manifest(nat_flat).arrays[0]
        a.find_many(a.coords[::1000])

    print(f"decode_manifest + full decode + find_many (1M native): {best(nat_full, runs):.2f} ms")
    n = 100_000
    vir = ArrayManifest.from_payloads(
        b"\x03" * 8,
        1,
        [(i,) for i in range(n)],
        [VirtualPayload(f"s3://bucket/prefix/file-{i:06d}.nc", 8 * i, 8) for i in range(n)],
    )
    for spec, name in ((1, "plain"), (2, "compressed")):
        flat_v = encode_manifest(mid, [vir], spec, LocationCompression(), random.Random(0))

        def vir_full(buf: bytes = flat_v) -> None:
            a = decode_manifest(buf).arrays[0]
            a.payload(len(a) - 1)
            len(a.coords)

        t = best(vir_full, runs)
        print(f"decode_manifest + full decode (100k virtual, {name} locations): {t:.2f} ms")


if __name__ == "__main__":
    main()
