"""Ancestry from blocking code: no event loop where storage reads on the calling thread and the
history is at hand, and the same snapshots, fields and errors as the async walk either way."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import zarr

import pyicechunk as ic
from pyicechunk import _sync
from pyicechunk._logging import TRACE

T = TypeVar("T")


def _in_new_thread(work: Callable[[], T]) -> tuple[T, bool]:
    """What ``work`` returns in a fresh thread, and whether that thread made an event loop."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(work())
        except BaseException as e:  # handed to the test's thread
            out.append(e)
        out.append(getattr(_sync._own, "loop", None) is not None)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0], out[1]


def _fields(info: ic.SnapshotInfo) -> tuple[Any, ...]:
    manifests = [(m.id, m.size_bytes, m.num_chunk_refs) for m in info.manifests]
    return (info.id, info.parent_id, info.written_at, info.message, info.metadata, manifests)


def _repo(path: Path, spec: int, commits: int) -> ic.Repository:
    repo = ic.Repository.create(ic.local_filesystem_storage(str(path)), spec_version=spec)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(commits,), chunks=(1,), dtype="float64")
    session.commit("create array", metadata={"n": [1, {"x": "y"}]})
    for i in range(commits):
        session = repo.writable_session("main")
        zarr.open_array(session.store, path="a", mode="r+")[i] = i
        session.commit(f"step {i}", metadata={"step": i} if i % 2 else None)
    return repo


def _async_ancestry(repo: ic.Repository, **ref: str) -> list[ic.SnapshotInfo]:
    async def walk() -> list[ic.SnapshotInfo]:
        return [info async for info in repo.async_ancestry(**ref)]

    return asyncio.run(walk())


@pytest.mark.parametrize("spec", [1, 2])
def test_after_commits_here_the_walk_needs_no_event_loop(tmp_path: Path, spec: int) -> None:
    repo = _repo(tmp_path, spec, 64)  # more than one batch of the walk
    walked, made_loop = _in_new_thread(lambda: list(repo.ancestry(branch="main")))
    assert not made_loop
    assert len(walked) == 66
    awaited = _async_ancestry(repo, branch="main")
    assert [_fields(i) for i in walked] == [_fields(i) for i in awaited]
    assert walked[-2].metadata == {"n": [1, {"x": "y"}]} and walked[0].metadata == {"step": 63}
    # What a caller does to the metadata it got stays with it.
    walked[-2].metadata["n"].append(2)
    assert next(iter(repo.ancestry(branch="main"))).metadata == {"step": 63}
    assert list(repo.ancestry(branch="main"))[-2].metadata == {"n": [1, {"x": "y"}]}


@pytest.mark.parametrize("spec", [1, 2])
def test_a_reopened_repository_walks_the_same(tmp_path: Path, spec: int) -> None:
    made = _repo(tmp_path, spec, 5)
    expected = [_fields(i) for i in made.ancestry(branch="main")]
    repo = ic.Repository.open(ic.local_filesystem_storage(str(tmp_path)))
    # Spec 1 must read the snapshots it has not seen; spec 2 has them all in `repo`.
    walked, made_loop = _in_new_thread(lambda: list(repo.ancestry(branch="main")))
    assert made_loop == (spec == 1)
    assert [_fields(i) for i in walked] == expected
    repo.create_tag("t", walked[2].id)
    assert [_fields(i) for i in repo.ancestry(tag="t")] == expected[2:]
    assert [_fields(i) for i in repo.ancestry(snapshot_id=walked[1].id)] == expected[1:]


@pytest.mark.parametrize("spec", [1, 2])
def test_a_missing_branch_is_the_same_error(tmp_path: Path, spec: int) -> None:
    repo = _repo(tmp_path, spec, 1)
    with pytest.raises(ic.IcechunkError) as blocking:
        list(repo.ancestry(branch="nope"))
    with pytest.raises(ic.IcechunkError) as awaited:
        _async_ancestry(repo, branch="nope")
    # The same message (the context below it names the functions on the way).
    assert str(blocking.value).split("\n")[0] == str(awaited.value).split("\n")[0]
    assert blocking.value.kind == awaited.value.kind


def test_a_read_on_the_calling_thread_logs_one_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = ic.local_filesystem_storage(str(tmp_path)).backend
    asyncio.run(backend.put("a/one", b"abc"))
    caplog.set_level(TRACE, logger="pyicechunk.storage")
    now = backend.get_versioned_now("a/one")
    awaited = asyncio.run(backend.get_versioned("a/one"))
    assert now is not None and now[0] == awaited[0] == b"abc" and now[1] == awaited[1]
    records = [r.getMessage() for r in caplog.records if r.name == "pyicechunk.storage"]
    assert records == ["get_object, key: a/one"] * 2
    assert caplog.records[0].levelno == TRACE
    assert logging.getLogger("pyicechunk.storage").isEnabledFor(TRACE)
