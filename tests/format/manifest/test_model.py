"""ArrayManifest lookups, subsets and totals, and the order of coordinate rows."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.manifest import (
    INLINE,
    NATIVE,
    VIRTUAL,
    ArrayManifest,
    InlinePayload,
    NativePayload,
    VirtualPayload,
    encode_manifest,
)

from ._support import MID, decode_full


def test_lookups_and_subsets() -> None:
    rng = np.random.default_rng(1)
    coords = np.unique(rng.integers(0, 50, size=(400, 3)), axis=0)
    n = len(coords)
    am = ArrayManifest(
        b"a" * 8,
        coords,  # np.unique sorts rows lexicographically
        np.full(n, NATIVE),
        rng.integers(0, 256, size=(n, 12)),
        np.zeros(n),
        np.arange(n) + 1,
        b"",
        np.zeros(n),
        np.zeros(n),
        np.zeros(n),
        np.full(n, -1),
        np.zeros(n),
    )
    present = {tuple(c) for c in coords.tolist()}
    queries = rng.integers(0, 55, size=(2000, 3))
    found = am.find_many(queries)
    for q, i in zip(queries.tolist(), found.tolist(), strict=True):
        assert (i >= 0) == (tuple(q) in present)
        assert am.find(tuple(q)) == i
        if i >= 0:
            assert am.coords[i].tolist() == q
    assert am.find((2**40, 0, 0)) == -1 and am.find((1, 1)) == -1
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    assert am.extents() == tuple(zip(lo.tolist(), (hi + 1).tolist(), strict=True))
    mask = am.within((10, 20, 30))
    assert mask.sum() == sum(c[0] < 10 and c[1] < 20 and c[2] < 30 for c in present)
    part_a, part_b = am.take(mask), am.take(~mask)
    merged = ArrayManifest.concat_sorted(b"a" * 8, [part_b, part_a])
    assert (merged.coords == am.coords).all() and (merged.length == am.length).all()
    with pytest.raises(IcechunkError, match="more than once"):
        ArrayManifest.concat_sorted(b"a" * 8, [am, part_a])
    assert am.total_bytes_by_kind() == (int(am.length.sum()), 0, 0)
    assert (am.native_chunk_ids() == am.chunk_id).all()


def test_wide_coordinates_use_byte_keys() -> None:
    coords = [(2**32 - 1, 2**32 - 2, 7), (0, 0, 0), (2**31, 5, 2**32 - 1)]
    am = ArrayManifest.from_payloads(
        b"w" * 8, 3, coords, [InlinePayload(bytes([i])) for i in range(3)]
    )
    for i, c in enumerate(coords):
        assert am.payload(am.find(c)) == InlinePayload(bytes([i]))
    assert am.find((2**32 - 1, 2**32 - 2, 6)) == -1
    assert am.find_many(np.array([*coords, (1, 2, 3)])).tolist()[-1] == -1


def test_mixed_kinds_totals() -> None:
    am = ArrayManifest.from_payloads(
        b"m" * 8,
        1,
        [(0,), (1,), (2,)],
        [InlinePayload(b"abc"), NativePayload(b"i" * 12, 0, 10), VirtualPayload("s3://x/y", 0, 7)],
    )
    assert am.total_bytes_by_kind() == (10, 7, 3)
    assert am.kind.tolist() == [INLINE, NATIVE, VIRTUAL]


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 5).flatmap(
        lambda nd: st.lists(
            st.tuples(*[st.sampled_from([0, 1, 2**31, 2**32 - 1])] * nd), min_size=2, max_size=8
        )
    )
)
def test_unsorted_rows_are_found_like_tuple_comparison(rows: list[tuple[int, ...]]) -> None:
    ndim = len(rows[0])
    am_coords = np.array(rows, dtype=np.uint32).reshape(len(rows), ndim)
    bad = next((i for i in range(1, len(rows)) if not rows[i] > rows[i - 1]), None)
    am = ArrayManifest(
        b"u" * 8, am_coords, np.full(len(rows), NATIVE), np.zeros((len(rows), 12)),
        np.zeros(len(rows)), np.zeros(len(rows)), b"", np.zeros(len(rows)),
        np.zeros(len(rows)), np.zeros(len(rows)), np.full(len(rows), -1), np.zeros(len(rows)),
    )  # fmt: skip
    if bad is None:
        got = decode_full(encode_manifest(MID, [am])).arrays[0].coords.tolist()
        assert [tuple(r) for r in got] == rows
    else:
        with pytest.raises(IcechunkError, match=re.escape(f"unique at {rows[bad]}")):
            encode_manifest(MID, [am])


def test_columns_rebuild_the_array() -> None:
    am = ArrayManifest.from_payloads(
        b"m" * 8,
        2,
        [(1, 0), (0, 3)],
        [InlinePayload(b"abc"), VirtualPayload("s3://b/k", 2, 3, "e", 4)],
    )
    again = ArrayManifest(am.node_id, *am.columns())
    assert [again.payload(i) for i in range(len(again))] == [am.payload(0), am.payload(1)]
    assert again.coords.tolist() == [[0, 3], [1, 0]]
