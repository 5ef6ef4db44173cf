"""Expiration, garbage collection and manifest rewrites (API-1.1 behaviours 29-31).

Every test runs against the reference (icechunk 1.1.21) and against pyicechunk, so each
expectation is checked on the reference too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import zarr

INITIAL = "1CECHNKREP0F1RSTCMT0"
DEFAULT_SPLITTING = {
    "split_sizes": [
        [{"path_matches": {"regex": ".*"}}, [{"num_chunks": 4294967295, "condition": "Any"}]]
    ]
}


@pytest.fixture(params=["icechunk", "pyicechunk"])
def ic(request: pytest.FixtureRequest) -> ModuleType:
    return importlib.import_module(request.param)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _repo(ic: ModuleType, path: Path, inline: int | None = None) -> Any:
    config = (
        ic.RepositoryConfig(inline_chunk_threshold_bytes=inline) if inline is not None else None
    )
    # spec 1, the format icechunk 1.1.21 maintains
    spec = {"spec_version": 1} if ic.__name__ == "pyicechunk" else {}
    return ic.Repository.create(ic.local_filesystem_storage(str(path)), config, **spec)


def _commit_values(repo: Any, value: int, *, create: bool = False) -> str:
    """Write both chunks of array ``a`` (2 chunks of 4 int64) with ``value`` and commit."""
    session = repo.writable_session("main")
    if create:
        zarr.create_array(session.store, name="a", shape=(8,), chunks=(4,), dtype="i8")
    arr = zarr.open_array(session.store, path="a")
    arr[:] = np.arange(8) + value
    return str(session.commit(f"c{value}"))


def _ancestry(repo: Any, **ref: str) -> list[str]:
    return [s.id for s in repo.ancestry(**ref)]


def _files(path: Path, prefix: str) -> set[str]:
    folder = path / prefix
    return set(os.listdir(folder)) if folder.exists() else set()


def test_flushed_snapshot_is_garbage(ic: ModuleType, tmp_path: Path) -> None:
    repo = _repo(ic, tmp_path, inline=0)
    tip = _commit_values(repo, 0, create=True)
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a")[:4] = 7
    flushed = session.flush("detached", {"k": 1})
    assert repo.lookup_snapshot(flushed).parent_id == tip
    assert repo.lookup_branch("main") == tip
    assert flushed not in _ancestry(repo, branch="main")
    assert session.read_only and session.branch is None
    assert _ancestry(repo, snapshot_id=flushed) == [flushed, tip, INITIAL]

    summary = repo.garbage_collect(_now())
    assert summary.snapshots_deleted == 1
    assert summary.transaction_logs_deleted == 1
    assert summary.manifests_deleted == 1
    assert summary.chunks_deleted == 1  # the one chunk the flush rewrote
    assert flushed not in _files(tmp_path, "snapshots")
    with pytest.raises(ic.IcechunkError):
        repo.lookup_snapshot(flushed)
    np.testing.assert_array_equal(
        zarr.open_array(repo.readonly_session("main").store, path="a")[:], np.arange(8)
    )


def test_expire_cuts_history_and_keeps_refs(ic: ModuleType, tmp_path: Path) -> None:
    repo = _repo(ic, tmp_path)
    c = [_commit_values(repo, i, create=i == 0) for i in range(4)]
    repo.create_tag("t1", c[1])
    repo.create_branch("b0", c[0])
    cut = repo.lookup_snapshot(c[2]).written_at

    with pytest.raises(
        TypeError, match="argument 'older_than': expected a datetime with non-None tzinfo"
    ):
        repo.expire_snapshots(cut.replace(tzinfo=None))

    assert repo.expire_snapshots(cut) == {c[0], c[1]}
    assert _ancestry(repo, branch="main") == [c[3], c[2], INITIAL]
    assert repo.lookup_snapshot(c[2]).parent_id == INITIAL
    # Refs pointing at expired snapshots survive, with their own history cut too.
    assert repo.list_tags() == {"t1"}
    assert repo.list_branches() == {"main", "b0"}
    assert _ancestry(repo, tag="t1") == [c[1], INITIAL]
    assert _ancestry(repo, branch="b0") == [c[0], INITIAL]
    # Data at every remaining snapshot is intact.
    for i, sid in enumerate(c):
        arr = zarr.open_array(repo.readonly_session(snapshot_id=sid).store, path="a")
        np.testing.assert_array_equal(arr[:], np.arange(8) + i)

    # Nothing left to cut, but expired refs are still deleted when asked.
    assert (
        repo.expire_snapshots(cut, delete_expired_branches=True, delete_expired_tags=True) == set()
    )
    assert repo.list_tags() == set()
    assert repo.list_branches() == {"main"}


def test_expire_after_tip_reparents_the_tip(ic: ModuleType, tmp_path: Path) -> None:
    repo = _repo(ic, tmp_path)
    c = [_commit_values(repo, i, create=i == 0) for i in range(2)]
    expired = repo.expire_snapshots(_now(), delete_expired_branches=True)
    assert expired == {c[0], c[1]}
    assert _ancestry(repo, branch="main") == [c[1], INITIAL]
    assert repo.list_branches() == {"main"}


def test_expire_before_everything_changes_nothing(ic: ModuleType, tmp_path: Path) -> None:
    repo = _repo(ic, tmp_path)
    c = [_commit_values(repo, i, create=i == 0) for i in range(3)]
    before = {f: (tmp_path / "snapshots" / f).read_bytes() for f in _files(tmp_path, "snapshots")}
    assert repo.expire_snapshots(_now() - dt.timedelta(days=1)) == set()
    assert _ancestry(repo, branch="main") == [c[2], c[1], c[0], INITIAL]
    after = {f: (tmp_path / "snapshots" / f).read_bytes() for f in _files(tmp_path, "snapshots")}
    assert after == before


def _sizes(path: Path) -> dict[str, int]:
    return {
        f"{p}/{name}": (path / p / name).stat().st_size
        for p in ("chunks", "manifests", "snapshots", "transactions")
        for name in _files(path, p)
    }


def test_gc_counts_dry_run_and_second_run(ic: ModuleType, tmp_path: Path) -> None:
    repo = _repo(ic, tmp_path, inline=0)
    c = [_commit_values(repo, i, create=i == 0) for i in range(3)]
    assert repo.expire_snapshots(repo.lookup_snapshot(c[2]).written_at) == {c[0], c[1]}
    before = _sizes(tmp_path)

    with pytest.raises(TypeError, match="argument 'delete_object_older_than'"):
        repo.garbage_collect(_now().replace(tzinfo=None))

    now = _now()
    dry = repo.garbage_collect(now, dry_run=True)
    assert repo.garbage_collect(now, dry_run=True) == dry
    assert _sizes(tmp_path) == before
    assert (dry.chunks_deleted, dry.manifests_deleted, dry.snapshots_deleted) == (4, 2, 2)
    assert (dry.transaction_logs_deleted, dry.attributes_deleted) == (2, 0)

    real = repo.garbage_collect(now)
    assert real == dry
    after = _sizes(tmp_path)
    gone = set(before) - set(after)
    assert {k for k in gone if k.startswith("snapshots/")} == {
        f"snapshots/{c[0]}",
        f"snapshots/{c[1]}",
    }
    assert len(gone) == 10
    assert real.bytes_deleted == sum(before[k] for k in gone)

    again = repo.garbage_collect(_now())
    assert (
        again.bytes_deleted,
        again.chunks_deleted,
        again.manifests_deleted,
        again.snapshots_deleted,
        again.transaction_logs_deleted,
    ) == (0, 0, 0, 0, 0)
    arr = zarr.open_array(repo.readonly_session("main").store, path="a")
    np.testing.assert_array_equal(arr[:], np.arange(8) + 2)
    assert _ancestry(repo, branch="main") == [c[2], INITIAL]


def test_gc_keeps_new_objects_and_foreign_names(ic: ModuleType, tmp_path: Path) -> None:
    repo = _repo(ic, tmp_path, inline=0)
    c = [_commit_values(repo, i, create=i == 0) for i in range(3)]
    repo.expire_snapshots(repo.lookup_snapshot(c[2]).written_at)
    for prefix in ("chunks", "manifests", "snapshots", "transactions"):
        (tmp_path / prefix / "not-an-id").write_bytes(b"junk")
    # Everything unreachable is younger than this threshold: nothing goes.
    old = repo.garbage_collect(_now() - dt.timedelta(hours=1))
    assert (old.bytes_deleted, old.chunks_deleted, old.snapshots_deleted) == (0, 0, 0)
    summary = repo.garbage_collect(_now())
    assert summary.snapshots_deleted == 2
    for prefix in ("chunks", "manifests", "snapshots", "transactions"):
        assert "not-an-id" in _files(tmp_path, prefix)


def test_gc_keeps_everything_a_tag_or_branch_reaches(ic: ModuleType, tmp_path: Path) -> None:
    repo = _repo(ic, tmp_path, inline=0)
    c = [_commit_values(repo, i, create=i == 0) for i in range(3)]
    repo.create_tag("keep", c[0])
    repo.create_branch("side", c[1])
    before = _sizes(tmp_path)
    assert repo.garbage_collect(_now()).bytes_deleted == 0
    repo.delete_branch("side")
    summary = repo.garbage_collect(_now())
    assert (summary.snapshots_deleted, summary.chunks_deleted) == (0, 0)
    repo.delete_tag("keep")
    assert repo.garbage_collect(_now()).snapshots_deleted == 0  # still main's ancestors
    assert _sizes(tmp_path) == before
    for i, sid in enumerate(c):
        arr = zarr.open_array(repo.readonly_session(snapshot_id=sid).store, path="a")
        np.testing.assert_array_equal(arr[:], np.arange(8) + i)


def test_rewrite_manifests(ic: ModuleType, tmp_path: Path) -> None:
    repo = _repo(ic, tmp_path, inline=0)
    empty = repo.rewrite_manifests("nothing to rewrite", branch="main")
    assert repo.lookup_snapshot(empty).metadata == {"splitting_config": DEFAULT_SPLITTING}
    c = [_commit_values(repo, i, create=i == 0) for i in range(2)]
    session = repo.writable_session("main")
    g = zarr.open_group(session.store)
    b = g.create_array("b", shape=(3, 3), chunks=(1, 3), dtype="f4", fill_value=0)
    b[1:, :] = 2.5
    g.create_array("unwritten", shape=(4,), chunks=(2,), dtype="u1")
    tip = session.commit("add b")
    old = repo.lookup_snapshot(tip)

    new = repo.rewrite_manifests("rewrite", branch="main", metadata={"who": "me"})
    info = repo.lookup_snapshot(new)
    assert repo.lookup_branch("main") == new
    assert info.parent_id == tip
    assert info.message == "rewrite"
    assert info.metadata == {"who": "me", "splitting_config": DEFAULT_SPLITTING}
    assert {m.id for m in info.manifests}.isdisjoint({m.id for m in old.manifests})
    assert sorted(m.num_chunk_refs for m in info.manifests) == [2, 2]
    diff = repo.diff(from_snapshot_id=tip, to_snapshot_id=new)
    assert str(diff) == ""
    store = repo.readonly_session("main").store
    np.testing.assert_array_equal(zarr.open_array(store, path="a")[:], np.arange(8) + 1)
    np.testing.assert_array_equal(
        zarr.open_array(store, path="b")[:], [[0] * 3, [2.5] * 3, [2.5] * 3]
    )
    assert _ancestry(repo, branch="main")[:3] == [new, tip, c[1]]

    with pytest.raises(ic.IcechunkError, match="error rewriting manifests"):
        repo.rewrite_manifests("x", branch="nope")


def test_async_variants(ic: ModuleType, tmp_path: Path) -> None:
    repo = _repo(ic, tmp_path, inline=0)
    c = [_commit_values(repo, i, create=i == 0) for i in range(3)]
    cut = repo.lookup_snapshot(c[2]).written_at

    async def run() -> tuple[Any, ...]:
        expired = await repo.expire_snapshots_async(cut)
        summary = await repo.garbage_collect_async(_now())
        rewritten = await repo.rewrite_manifests_async("r", branch="main")
        return expired, summary, rewritten

    expired, summary, rewritten = asyncio.run(run())
    assert expired == {c[0], c[1]}
    assert summary.snapshots_deleted == 2
    assert _ancestry(repo, branch="main") == [rewritten, c[2], INITIAL]
