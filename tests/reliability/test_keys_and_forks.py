"""User mistakes get clear IcechunkErrors: chunks of missing arrays, ambiguous chunk keys, forks.

* A chunk written to an array that does not exist is an IcechunkError that is also the
  KeyError the reference raises.
* ``a/c/0001`` and ``a/c/+1`` would be a second name for chunk ``a/c/1`` (the reference takes
  them); they are refused and the message names the canonical key.
* A fork can never move its branch: amend, like commit and flush, refuses, also through a
  store view that forgot it belongs to a fork.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.core.buffer import default_buffer_prototype

import pyicechunk as icechunk
from pyicechunk._error_context import without_context
from pyicechunk._sync import sync
from pyicechunk.exceptions import IcechunkError

PROTO = default_buffer_prototype()


def buf(data: bytes) -> object:
    return PROTO.buffer.from_bytes(data)


@pytest.fixture
def session() -> icechunk.Session:
    repo = icechunk.Repository.create(icechunk.in_memory_storage())
    session = repo.writable_session("main")
    zarr.group(session.store).create_array("a", shape=(4,), chunks=(1,), dtype="i4")
    return session


def test_chunk_of_a_missing_array(session: icechunk.Session) -> None:
    with pytest.raises(IcechunkError) as info:
        sync(session.store.set("nope/c/0", buf(b"\x00" * 4)))
    assert isinstance(info.value, KeyError)  # code written for the reference still catches it
    assert "node not found at `/nope`" in str(info.value)
    assert "create the array" in info.value.message
    with pytest.raises(KeyError):
        sync(session.store.delete("nope/c/0"))
    assert not session.status().updated_chunks


def test_missing_metadata_size_is_a_key_error_too(session: icechunk.Session) -> None:
    with pytest.raises(IcechunkError) as info:
        sync(session.store.getsize("nope/zarr.json"))
    assert isinstance(info.value, KeyError)
    assert without_context(str(info.value)) == "node not found at `/nope`"
    error = pickle.loads(pickle.dumps(info.value))
    assert isinstance(error, KeyError) and error.message == info.value.message


@pytest.mark.parametrize(
    ("key", "canonical"), [("a/c/0001", "a/c/1"), ("a/c/+1", "a/c/1"), ("a/c/00", "a/c/0")]
)
def test_non_canonical_chunk_keys(session: icechunk.Session, key: str, canonical: str) -> None:
    store = session.store
    sync(store.set(canonical, buf(b"\x07\x00\x00\x00")))
    for call in (
        lambda: store.set(key, buf(b"\x01\x00\x00\x00")),
        lambda: store.get(key, PROTO),
        lambda: store.exists(key),
        lambda: store.delete(key),
    ):
        with pytest.raises(IcechunkError) as info:
            sync(call())
        assert info.value.message.startswith(f"invalid zarr key format `{key}`")
        assert f"`{canonical}`" in info.value.message
    # Nothing was written or deleted under the other name.
    assert bytes(sync(store.get(canonical, PROTO)).to_bytes()) == b"\x07\x00\x00\x00"


def test_canonical_keys_round_trip_through_listing(session: icechunk.Session) -> None:
    store = session.store
    array = zarr.open_array(store, path="a", mode="r+")
    array[:] = [1, 2, 3, 4]

    async def keys() -> list[str]:
        return [k async for k in store.list_prefix("a")]

    for key in sync(keys()):
        assert sync(store.exists(key)), key


@pytest.mark.parametrize("how", ["amend", "amend_async", "store view"])
def test_fork_cannot_amend(tmp_path: Path, how: str) -> None:
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(tmp_path)))
    session = repo.writable_session("main")
    zarr.group(session.store).create_array("a", shape=(2,), chunks=(1,), dtype="i4")[:] = [1, 2]
    tip = session.commit("first")
    fork = repo.writable_session("main").fork()
    fork = pickle.loads(pickle.dumps(fork))  # as a worker would receive it
    zarr.open_array(fork.store, path="a", mode="r+")[:] = [8, 9]
    # icechunk 2.x's refusals: commit and amend SessionStateError, flush IcechunkError.
    with pytest.raises(icechunk.SessionStateError, match="commits are not allowed on read-only or"):
        if how == "amend":
            fork.amend("replace the tip")
        elif how == "amend_async":
            sync(fork.amend_async("replace the tip"))
        else:
            # A store view made with with_read_only() is not marked as a fork's store; the
            # session it hands out still is one.
            view = fork.store.with_read_only(False)
            assert isinstance(view.session, icechunk.ForkSession)
            sync(view.session._core.commit("replace the tip", None, amend=True))
    for verb, error in (("commit", "commits are not allowed"), ("flush", "cannot flush a fork")):
        with pytest.raises(icechunk.IcechunkError, match=error):
            sync(getattr(fork._core, verb)("through the core", None))
    assert repo.lookup_branch("main") == tip
    reread = repo.readonly_session("main")
    np.testing.assert_array_equal(zarr.open_array(reread.store, path="a", mode="r")[:], [1, 2])
