"""The manifest flatbuffer: round trips, our layout, refusals and damage; both ways with
icechunk 1.1.21."""

from __future__ import annotations

import asyncio
from pathlib import Path

import icechunk
import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zarr.core.buffer import default_buffer_prototype

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.manifest import (
    INLINE,
    NATIVE,
    VIRTUAL,
    ArrayManifest,
    ChunkPayload,
    InlinePayload,
    Manifest,
    NativePayload,
    VirtualPayload,
    decode_manifest,
    encode_manifest,
)

from .._refrepo import (
    VIRTUAL_REFS,
    chunk_coords,
    copy_repo,
    crockford,
    manifest_size_slots,
    read_flat,
    snapshot_ids,
    snapshot_nodes,
    uncrockford,
    write_flat,
)
from ._support import MID, array_refs, decode_full, payloads, payloads_of


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(array_refs(), min_size=1, max_size=4, unique_by=lambda t: t[0]))
def test_round_trip(arrays: list[tuple[bytes, int, dict[tuple[int, ...], ChunkPayload]]]) -> None:
    ams = [ArrayManifest.from_payloads(n, d, list(r), list(r.values())) for n, d, r in arrays]
    buf = encode_manifest(MID, ams)
    assert buf[4:8] == b"Ichk"
    m = decode_manifest(buf)
    assert m.id == MID
    assert [a.node_id for a in m.arrays] == sorted(n for n, _, _ in arrays)
    assert m.num_chunk_refs() == sum(len(r) for _, _, r in arrays)
    for nid, ndim, refs in arrays:
        got = m.array(nid)
        assert got is not None and got.ndim == ndim
        assert payloads_of(got) == refs
        assert list(map(tuple, got.coords.tolist())) == sorted(refs)
        for c in refs:
            assert got.coords[got.find(c)].tolist() == list(c)
        wanted = np.array(list(refs), dtype=np.int64).reshape(len(refs), ndim)
        assert (got.find_many(wanted) >= 0).all()
    assert encode_manifest(MID, m.arrays) == buf
    assert m.array(b"\xff" * 9) is None


def test_alignment_of_our_layout() -> None:
    """u64 fields 8-aligned, offsets/tables 4-aligned relative to the buffer start."""
    am = ArrayManifest.from_payloads(
        b"n" * 8,
        2,
        [(0, 0), (0, 1), (1, 0), (2, 2)],
        [
            InlinePayload(b"x" * 5),
            NativePayload(b"c" * 12, 3, 9),
            VirtualPayload("s3://a/b", 1, 2, "e", 0),
            VirtualPayload("s3://a/cc", 1, 2, None, 5),
        ],
    )
    buf = encode_manifest(MID, [am])
    d = decode_manifest(buf).arrays[0]
    assert payloads_of(d) == payloads_of(am)
    # any misaligned copy (prefix byte) must be refused, as the reference's verifier does
    with pytest.raises(IcechunkError):
        decode_manifest(b"\0" * 4 + buf)


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ([], "empty"),
        ([ArrayManifest.from_payloads(b"e" * 8, 1, [], [])], "without chunk refs"),
    ],
)
def test_encode_refuses(arrays: list[ArrayManifest], match: str) -> None:
    with pytest.raises(IcechunkError, match=match):
        encode_manifest(MID, arrays)


def test_encode_refuses_unsorted_and_duplicates() -> None:
    am = ArrayManifest.from_payloads(b"u" * 8, 1, [(0,), (1,)], [InlinePayload(b"")] * 2)
    unsorted = am.take(np.array([1, 0]))
    with pytest.raises(IcechunkError, match="not sorted"):
        encode_manifest(MID, [unsorted])
    with pytest.raises(IcechunkError, match="twice"):
        encode_manifest(MID, [am, am])
    with pytest.raises(IcechunkError, match="more than once"):
        ArrayManifest.from_payloads(b"u" * 8, 1, [(0,), (0,)], [InlinePayload(b"")] * 2)


COORDS_OF_SAMPLE: dict[bytes, list[tuple[int, ...]]] = {
    b"s" * 8: [(0, 0), (0, 1), (3, 2), (4, 4), (1, 1), (9, 9)],
    b"t" * 8: [()],
}


def _sample_buffer() -> bytes:
    am = ArrayManifest.from_payloads(
        b"s" * 8,
        2,
        [(0, 0), (0, 1), (3, 2), (4, 4)],
        [
            InlinePayload(b"hello"),
            NativePayload(b"k" * 12, 0, 99),
            VirtualPayload("s3://b/v", 4, 5, "tag"),
            VirtualPayload("gs://q/ü", 4, 5, None, 17),
        ],
    )
    other = ArrayManifest.from_payloads(b"t" * 8, 0, [()], [InlinePayload(b"z")])
    return encode_manifest(MID, [am, other])


