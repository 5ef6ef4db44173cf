"""Spec-2 repositories on storage that fails: errors, timeouts and lost acknowledgements.

Every change of a spec-2 repository is one compare-and-swap of ``repo`` after a copy of its
old bytes to ``overwritten/``. Whatever fails, and wherever:

* every acknowledged commit and ref operation is there, and in the ops log exactly once (a
  commit or ref operation that raised may have landed, also exactly once);
* the repository always opens, ``repo`` never lists a snapshot whose file is missing and every
  landed commit is complete (its chunks and nothing of later commits);
* ``overwritten/`` is never needed: each copy an entry names is the state that entry produced,
  and a copy left by a failed update is unused but decodes;
* a conditional write of ``repo`` that landed with its response lost (once, or resent and
  failing its precondition against itself) is our own success, neither retried into a second
  ops-log entry nor reported as a conflict: its write id says so, or, when another writer
  overtook it before the id was read back or the id cannot be read, ``repo`` itself (it names
  our copy of the state we replaced); a real conflict still is one, and when neither can be
  read the error says so, naming ``repo``.

Runs on memory, local and S3 (moto) storage through :class:`FaultyBackend`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import numpy as np
import pytest
import zarr
from _spec2_checks import RepoReport, check_repo

import pyicechunk
from pyicechunk.config import RepoUpdateRetryConfig, StorageRetriesSettings
from pyicechunk.format.ids import encode_id
from pyicechunk.format.repo_info import (
    BranchCreated,
    BranchDeleted,
    ConfigChanged,
    NewCommit,
    TagCreated,
    TagDeleted,
)
from pyicechunk.storage import ConditionalWrite, Storage, StorageBackend
from pyicechunk.testing.faults import FaultPlan, FaultyBackend, InjectedFault

N_COMMITS = 24
CHUNK = 4
RATES = {  # about a third of the operations fail somewhere
    "get": 0.04,
    "get_versioned": 0.08,
    "head": 0.05,
    "exists": 0.05,
    "list": 0.05,
    "put": 0.05,
    "put_if_version": 0.2,
    "make_durable": 0.08,
    "delete": 0.2,
}
FAILURES = (pyicechunk.IcechunkError, OSError)
KINDS = ["memory", "local", "s3"]


def _values(i: int) -> np.ndarray:
    return np.arange(CHUNK, dtype="i8") + 1000 * (i + 1)


def _create(faulty: FaultyBackend) -> pyicechunk.Repository:
    faulty.enabled = False
    repo = pyicechunk.Repository.create(Storage.from_backend(faulty), spec_version=2)
    session = repo.writable_session("main")
    root = zarr.open_group(session.store, mode="w")
    root.create_array("a", shape=(N_COMMITS * CHUNK,), chunks=(CHUNK,), dtype="i8", fill_value=-1)
    session.commit("setup")
    return repo


def _logged(report: RepoReport, kind: type) -> list[Any]:
    return [e.action for e in report.ops_log if isinstance(e.action, kind)]


class _Run:
    """Commits and ref operations through a faulty backend, with what was acknowledged."""

    def __init__(self, faulty: FaultyBackend) -> None:
        self.faulty = faulty
        self.repo: Any = _create(faulty)
        self.commits: dict[str, int] = {}  # acknowledged snapshot id -> commit number
        self.raised: list[int] = []
        self.tags: dict[str, str] = {}  # acknowledged tag -> target
        self.tags_tried: set[str] = set()
        self.branches_done: Counter[str] = Counter()
        self.unused_backups = 0

    def _try(self, fn: Any) -> bool:
        try:
            if self.repo is None:  # as a user would, after a failure
                self.repo = pyicechunk.Repository.open(Storage.from_backend(self.faulty))
            fn()
        except FAILURES:
            # The repository opens without faults after every failure, and holds together.
            pyicechunk.Repository.open(Storage.from_backend(self.faulty.inner)).list_branches()
            report = asyncio.run(check_repo(self.faulty.inner))
            self.unused_backups = len(report.unused_backups)
            self.repo = None
            return False
        return True

    def commit(self, i: int) -> None:
        def go() -> None:
            session = self.repo.writable_session("main")
            arr = zarr.open_array(session.store, path="a", mode="r+")
            arr[i * CHUNK : (i + 1) * CHUNK] = _values(i)
            arr.attrs["last"] = i
            self.commits[session.commit(f"c{i}")] = i

        if not self._try(go):
            self.raised.append(i)

    def ref_round(self, i: int) -> None:
        tag, branch = f"t{i}", f"b{i}"
        self.tags_tried.add(tag)

        def tag_it() -> None:
            target = self.repo.lookup_branch("main")
            self.repo.create_tag(tag, target)
            self.tags[tag] = target

        self._try(tag_it)
        if self._try(lambda: self.repo.create_branch(branch, self.repo.lookup_branch("main"))):
            self.branches_done["created"] += 1
            if self._try(lambda: self.repo.delete_branch(branch)):
                self.branches_done["deleted"] += 1

    def run(self) -> None:
        self.faulty.enabled = True
        for i in range(N_COMMITS):
            self.commit(i)
            if i % 4 == 3:
                self.ref_round(i)
        self.faulty.enabled = False


def _verify(run: _Run) -> RepoReport:
    inner = run.faulty.inner
    repo = pyicechunk.Repository.open(Storage.from_backend(inner))
    history = list(repo.ancestry(branch="main"))
    assert [h.message for h in history[-2:]] == ["setup", "Repository initialized"]
    landed = [int(s.message[1:]) for s in reversed(history[:-2])]
    assert landed == sorted(landed)
    assert {s.id for s in history} >= set(run.commits)
    tip = zarr.open_array(repo.readonly_session("main").store, path="a", mode="r")
    expected = np.full(N_COMMITS * CHUNK, -1, dtype="i8")
    for j in landed:
        expected[j * CHUNK : (j + 1) * CHUNK] = _values(j)
    np.testing.assert_array_equal(tip[:], expected)
    for snap in history[:-2]:
        i = int(snap.message[1:])
        assert run.commits.get(snap.id, i) == i
        arr = zarr.open_array(repo.readonly_session(snapshot_id=snap.id).store, path="a", mode="r")
        assert arr.attrs["last"] == i
        np.testing.assert_array_equal(arr[i * CHUNK : (i + 1) * CHUNK], _values(i))
        assert (arr[(i + 1) * CHUNK :] == -1).all()

    report = asyncio.run(check_repo(inner))
    # One NewCommit per landed commit, none for a commit that did not land, none twice.
    assert [encode_id(a.new_snap_id) for a in _logged(report, NewCommit)] == [
        h.id for h in history[:-1]
    ]
    tags = repo.list_tags()
    assert set(run.tags) <= tags <= run.tags_tried
    assert all(repo.lookup_tag(t) == target for t, target in run.tags.items())
    assert Counter(a.name for a in _logged(report, TagCreated)) == Counter(tags)
    # A branch whose creation raised may exist, once; deleting it may have landed too.
    created = Counter(a.name for a in _logged(report, BranchCreated))
    deleted = Counter(a.name for a in _logged(report, BranchDeleted))
    assert max(created.values(), default=0) <= 1 and max(deleted.values(), default=0) <= 1
    assert sum(created.values()) >= run.branches_done["created"]
    assert sum(deleted.values()) >= run.branches_done["deleted"]
    assert repo.list_branches() == {"main"} | (set(created) - set(deleted))
    assert not _logged(report, TagDeleted)
    return report


@pytest.mark.parametrize(
    ("kind", "fault", "seed"),
    [
        ("memory", "error", 1),
        ("memory", "oserror", 2),
        ("local", "error", 3),
        ("local", "timeout", 4),
        ("s3", "error", 5),
        ("s3", "timeout", 6),
    ],
)
def test_v2_updates_land_completely_or_raise(
    new_storage: Any, kind: str, fault: Any, seed: int
) -> None:
    inner = new_storage(kind)._backend
    plan = FaultPlan(seed=seed, rates=RATES, kind=fault, lost_ack=0.5, delay=0.01)
    faulty = FaultyBackend(inner, plan)
    run = _Run(faulty)
    run.run()
    assert faulty.injected["put_if_version"] > 0
    assert 0 < len(run.raised) < N_COMMITS
    assert len(run.commits) + len(run.raised) == N_COMMITS
    _verify(run)


# -- lost responses to the conditional write of repo --------------------------------------------

RESEND = pytest.mark.parametrize("resend", [False, True], ids=["lost", "lost-then-resent"])


def _lossy(new_storage: Any, kind: str, resend: bool, **rates: float) -> FaultyBackend:
    faulty = FaultyBackend(
        new_storage(kind)._backend, FaultPlan(rates=rates, lost_ack=1.0, resend=resend)
    )
    faulty.enabled = False
    return faulty


@pytest.mark.parametrize("kind", KINDS)
@RESEND
def test_v2_every_update_with_lost_response_lands_once(
    new_storage: Any, kind: str, resend: bool
) -> None:
    faulty = _lossy(new_storage, kind, resend, put_if_version=1.0)
    repo = _create(faulty)
    base = repo.lookup_branch("main")
    faulty.enabled = True
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a", mode="r+")[:CHUNK] = _values(0)
    sid = session.commit("c0")
    repo.create_tag("v1", sid)
    repo.create_branch("dev", base)
    repo.delete_branch("dev")
    repo.delete_tag("v1")
    repo = repo.reopen(config=pyicechunk.RepositoryConfig(inline_chunk_threshold_bytes=11))
    repo.save_config()
    assert faulty.injected["put_if_version"] == 6  # every one of them lost its response
    faulty.enabled = False

    again = pyicechunk.Repository.open(Storage.from_backend(faulty))
    assert [s.message for s in again.ancestry(branch="main")] == [
        "c0",
        "setup",
        "Repository initialized",
    ]
    assert again.list_branches() == {"main"} and again.list_tags() == set()
    cfg = pyicechunk.Repository.fetch_config(Storage.from_backend(faulty))
    assert cfg is not None and cfg.inline_chunk_threshold_bytes == 11
    report = asyncio.run(check_repo(faulty.inner))
    assert [type(e.action) for e in report.ops_log[:6]] == [
        ConfigChanged,
        TagDeleted,
        BranchDeleted,
        BranchCreated,
        TagCreated,
        NewCommit,
    ]
    assert len(report.ops_log) == 8  # and RepoInitialized, NewCommit of setup
    assert not report.unused_backups


class _Race(FaultyBackend):
    """Loses every response, and lets another writer commit just before our swap of repo."""

    def __init__(self, inner: StorageBackend, plan: FaultPlan) -> None:
        super().__init__(inner, plan)
        self.race: dict[str, Any] = {}

    async def _write_conditionally(self, write: ConditionalWrite) -> bool:
        other = self.race.pop("other", None)
        if other is not None and write.key == "repo":
            self.race["theirs"] = await other.commit_async("theirs")
        return await super()._write_conditionally(write)


@pytest.mark.parametrize("kind", KINDS)
@RESEND
def test_v2_concurrent_commit_still_conflicts(new_storage: Any, kind: str, resend: bool) -> None:
    inner = new_storage(kind)._backend
    race = _Race(inner, FaultPlan(rates={"put_if_version": 1.0}, lost_ack=1.0, resend=resend))
    repo = _create(race)
    mine = repo.writable_session("main")
    zarr.open_array(mine.store, path="a", mode="r+")[:CHUNK] = _values(1)
    other = pyicechunk.Repository.open(Storage.from_backend(inner)).writable_session("main")
    zarr.open_array(other.store, path="a", mode="r+")[:CHUNK] = _values(2)
    race.race["other"] = other
    race.enabled = True
    # repo moved under our swap, so the stamp read back is not ours: resent, the failed
    # precondition stands, repo is read again and the branch has moved (a conflict); lost
    # once, the transport error stands. Nothing of ours landed either way.
    with pytest.raises(pyicechunk.ConflictError if resend else InjectedFault):
        mine.commit("mine")
    race.enabled = False
    after = pyicechunk.Repository.open(Storage.from_backend(inner))
    assert after.lookup_branch("main") == race.race["theirs"]
    report = asyncio.run(check_repo(inner))
    newest = next(a for a in _logged(report, NewCommit))
    assert encode_id(newest.new_snap_id) == race.race["theirs"]
    assert len(report.ops_log) == 3
    # A failed swap deletes its copy; one that raised leaves it, unused (it may have landed).
    assert len(report.unused_backups) == (0 if resend else 1)


class _Blind(FaultyBackend):
    """Loses every answer to a swap of repo, fails every stamp read-back and, once ``blind``
    is set, every read of repo after a swap. ``state`` is shared with ``with_settings`` twins."""

    def __init__(self, inner: StorageBackend, plan: FaultPlan) -> None:
        super().__init__(inner, plan)
        self.state: dict[str, bool] = {"blind": False, "swapped": False}

    async def _write_conditionally(self, write: ConditionalWrite) -> bool:
        self.state["swapped"] = True
        return await super()._write_conditionally(write)

    async def get_versioned(self, key: str) -> tuple[bytes, Any]:
        if self.state["blind"] and self.state["swapped"] and key == "repo":
            raise InjectedFault("storage error: injected failure reading repo")
        return await super().get_versioned(key)


@pytest.mark.parametrize("kind", KINDS)
def test_v2_failed_read_back(new_storage: Any, kind: str) -> None:
    faulty = _Blind(
        new_storage(kind)._backend,
        FaultPlan(rates={"put_if_version": 1.0, "head": 1.0}, lost_ack=1.0, resend=True),
    )
    repo = _create(faulty)
    tip = repo.lookup_branch("main")
    faulty.enabled = True
    # The stamp cannot be read back, but repo names our copy: the write landed, a success.
    repo.create_tag("v1", tip)
    # Neither can be read: an error that says so, naming repo, and no guess either way.
    faulty.state["blind"] = True
    faulty.state["swapped"] = False
    with pytest.raises(pyicechunk.IcechunkError, match="reading the object back") as info:
        repo.create_tag("v2", tip)
    assert "of repo " in info.value.message
    faulty.enabled = False
    faulty.state["blind"] = False
    # it did land; the error claimed nothing else, and repo holds together
    assert pyicechunk.Repository.open(Storage.from_backend(faulty)).list_tags() == {"v1", "v2"}
    report = asyncio.run(check_repo(faulty.inner))
    assert [type(e.action) for e in report.ops_log[:3]] == [TagCreated, TagCreated, NewCommit]


class _Overtaken(FaultyBackend):
    """Loses the response to our swap of repo; another writer updates repo before our stamp
    is read back, so the stamp found is theirs although our write landed.

    ``other`` is shared with the copies that ``with_settings`` makes.
    """

    def __init__(self, inner: StorageBackend, plan: FaultPlan) -> None:
        super().__init__(inner, plan)
        self.other: dict[str, Any] = {}

    async def _read_write_id(self, key: str) -> str | None:
        other = self.other.pop("update", None)
        if other is not None and key == "repo":
            await other()
        return await super()._read_write_id(key)


@pytest.mark.parametrize("kind", KINDS)
@RESEND
def test_v2_lost_response_then_overtaken_is_still_ours(
    new_storage: Any, kind: str, resend: bool
) -> None:
    inner = new_storage(kind)._backend
    plan = FaultPlan(rates={"put_if_version": 1.0}, lost_ack=1.0, resend=resend)
    faulty = _Overtaken(inner, plan)
    repo = _create(faulty)
    base = repo.lookup_branch("main")
    other = pyicechunk.Repository.open(Storage.from_backend(inner))
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a", mode="r+")[:CHUNK] = _values(0)
    faulty.other["update"] = lambda: other.create_tag_async("theirs", base)
    faulty.enabled = True
    # Our swap landed; the stamp read back is the other writer's. repo itself still says the
    # write was ours (it names our copy of the state before it): a success, not a conflict.
    sid = session.commit("mine")
    faulty.other["update"] = lambda: other.create_branch_async("theirs", base)
    repo.create_tag("mine", sid)
    faulty.enabled = False
    again = pyicechunk.Repository.open(Storage.from_backend(inner))
    assert again.lookup_branch("main") == sid
    assert again.list_tags() == {"theirs", "mine"} and again.list_branches() == {"main", "theirs"}
    report = asyncio.run(check_repo(inner))
    assert [type(e.action) for e in report.ops_log[:4]] == [
        BranchCreated,
        TagCreated,
        TagCreated,
        NewCommit,
    ]
    assert len(report.ops_log) == 6
    assert not report.unused_backups


@pytest.mark.parametrize("kind", KINDS)
@RESEND
def test_v2_create_with_lost_response(new_storage: Any, kind: str, resend: bool) -> None:
    faulty = _lossy(new_storage, kind, resend, put_if_absent=1.0)
    faulty.enabled = True
    # repo is created only if absent; the answer is lost, the write id says it was ours
    repo = pyicechunk.Repository.create(Storage.from_backend(faulty), spec_version=2)
    assert faulty.injected["put_if_absent"] == 1
    faulty.enabled = False
    assert repo.list_branches() == {"main"}
    report = asyncio.run(check_repo(faulty.inner))
    assert len(report.ops_log) == 1 and not report.backups
    # a second create is refused: there is a repository now, and it is not ours to replace
    with pytest.raises(pyicechunk.IcechunkError):
        pyicechunk.Repository.create(Storage.from_backend(faulty), spec_version=2)


class _AlwaysBeaten(FaultyBackend):
    """Another writer updates repo just before each of our swaps of it."""

    def __init__(self, inner: StorageBackend, plan: FaultPlan) -> None:
        super().__init__(inner, plan)
        self.other: dict[str, Any] = {}

    async def _write_conditionally(self, write: ConditionalWrite) -> bool:
        other = self.other.get("repo")
        if other is not None and write.key == "repo":
            self.other["n"] = n = self.other.get("n", 0) + 1
            await other.create_tag_async(f"theirs-{n}", other.lookup_branch("main"))
        return await super()._write_conditionally(write)


@pytest.mark.parametrize("kind", ["memory", "local"])
def test_v2_update_attempts_exhausted(new_storage: Any, kind: str) -> None:
    inner = new_storage(kind)._backend
    beaten = _AlwaysBeaten(inner, FaultPlan())
    retries = StorageRetriesSettings(max_tries=7, initial_backoff_ms=1, max_backoff_ms=2)
    config = pyicechunk.RepositoryConfig(repo_update_retries=RepoUpdateRetryConfig(default=retries))
    repo = pyicechunk.Repository.create(Storage.from_backend(beaten), config, spec_version=2)
    beaten.other["repo"] = pyicechunk.Repository.open(Storage.from_backend(inner))
    # 5 immediate retries, then the 7 - 5 = 2 with backoff: 8 attempts, all beaten
    with pytest.raises(pyicechunk.IcechunkError, match="after 8 attempts") as info:
        repo.create_tag("mine", repo.lookup_branch("main"))
    assert info.value.kind == "update-attempts-exhausted"
    assert beaten.other["n"] == 8
    del beaten.other["repo"]
    assert repo.list_tags() == {f"theirs-{n}" for n in range(1, 9)}
    report = asyncio.run(check_repo(inner))
    assert len(report.ops_log) == 9 and not report.unused_backups


@RESEND
def test_v2_lost_response_without_write_ids(new_storage: Any, resend: bool) -> None:
    # With unsafe_use_metadata off nothing is stamped (spec 1 then reads a resent tag write as
    # "tag already exists"); repo still names our copy, so the swap is recognised all the same.
    faulty = _lossy(new_storage, "s3", resend, put_if_version=1.0)
    repo = _create(faulty)
    config = pyicechunk.RepositoryConfig(
        storage=pyicechunk.StorageSettings(unsafe_use_metadata=False)
    )
    repo = pyicechunk.Repository.open(Storage.from_backend(faulty), config=config)
    faulty.enabled = True
    repo.create_tag("v1", repo.lookup_branch("main"))
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a", mode="r+")[:CHUNK] = _values(0)
    sid = session.commit("c0")
    assert faulty.injected["put_if_version"] == 2
    faulty.enabled = False
    assert asyncio.run(faulty.inner._read_write_id("repo")) is None  # nothing was stamped
    again = pyicechunk.Repository.open(Storage.from_backend(faulty.inner))
    assert again.list_tags() == {"v1"} and again.lookup_branch("main") == sid
    report = asyncio.run(check_repo(faulty.inner))
    assert [type(e.action) for e in report.ops_log[:2]] == [NewCommit, TagCreated]
    assert len(report.ops_log) == 4 and not report.unused_backups
