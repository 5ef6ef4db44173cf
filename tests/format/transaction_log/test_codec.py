"""The transaction-log flatbuffer: round trips, layout, refusals and damage; both ways with
icechunk 1.1.21."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import icechunk
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.transaction_log import (
    TransactionLog,
    decode_transaction_log,
    encode_transaction_log,
)

from .._refrepo import (
    copy_repo,
    crockford,
    read_flat,
    snapshot_ids,
    snapshot_nodes,
    uncrockford,
    write_flat,
)

ids8 = st.lists(st.binary(min_size=8, max_size=8), unique=True, max_size=5)


@st.composite
def logs(draw: st.DrawFn) -> TransactionLog:
    chunks = {}
    for nid in draw(ids8):
        ndim = draw(st.integers(0, 4))
        n = draw(st.integers(0, 1 if ndim == 0 else 20))
        coords = draw(
            st.lists(
                st.tuples(*[st.integers(0, 2**32 - 1)] * ndim), min_size=n, max_size=n, unique=True
            )
        )
        chunks[nid] = np.array(coords, dtype=np.uint32).reshape(n, ndim)
    return TransactionLog(
        draw(st.binary(min_size=12, max_size=12)),
        draw(ids8),
        draw(ids8),
        draw(ids8),
        draw(ids8),
        draw(ids8),
        draw(ids8),
        chunks,
    )


@settings(max_examples=60, deadline=None)
@given(logs())
def test_round_trip(tx: TransactionLog) -> None:
    buf = encode_transaction_log(tx)
    assert buf[4:8] == b"Ichk"
    got = decode_transaction_log(buf)
    assert got.id == tx.id
    for name in (
        "new_groups",
        "new_arrays",
        "deleted_groups",
        "deleted_arrays",
        "updated_arrays",
        "updated_groups",
    ):
        assert getattr(got, name) == sorted(getattr(tx, name))
    assert list(got.updated_chunks) == sorted(tx.updated_chunks)
    for nid, coords in tx.updated_chunks.items():
        assert sorted(map(tuple, got.updated_chunks[nid].tolist())) == sorted(
            map(tuple, coords.tolist())
        )
        assert got.updated_chunks[nid].tolist() == sorted(got.updated_chunks[nid].tolist())
        if len(coords):
            assert got.updated_chunks[nid].shape == coords.shape


def test_slots_of_updated_arrays_and_groups() -> None:
    """Spec §6: slot 5 is updated_arrays, slot 6 updated_groups (the .fbs comments are swapped)."""
    tx = TransactionLog(bytes(12), updated_arrays=[b"A" * 8], updated_groups=[b"G" * 8])
    buf = encode_transaction_log(tx)
    table = int.from_bytes(buf[0:4], "little")
    vt = table - int.from_bytes(buf[table : table + 4], "little", signed=True)

    def field(slot: int) -> bytes:
        at = table + int.from_bytes(buf[vt + 4 + 2 * slot : vt + 6 + 2 * slot], "little")
        vec = at + int.from_bytes(buf[at : at + 4], "little")
        return buf[vec + 4 : vec + 12]

    assert field(5) == b"A" * 8 and field(6) == b"G" * 8


def test_large_updated_chunks_is_fast() -> None:
    coords = np.stack(np.unravel_index(np.arange(100_000), (400, 250)), axis=1)[::-1]
    tx = TransactionLog(bytes(12), updated_chunks={b"n" * 8: coords})
    t = time.perf_counter()
    got = decode_transaction_log(encode_transaction_log(tx))
    assert time.perf_counter() - t < 1.0
    assert (got.updated_chunks[b"n" * 8] == coords[::-1]).all()


def test_rejects_bad_input_and_damage() -> None:
    with pytest.raises(IcechunkError, match="12 bytes"):
        encode_transaction_log(TransactionLog(b"short"))
    with pytest.raises(IcechunkError, match="8 bytes"):
        encode_transaction_log(TransactionLog(bytes(12), new_groups=[b"x"]))
    tx = TransactionLog(
        bytes(range(12)),
        new_groups=[b"g" * 8],
        deleted_arrays=[b"d" * 8, b"c" * 8],
        updated_chunks={b"a" * 8: np.array([[1, 2], [0, 5]]), b"b" * 8: np.zeros((0, 3))},
    )
    buf = encode_transaction_log(tx)
    for cut in range(len(buf) - 1):
        with pytest.raises(IcechunkError):
            decode_transaction_log(buf[:cut])
    rng = np.random.default_rng(3)
    for _ in range(400):
        damaged = bytearray(buf)
        for pos in rng.integers(0, len(buf), size=rng.integers(1, 4)):
            damaged[pos] = int(rng.integers(0, 256))
        try:
            decode_transaction_log(bytes(damaged))
        except IcechunkError:
            pass


def _diffs(path: Path) -> list[dict[str, object]]:
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(path)))
    snaps = snapshot_ids(repo)
    out = []
    for child, parent in itertools.pairwise(snaps):
        d = repo.diff(from_snapshot_id=parent, to_snapshot_id=child)
        out.append(
            {
                name: getattr(d, name)
                for name in (
                    "new_groups",
                    "new_arrays",
                    "deleted_groups",
                    "deleted_arrays",
                    "updated_groups",
                    "updated_arrays",
                )
            }
            | {"updated_chunks": {k: sorted(map(tuple, v)) for k, v in d.updated_chunks.items()}}
        )
    return out


def test_decode_reference_transaction_logs(ref_repo: Path) -> None:
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(ref_repo)))
    snaps = snapshot_ids(repo)
    for (child, parent), diff in zip(itertools.pairwise(snaps), _diffs(ref_repo), strict=True):
        tx = decode_transaction_log(read_flat(ref_repo / "transactions" / child)[1])
        assert tx.id == uncrockford(child)
        paths = {}
        for snap in (child, parent):
            for p, (nid, _, _) in snapshot_nodes(
                read_flat(ref_repo / "snapshots" / snap)[1]
            ).items():
                paths[nid] = p
        ours: dict[str, object] = {
            name: {paths[n] for n in getattr(tx, name)}
            for name in (
                "new_groups",
                "new_arrays",
                "deleted_groups",
                "deleted_arrays",
                "updated_groups",
                "updated_arrays",
            )
        }
        ours["updated_chunks"] = {
            paths[n]: sorted(map(tuple, c.tolist())) for n, c in tx.updated_chunks.items()
        }
        assert ours == diff
        assert list(tx.updated_chunks) == sorted(tx.updated_chunks)
    assert len(list((ref_repo / "transactions").iterdir())) == len(snaps) - 1


def test_reference_reads_our_transaction_logs(ref_repo: Path, tmp_path: Path) -> None:
    before = _diffs(ref_repo)
    assert any(d["updated_chunks"] for d in before)
    copy = copy_repo(ref_repo, tmp_path / "copy")
    for f in (copy / "transactions").iterdir():
        header, flat = read_flat(f)
        ours = encode_transaction_log(decode_transaction_log(flat))
        assert ours != flat
        write_flat(f, header, ours)
    assert _diffs(copy) == before
    assert crockford(uncrockford(f.name)) == f.name


def test_unknown_spec_version_is_refused() -> None:
    for spec in (0, 3):
        with pytest.raises(ValueError, match=f"unsupported spec version {spec}"):
            encode_transaction_log(TransactionLog(b"\x01" * 12), spec)