def lazy_view(m: Manifest) -> list[dict[tuple[int, ...], ChunkPayload | None]]:
    """Each sample coordinate's payload via find/payload (lazy unless already decoded)."""
    out = []
    for a in m.arrays:
        seen: dict[tuple[int, ...], ChunkPayload | None] = {}
        for c in COORDS_OF_SAMPLE.get(a.node_id, []):
            i = a.find(c)
            seen[c] = a.payload(i) if i >= 0 else None
        out.append(seen)
    return out


def test_corruption_raises_only_icechunk_error() -> None:
    buf = _sample_buffer()
    full = [payloads_of(a) for a in decode_full(buf).arrays]
    survived = 0
    for cut in range(len(buf)):
        try:
            m = decode_full(buf[:cut])
        except IcechunkError:
            continue
        # only trailing padding or a string's NUL terminator may be cut off
        assert [payloads_of(a) for a in m.arrays] == full
        survived += 1
    assert survived < 8
    rng = np.random.default_rng(7)
    lazy_hits = 0
    for _ in range(400):
        damaged = bytearray(buf)
        for pos in rng.integers(0, len(buf), size=rng.integers(1, 4)):
            damaged[pos] = int(rng.integers(0, 256))
        try:
            lazy = lazy_view(decode_manifest(bytes(damaged)))
        except IcechunkError:
            lazy = None
        try:
            bulk = lazy_view(decode_full(bytes(damaged)))
        except IcechunkError:
            continue
        # the buffer passed full validation: lazy lookups must have succeeded and agree
        assert lazy == bulk
        lazy_hits += 1
    assert lazy_hits > 0


def test_decoder_rejects_unsorted_and_ndim_mismatch() -> None:
    am = ArrayManifest.from_payloads(b"s" * 8, 1, [(1,), (2,)], [InlinePayload(b"")] * 2)
    buf = bytearray(encode_manifest(MID, [am]))
    # swap the two coordinates in place: both index vectors hold [len=1, value]
    i1 = bytes(buf).index((1).to_bytes(4, "little") * 2)
    i2 = bytes(buf).index((1).to_bytes(4, "little") + (2).to_bytes(4, "little"))
    buf[i1 + 4 : i1 + 8], buf[i2 + 4 : i2 + 8] = buf[i2 + 4 : i2 + 8], buf[i1 + 4 : i1 + 8]
    with pytest.raises(IcechunkError, match="not sorted"):
        decode_full(bytes(buf))
    buf = bytearray(encode_manifest(MID, [am]))
    i2 = bytes(buf).index((1).to_bytes(4, "little") + (2).to_bytes(4, "little"))
    buf[i2 : i2 + 4] = (0).to_bytes(4, "little")
    with pytest.raises(IcechunkError, match="different numbers of dimensions"):
        decode_full(bytes(buf))


def _refs_by_path(path: Path, snap: str) -> dict[str, ArrayManifest | None]:
    """Every array of a snapshot with all its refs (from all its manifests) decoded by us."""
    _, flat = read_flat(path / "snapshots" / snap)
    out: dict[str, ArrayManifest | None] = {}
    for p, (nid, is_array, mids) in snapshot_nodes(flat).items():
        if not is_array:
            continue
        parts = []
        for mid in mids:
            m = decode_manifest(read_flat(path / "manifests" / crockford(mid))[1])
            assert m.id == mid
            part = m.array(nid)
            assert part is not None and len(part) > 0
            parts.append(part)
        out[p] = ArrayManifest.concat_sorted(nid, parts) if parts else None
    return out


def _get(store: icechunk.IcechunkStore, key: str) -> bytes:
    async def go() -> bytes:
        buf = await store.get(key, prototype=default_buffer_prototype())
        assert buf is not None
        return buf.to_bytes()

    return asyncio.run(go())


_TYPES = {
    INLINE: icechunk.ChunkType.INLINE,
    NATIVE: icechunk.ChunkType.NATIVE,
    VIRTUAL: icechunk.ChunkType.VIRTUAL,
}


