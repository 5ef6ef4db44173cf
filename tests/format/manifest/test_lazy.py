"""Lookups served from the raw manifest buffer agree with the full decode."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyicechunk.format.manifest.model as manifest_module
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.manifest import (
    ArrayManifest,
    ChunkPayload,
    InlinePayload,
    NativePayload,
    VirtualPayload,
    decode_manifest,
    encode_manifest,
)

from .._refrepo import (
    read_flat,
)
from ._support import MID, array_refs, decode_full


def _assert_lazy_matches_full(buf: bytes, probes: dict[bytes, list[tuple[int, ...]]]) -> int:
    """Lazy find/payload on a fresh decode against the fully decoded columns; refs checked."""
    with mock.patch.object(manifest_module, "_LAZY_LOOKUPS", 10**9):
        return _lazy_matches_full(buf, probes)


def _lazy_matches_full(buf: bytes, probes: dict[bytes, list[tuple[int, ...]]]) -> int:
    lazy_m, full_m = decode_manifest(buf), decode_full(buf)
    checked = 0
    for lazy, full in zip(lazy_m.arrays, full_m.arrays, strict=True):
        assert lazy.node_id == full.node_id and len(lazy) == len(full)
        assert lazy.ndim == full.ndim
        wanted = [tuple(int(x) for x in c) for c in full.coords] + probes.get(lazy.node_id, [])
        for c in wanted:
            i = lazy.find(c)
            assert i == full.find(c)
            if i >= 0:
                assert full.coords[i].tolist() == list(c)
                assert lazy.payload(i) == full.payload(i)
                checked += 1
        # still undecoded: every answer above came from the lazy path
        assert lazy._lazy is not None
    return checked


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(array_refs(), min_size=1, max_size=4, unique_by=lambda t: t[0]),
    st.lists(st.lists(st.integers(0, 2**32 - 1), min_size=4, max_size=4), max_size=10),
)
def test_lazy_lookups_match_full_decode(
    arrays: list[tuple[bytes, int, dict[tuple[int, ...], ChunkPayload]]],
    extra: list[list[int]],
) -> None:
    ams = [ArrayManifest.from_payloads(n, d, list(r), list(r.values())) for n, d, r in arrays]
    buf = encode_manifest(MID, ams)
    # absent coordinates too: random ones and neighbours of present ones
    probes: dict[bytes, list[tuple[int, ...]]] = {}
    for nid, ndim, refs in arrays:
        near = [tuple(x + 1 for x in c) for c in refs] + [tuple(x[:ndim]) for x in extra]
        probes[nid] = [c for c in near if c not in refs] + [(0,) * (ndim + 1)]
    assert _assert_lazy_matches_full(buf, probes) == sum(len(r) for _, _, r in arrays)


def test_lazy_lookups_on_reference_manifests(ref_repo: Path) -> None:
    checked = 0
    for f in (ref_repo / "manifests").iterdir():
        checked += _assert_lazy_matches_full(read_flat(f)[1], {})
    assert checked > 50


def test_lazy_lookup_reports_damage_on_its_path() -> None:
    """A lookup fails on an unsorted path or a bad ref it reads; the bulk decode agrees."""
    n = 64
    am = ArrayManifest.from_payloads(
        b"s" * 8, 1, [(3 * i,) for i in range(n)], [InlinePayload(bytes([i])) for i in range(n)]
    )
    good = encode_manifest(MID, [am])
    # coordinates 3*i are stored as [len=1, 3*i]. Searching (150,) probes refs 32 (96) then
    # 48 (144): storing 50 at ref 48 contradicts the first probe.
    at = good.index((1).to_bytes(4, "little") + (144).to_bytes(4, "little"))
    bad = bytearray(good)
    bad[at + 4 : at + 8] = (50).to_bytes(4, "little")
    lazy = decode_manifest(bytes(bad)).arrays[0]
    with pytest.raises(IcechunkError, match="not sorted"):
        lazy.find((150,))
    with pytest.raises(IcechunkError, match="not sorted"):
        decode_full(bytes(bad))
    at = good.index((1).to_bytes(4, "little") + (3 * (n // 2)).to_bytes(4, "little"))
    bad = bytearray(good)
    bad[at : at + 4] = (2).to_bytes(4, "little")
    lazy = decode_manifest(bytes(bad)).arrays[0]
    with pytest.raises(IcechunkError, match="different numbers of dimensions"):
        lazy.find((0,))
    with pytest.raises(IcechunkError, match="different numbers of dimensions"):
        lazy.payload(n // 2)
    # refs the lookup does not visit are not checked by it, only by the bulk decode
    assert lazy.payload(0) == InlinePayload(b"\0")
    with pytest.raises(IcechunkError, match="different numbers of dimensions"):
        lazy.kind  # noqa: B018
    with pytest.raises(IndexError):
        decode_manifest(good).arrays[0].payload(n)


def test_many_lookups_switch_to_one_full_decode() -> None:
    # A bulk read (many lookups in one manifest) decodes the columns once instead of searching
    # the raw buffer again and again; answers are the same either way.
    n = 4 * manifest_module._LAZY_LOOKUPS
    coords = [(i,) for i in range(n)]
    arr = ArrayManifest.from_payloads(
        b"\x00" * 7 + b"\x01", 1, coords, [InlinePayload(bytes([i])) for i in range(n)]
    )
    m = decode_manifest(encode_manifest(b"\x00" * 12, [arr]))
    only = m.arrays[0]
    for i, c in enumerate(coords):
        j = only.find(c)
        assert j == i and only.payload(j) == InlinePayload(bytes([i]))
        assert (only._lazy is not None) == (i < manifest_module._LAZY_LOOKUPS)


def _two_arrays() -> bytes:
    a = ArrayManifest.from_payloads(
        b"\x00" * 7 + b"\x01",
        1,
        [(0,), (1,)],
        [InlinePayload(b"a"), VirtualPayload("s3://b/x", 0, 1)],
    )
    b = ArrayManifest.from_payloads(
        b"\x00" * 7 + b"\x02",
        1,
        [(5,), (6,)],
        [NativePayload(b"c" * 12, 1, 2), InlinePayload(b"z")],
    )
    return encode_manifest(MID, [a, b])


def test_arrays_of_one_manifest_share_one_bulk_decode() -> None:
    first, second = decode_manifest(_two_arrays()).arrays
    assert second.payload(1) == InlinePayload(b"z")
    assert second._lazy is not None
    first.coords  # noqa: B018 - the first column access decodes every array
    # the other array answers from the decoded columns from its next use on
    assert second.find((6,)) == 1
    assert second._lazy is None
    assert second.payload(0) == NativePayload(b"c" * 12, 1, 2)
    assert second.kind.tolist() == [1, 0]


def test_failed_bulk_decode_leaves_every_array_undecoded() -> None:
    buf = bytearray(_two_arrays())
    # give the second array's refs the same coordinates: the bulk decode refuses them
    i5 = bytes(buf).index((1).to_bytes(4, "little") + (5).to_bytes(4, "little"))
    i6 = bytes(buf).index((1).to_bytes(4, "little") + (6).to_bytes(4, "little"))
    buf[i6 + 4 : i6 + 8] = buf[i5 + 4 : i5 + 8]
    first, second = decode_manifest(bytes(buf)).arrays
    for _ in range(2):
        with pytest.raises(IcechunkError, match="not sorted and unique"):
            first.coords  # noqa: B018
    assert first._lazy is not None and second._lazy is not None
    # single lookups of the intact array still work
    assert first.payload(first.find((1,))) == VirtualPayload("s3://b/x", 0, 1)
