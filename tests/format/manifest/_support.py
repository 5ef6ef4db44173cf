"""Shared helpers of the manifest tests: payload strategies and decoding helpers."""

from __future__ import annotations

from hypothesis import strategies as st

from pyicechunk.format.manifest import (
    ArrayManifest,
    ChunkPayload,
    InlinePayload,
    Manifest,
    NativePayload,
    VirtualPayload,
    decode_manifest,
)

MID = bytes(range(12))


payloads = st.one_of(
    st.builds(InlinePayload, st.binary(max_size=600)),
    st.builds(
        NativePayload,
        st.binary(min_size=12, max_size=12),
        st.integers(0, 2**64 - 1),
        st.integers(0, 2**64 - 1),
    ),
    st.builds(
        VirtualPayload,
        st.text(max_size=40).map(lambda s: "s3://b/" + s),
        st.integers(0, 2**64 - 1),
        st.integers(0, 2**64 - 1),
        st.none() | st.text(max_size=20),
        st.integers(0, 2**32 - 1),
    ),
)


@st.composite
def array_refs(draw: st.DrawFn) -> tuple[bytes, int, dict[tuple[int, ...], ChunkPayload]]:
    ndim = draw(st.integers(0, 4))
    coord = st.tuples(*[st.integers(0, draw(st.sampled_from([3, 1000, 2**32 - 1])))] * ndim)
    refs = draw(st.dictionaries(coord, payloads, min_size=1, max_size=1 if ndim == 0 else 30))
    return draw(st.binary(min_size=8, max_size=8)), ndim, refs


def payloads_of(am: ArrayManifest) -> dict[tuple[int, ...], ChunkPayload]:
    return {tuple(int(x) for x in am.coords[i]): am.payload(i) for i in range(len(am))}


def decode_full(buf: bytes) -> Manifest:
    """Decode a manifest and force the bulk decode of all its refs (which validates them)."""
    m = decode_manifest(buf)
    for a in m.arrays:
        a.coords  # noqa: B018 - the first column access decodes every ref
    return m