def test_decode_reference_manifests(ref_repo: Path) -> None:
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(ref_repo)))
    seen = 0
    for snap in snapshot_ids(repo):
        session = repo.readonly_session(snapshot_id=snap)
        for path, am in _refs_by_path(ref_repo, snap).items():
            coords = chunk_coords(session, path)
            if am is None:
                assert coords == set()
                continue
            assert {tuple(c) for c in am.coords.tolist()} == coords
            for i, c in enumerate(am.coords.tolist()):
                kind = int(am.kind[i])
                assert session.chunk_type(path, c) == _TYPES[kind]
                key = path.lstrip("/") + "/c" + "".join(f"/{x}" for x in c)
                p = am.payload(i)
                if isinstance(p, InlinePayload):
                    assert p.data == _get(session.store, key)
                elif isinstance(p, NativePayload):
                    obj = ref_repo / "chunks" / crockford(p.chunk_id)
                    assert (p.offset, p.length) == (0, obj.stat().st_size)
                    assert obj.read_bytes() == _get(session.store, key)
                else:
                    loc, off, ln, _, (etag, lm) = VIRTUAL_REFS[key]
                    assert (p.location, p.offset, p.length) == (loc, off, ln)
                    assert (p.etag, p.last_modified) == (etag, lm)
                seen += 1
        ours = {
            am.payload(i).location  # type: ignore[union-attr]
            for am in _refs_by_path(ref_repo, snap).values()
            if am is not None
            for i in np.flatnonzero(am.kind == VIRTUAL)
        }
        assert ours == set(session.all_virtual_chunk_locations())
    assert seen > 100
    # every manifest file in the repository decodes
    for f in (ref_repo / "manifests").iterdir():
        assert decode_manifest(read_flat(f)[1]).id == uncrockford(f.name)


def _reference_view(path: Path) -> dict[str, object]:
    """What the reference reports for every snapshot: data, chunk types, virtual locations."""
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(path)))
    view: dict[str, object] = {}
    for snap in snapshot_ids(repo)[:-1]:  # the initial snapshot has no root group
        session = repo.readonly_session(snapshot_id=snap)
        group = zarr.open_group(store=session.store, mode="r")
        for name, arr in sorted(group.arrays()):
            coords = sorted(chunk_coords(session, "/" + name))
            view[f"{snap}/{name}/types"] = [str(session.chunk_type("/" + name, c)) for c in coords]
            if name != "virt":
                view[f"{snap}/{name}/data"] = np.asarray(arr[...]).tolist()
        view[f"{snap}/virtual"] = sorted(session.all_virtual_chunk_locations())
    return view


def test_reference_reads_our_manifests(ref_repo: Path, tmp_path: Path) -> None:
    before = _reference_view(ref_repo)
    copy = copy_repo(ref_repo, tmp_path / "copy")
    sizes = {}
    for f in (copy / "manifests").iterdir():
        header, flat = read_flat(f)
        m = decode_manifest(flat)
        ours = encode_manifest(m.id, m.arrays)
        assert ours != flat  # our layout differs from the Rust builder's
        sizes[m.id] = write_flat(f, header, ours)
    # the snapshot records each manifest's exact size: patch it in place
    for f in (copy / "snapshots").iterdir():
        header, flat = read_flat(f)
        patched = bytearray(flat)
        for mid, at in manifest_size_slots(flat).items():
            patched[at : at + 8] = sizes[mid].to_bytes(8, "little")
        write_flat(f, header, bytes(patched))
    assert _reference_view(copy) == before


@st.composite
def single_kind_array(draw: st.DrawFn) -> tuple[int, dict[tuple[int, ...], ChunkPayload]]:
    """Refs of one kind (the encoder's block paths), inline ones often all of one size."""
    ndim = draw(st.integers(0, 4))
    coord = st.tuples(*[st.integers(0, draw(st.sampled_from([3, 2**32 - 1])))] * ndim)
    size = draw(st.none() | st.integers(0, 20))
    inline = st.binary(max_size=40) if size is None else st.binary(min_size=size, max_size=size)
    kind = draw(st.sampled_from([st.builds(InlinePayload, inline), payloads]))
    refs = draw(st.dictionaries(coord, kind, min_size=1, max_size=1 if ndim == 0 else 40))
    return ndim, refs


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(single_kind_array(), st.data())
def test_round_trip_single_kind_and_subsets(
    array: tuple[int, dict[tuple[int, ...], ChunkPayload]], data: st.DataObject
) -> None:
    ndim, refs = array
    natives = {c: p for c, p in refs.items() if isinstance(p, NativePayload)}
    for chosen in (refs, natives):
        if not chosen:
            continue
        am = ArrayManifest.from_payloads(b"k" * 8, ndim, list(chosen), list(chosen.values()))
        # a subset shares the blob with gaps between the kept payloads
        keep = data.draw(st.lists(st.booleans(), min_size=len(am), max_size=len(am)))
        sub = am.take(np.array(keep, dtype=bool)) if any(keep) else am
        for part in (am, sub):
            buf = encode_manifest(MID, [part])
            got = decode_full(buf).arrays[0]
            assert payloads_of(got) == payloads_of(part)
            assert encode_manifest(MID, [got]) == buf


def test_unknown_spec_version_is_refused() -> None:
    am = ArrayManifest.from_payloads(b"s" * 8, 1, [(1,)], [InlinePayload(b"x")])
    for spec in (0, 3):
        with pytest.raises(ValueError, match=f"unsupported spec version {spec}"):
            encode_manifest(MID, [am], spec)
