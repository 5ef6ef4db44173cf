"""A snapshot whose parent chain loops is refused by every walker of history, never looped on.

Each test gives one snapshot of a real local repository a parent that leads back into its own
history, then runs one operation that walks parents. Every such operation must stop with an
IcechunkError that names the snapshots of the loop; a watchdog turns a regression (a walk that
never ends) into a failure instead of a hung test run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zarr
from reliability_helpers import linear_history, open_repo, rewrite_snapshot, sid

import pyicechunk as icechunk
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.ids import encode_id

LIMIT_SECONDS = 30


def run_bounded(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a thread; fail the test if it has not finished in time."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as e:
            outcome["error"] = e

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(LIMIT_SECONDS)
    if worker.is_alive():
        pytest.fail(f"still running after {LIMIT_SECONDS} s: the history walk does not end")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


@pytest.fixture
def looped(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """main: root <- c1 <- c2 <- c3, then c1's parent is set to c3 (loop c3 -> c2 -> c1 -> c3)."""
    path = tmp_path / "repo"
    ids = linear_history(path, 3)
    rewrite_snapshot(path, ids[1], parent_id=sid(ids[3]))
    yield path, ids


def assert_loop_error(error: BaseException, ids: list[str]) -> None:
    assert isinstance(error, IcechunkError)
    message = error.message
    assert "loops" in message
    for snapshot in ids[1:]:
        assert snapshot in message, message


def expect_loop(fn: Callable[[], Any], ids: list[str]) -> None:
    with pytest.raises(IcechunkError) as info:
        run_bounded(fn)
    assert_loop_error(info.value, ids)


def test_ancestry(looped: tuple[Path, list[str]]) -> None:
    path, ids = looped
    expect_loop(lambda: list(open_repo(path).ancestry(branch="main")), ids)


def test_async_ancestry(looped: tuple[Path, list[str]]) -> None:
    path, ids = looped

    async def collect() -> list[Any]:
        return [s async for s in open_repo(path).async_ancestry(snapshot_id=ids[3])]

    expect_loop(lambda: asyncio.run(collect()), ids)


def test_as_of(looped: tuple[Path, list[str]]) -> None:
    path, ids = looped
    long_ago = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    expect_loop(lambda: open_repo(path).readonly_session("main", as_of=long_ago), ids)


def test_diff(looped: tuple[Path, list[str]]) -> None:
    path, ids = looped
    repo = open_repo(path)
    expect_loop(lambda: repo.diff(from_snapshot_id=ids[0], to_branch="main"), ids)


def test_expire_snapshots(looped: tuple[Path, list[str]]) -> None:
    path, ids = looped
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    expect_loop(lambda: open_repo(path).expire_snapshots(later), ids)


def test_garbage_collect(looped: tuple[Path, list[str]]) -> None:
    path, ids = looped
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    expect_loop(lambda: open_repo(path).garbage_collect(later, dry_run=True), ids)


def test_chunk_storage_stats(looped: tuple[Path, list[str]]) -> None:
    path, ids = looped
    expect_loop(lambda: open_repo(path).chunk_storage_stats(), ids)


def test_rebase(tmp_path: Path) -> None:
    """The loop sits between the branch tip and the session's base, so rebase meets it."""
    path = tmp_path / "repo"
    linear_history(path, 2)
    behind = open_repo(path).writable_session("main")  # based on main's tip
    ahead = open_repo(path).writable_session("main")  # its own caches: behind's see no tip yet
    zarr.open_array(ahead.store, path="a", mode="r+")[:] = 7
    tip = ahead.commit("moves main")
    # tip's parent is ids[2]; make it the tip itself: the walk from the tip never reaches ids[2].
    rewrite_snapshot(path, tip, parent_id=sid(tip))
    zarr.open_array(behind.store, path="a", mode="r+")[0] = 9
    with pytest.raises(IcechunkError) as info:
        run_bounded(lambda: behind.commit("conflicts", rebase_with=icechunk.BasicConflictSolver()))
    assert "loops" in info.value.message and tip in info.value.message


def test_loop_through_a_self_parent(tmp_path: Path) -> None:
    """A snapshot that is its own parent is the shortest loop."""
    path = tmp_path / "repo"
    ids = linear_history(path, 2)
    rewrite_snapshot(path, ids[2], parent_id=sid(ids[2]))
    with pytest.raises(IcechunkError) as info:
        run_bounded(lambda: list(open_repo(path).ancestry(branch="main")))
    assert f"the parent of snapshot {ids[2]} is {ids[2]}" in info.value.message


def test_shared_history_is_not_a_loop(tmp_path: Path) -> None:
    """Branches that share ancestors are walked once each, without a false alarm."""
    path = tmp_path / "repo"
    ids = linear_history(path, 2)
    repo = open_repo(path)
    repo.create_branch("dev", ids[1])
    repo.create_tag("t", ids[2])
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    assert repo.garbage_collect(later, dry_run=True).snapshots_deleted == 0
    assert [s.id for s in repo.ancestry(branch="dev")] == [ids[1], ids[0]]


def test_missing_parent_names_the_child(tmp_path: Path) -> None:
    path = tmp_path / "repo"
    ids = linear_history(path, 2)
    ghost = encode_id(bytes(range(12)))
    rewrite_snapshot(path, ids[1], parent_id=sid(ghost))
    with pytest.raises(IcechunkError) as info:
        run_bounded(lambda: list(open_repo(path).ancestry(branch="main")))
    assert f"snapshot not found: `{ghost}`, the parent of snapshot {ids[1]}" in (info.value.message)
