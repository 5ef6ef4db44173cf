"""Eight OS processes committing to one branch of a spec-2 repository, on disk and on S3.

Every change of a spec-2 repository is a compare-and-swap of its one ``repo`` object. The
reference turns that off on the local filesystem and loses commits there; we keep it on (under
a lock), so here, as on S3, every acknowledged commit must be in the branch's ancestry, each
exactly once, with one ops-log entry each, and every ``overwritten/`` copy must be the state
its entry produced. Half the writers retry by hand on a conflict, half let ``commit`` rebase.

Eight writers also commit through storage that loses about a fifth of the answers to their
swaps of ``repo``, and fails some before they land (without the recognition of a landed swap
by ``repo`` itself, spurious conflicts made about one commit in forty land twice). Branch and
tag operations race with the commits too, with a small ops-log window so that the chain
through ``overwritten/`` is cut under the race. The last two run on S3 only with ``-m slow``.
``PYICECHUNK_V2_STRESS_COMMITS`` sets the commits per process (10 by default: the acceptance
case); the ``slow`` stress runs more processes and ref operations.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing as mp
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
import zarr
from _spec2_checks import check_repo

import pyicechunk as icechunk
from pyicechunk.format.ids import encode_id
from pyicechunk.format.repo_info import (
    BranchCreated,
    BranchDeleted,
    BranchReset,
    NewCommit,
    RepoInitialized,
    TagCreated,
    TagDeleted,
)
from pyicechunk.testing.faults import FaultPlan, FaultyBackend, InjectedFault

N_PROCS = 8
FAULTS = (InjectedFault, icechunk.IcechunkError)
N_COMMITS = int(os.environ.get("PYICECHUNK_V2_STRESS_COMMITS", "10"))
KINDS = ["local", "s3"]
TIMEOUT = 900


def _run(jobs: list[tuple[Any, tuple[Any, ...]]]) -> list[Any]:
    """Run each ``(function, args)`` in its own process at once; their results, in order.

    The workers start from a fork server that imported the heavy modules: spawning eight
    interpreters that each import numpy, zarr and pyicechunk costs more on two cores than the
    commits themselves. The server's children share nothing else with this process (no
    threads, no event loop, no open storage). A worker that cannot start makes a pool wait
    forever, hence the timeout.
    """
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["numpy", "zarr", "pyicechunk"])
    with ctx.Pool(len(jobs)) as pool:
        results = [pool.apply_async(fn, args) for fn, args in jobs]
        return [r.get(timeout=TIMEOUT) for r in results]


def _commit_all(
    storage: icechunk.Storage, proc: int, n_commits: int, transient: tuple[type, ...] = ()
) -> list[str]:
    """``n_commits`` commits of chunk ``i`` of array ``p<proc>``; returns the acknowledged ids.

    A commit that raises one of ``transient`` is made again in a new session, as a user would.
    """
    repo = icechunk.Repository.open(storage)
    rebase = proc % 2 == 1
    done = []
    for i in range(n_commits):
        while True:
            session = repo.writable_session("main")
            zarr.open_array(session.store, path=f"p{proc}", mode="r+")[i] = proc * 1000 + i
            message, metadata = f"p{proc} c{i}", {"proc": proc, "i": i}
            try:
                if rebase:
                    sid = session.commit(message, metadata, rebase_with=icechunk.ConflictDetector())
                else:
                    sid = session.commit(message, metadata)
            except icechunk.ConflictError:
                assert not rebase
                continue
            except transient:
                continue
            done.append(sid)
            break
    return done


def _ref_ops(storage: icechunk.Storage, proc: int, rounds: int) -> Counter[str]:
    """Branch and tag life cycles at main's moving tip; counts what was acknowledged."""
    repo = icechunk.Repository.open(storage)
    done: Counter[str] = Counter()
    for r in range(rounds):
        branch, tag = f"b{proc}-{r}", f"t{proc}-{r}"
        repo.create_branch(branch, repo.lookup_branch("main"))
        done["branch-created"] += 1
        repo.create_tag(tag, repo.lookup_branch("main"))
        done["tag-created"] += 1
        repo.reset_branch(branch, repo.lookup_branch("main"))
        done["branch-reset"] += 1
        if r % 2 == 0:
            repo.delete_branch(branch)
            done["branch-deleted"] += 1
            repo.delete_tag(tag)
            done["tag-deleted"] += 1
    return done


def _setup(storage: icechunk.Storage, window: int | None = None) -> tuple[Any, str]:
    config = icechunk.RepositoryConfig(num_updates_per_repo_info_file=window) if window else None
    repo = icechunk.Repository.create(storage, config, spec_version=2)
    session = repo.writable_session("main")
    root = zarr.group(session.store)
    for proc in range(N_PROCS):
        root.create_array(f"p{proc}", shape=(N_COMMITS,), chunks=(1,), dtype="i8", fill_value=-1)
    return repo, session.commit("setup")


def _check_commits(
    repo: Any, setup: str, acknowledged: list[list[str]], writers: int, faults: bool = False
) -> Any:
    """Ancestry, data, ops log and ``overwritten/`` after the race; returns the repo report."""
    history = list(repo.ancestry(branch="main"))
    ids = [h.id for h in history]
    new = history[: ids.index(setup)]
    assert len(new) == writers * N_COMMITS
    assert {h.id for h in new} == {sid for done in acknowledged for sid in done}
    assert Counter((h.metadata["proc"], h.metadata["i"]) for h in new) == Counter(
        (p, i) for p in range(writers) for i in range(N_COMMITS)
    )
    for newer, older in itertools.pairwise(history):
        assert newer.parent_id == older.id
    group = zarr.open_group(repo.readonly_session(branch="main").store, mode="r")
    for proc in range(writers):
        np.testing.assert_array_equal(group[f"p{proc}"][:], proc * 1000 + np.arange(N_COMMITS))

    report = asyncio.run(check_repo(repo.storage.backend))
    # One NewCommit per commit, in the branch's order, and nothing else from the committers.
    commits = [e.action for e in report.ops_log if isinstance(e.action, NewCommit)]
    assert [encode_id(a.new_snap_id) for a in commits] == ids[:-1]
    assert {a.branch for a in commits} == {"main"}
    assert isinstance(report.ops_log[-1].action, RepoInitialized)
    # Losers' snapshots were never listed: initial, setup and the new commits only.
    assert {encode_id(s) for s in report.info.snapshots} == set(ids)
    # No race left an unused copy behind: each failed swap deleted its own. A swap that
    # raised (it failed before landing) keeps its copy, unused.
    assert not report.unused_backups or faults
    assert len(report.backups - report.unused_backups) == len(report.ops_log) - 1
    return report


@pytest.mark.parametrize("kind", KINDS)
def test_eight_processes_commit_to_one_branch(new_storage: Any, kind: str) -> None:
    storage = new_storage(kind)
    repo, setup = _setup(storage)
    acknowledged = _run([(_commit_all, (storage, p, N_COMMITS)) for p in range(N_PROCS)])
    report = _check_commits(repo, setup, acknowledged, N_PROCS)
    assert len(report.ops_log) == 2 + N_PROCS * N_COMMITS


@pytest.mark.parametrize("kind", [*KINDS[:1], pytest.param(KINDS[1], marks=pytest.mark.slow)])
def test_eight_processes_through_lost_answers(new_storage: Any, kind: str) -> None:
    # About a fifth of the swaps of repo land with their answer lost (for half the writers
    # resent, as an SDK does, failing against themselves); a tenth fail before landing.
    # Racing writers overtake a landed swap before its write id is read back: every landed
    # commit must still be recognised as such, or its retry would land it twice.
    storage = new_storage(kind)
    repo, setup = _setup(storage)
    jobs = []
    for p in range(N_PROCS):
        plan = FaultPlan(seed=p, rates={"put_if_version": 0.3}, lost_ack=0.7, resend=p % 2 == 0)
        lossy = icechunk.Storage.from_backend(FaultyBackend(storage.backend, plan))
        jobs.append((_commit_all, (lossy, p, N_COMMITS, FAULTS)))
    acknowledged = _run(jobs)
    report = _check_commits(repo, setup, acknowledged, N_PROCS, faults=True)
    assert len(report.ops_log) == 2 + N_PROCS * N_COMMITS


@pytest.mark.parametrize("kind", ["memory", "local"])
def test_sixteen_threads_share_one_repository(new_storage: Any, kind: str) -> None:
    # One Repository object, sixteen threads: each a tag, a branch and a rebased commit.
    repo = icechunk.Repository.create(new_storage(kind), spec_version=2)
    session = repo.writable_session("main")
    zarr.group(session.store).create_array("a", shape=(16,), chunks=(1,), dtype="i4")
    tip = session.commit("setup")

    def work(i: int) -> str:
        repo.create_tag(f"t{i}", tip)
        repo.create_branch(f"b{i}", tip)
        session = repo.writable_session("main")
        zarr.open_array(session.store, path="a", mode="r+")[i] = i
        return session.commit(f"c{i}", rebase_with=icechunk.ConflictDetector())

    with ThreadPoolExecutor(16) as pool:
        commits = list(pool.map(work, range(16)))
    history = [h.id for h in repo.ancestry(branch="main")]
    assert set(history[:16]) == set(commits) and history[16] == tip
    assert repo.list_tags() == {f"t{i}" for i in range(16)}
    assert repo.list_branches() == {"main"} | {f"b{i}" for i in range(16)}
    report = asyncio.run(check_repo(repo.storage.backend))
    assert Counter(type(e.action) for e in report.ops_log) == {
        RepoInitialized: 1,
        NewCommit: 17,
        TagCreated: 16,
        BranchCreated: 16,
    }
    assert not report.unused_backups


def _create_and_commit(storage: icechunk.Storage, proc: int) -> tuple[bool, str]:
    """open_or_create at once with the others, then one commit of group attribute ``p<proc>``.

    open_or_create is not atomic (as in the reference): a process that finds no repository
    may fail to create one because another is creating it (its objects are there, ``repo``
    is not yet), and then tries again. Returns whether that happened, and the commit.
    """
    lost = False
    for _ in range(100):
        try:
            repo = icechunk.Repository.open_or_create(storage, create_version=2)
            break
        except icechunk.IcechunkError:
            lost = True
            time.sleep(0.05)
    else:
        raise AssertionError("no repository to open after 100 tries")
    while True:
        session = repo.writable_session("main")
        zarr.open_group(session.store, mode="a").attrs[f"p{proc}"] = proc
        try:
            return lost, session.commit(f"p{proc}", rebase_with=icechunk.ConflictDetector())
        except icechunk.ConflictError:
            continue


def test_eight_processes_create_one_repository(new_storage: Any) -> None:
    storage = new_storage("local")
    outcomes = _run([(_create_and_commit, (storage, p)) for p in range(N_PROCS)])
    repo = icechunk.Repository.open(storage)
    assert repo.spec_version == 2
    history = list(repo.ancestry(branch="main"))
    assert {h.id for h in history[:-1]} == {sid for _, sid in outcomes}
    assert [h.message for h in history[-1:]] == ["Repository initialized"]
    attrs = zarr.open_group(repo.readonly_session("main").store, mode="r").attrs
    assert dict(attrs) == {f"p{p}": p for p in range(N_PROCS)}
    report = asyncio.run(check_repo(storage.backend))
    # One creation whatever the race: one RepoInitialized, the first entry of the log.
    assert [type(e.action) for e in report.ops_log].count(RepoInitialized) == 1
    assert len(report.ops_log) == 1 + N_PROCS


def _mixed(storage: icechunk.Storage, committers: int, ref_procs: int, rounds: int) -> None:
    repo, setup = _setup(storage, window=16)
    jobs = [(_commit_all, (storage, p, N_COMMITS)) for p in range(committers)]
    jobs += [(_ref_ops, (storage, p, rounds)) for p in range(ref_procs)]
    outcomes = _run(jobs)
    report = _check_commits(repo, setup, outcomes[:committers], committers)
    done: Counter[str] = sum(outcomes[committers:], Counter())
    kinds = {
        BranchCreated: "branch-created",
        BranchDeleted: "branch-deleted",
        BranchReset: "branch-reset",
        TagCreated: "tag-created",
        TagDeleted: "tag-deleted",
    }
    logged = Counter(kinds[type(e.action)] for e in report.ops_log if type(e.action) in kinds)
    assert logged == done
    assert len(report.ops_log) == 2 + committers * N_COMMITS + sum(done.values())
    # The chain through overwritten/ was cut several times and followed back to creation.
    assert report.info.repo_before_updates is not None
    kept = {f"b{p}-{r}" for p in range(ref_procs) for r in range(rounds) if r % 2}
    assert repo.list_branches() == {"main"} | kept
    assert repo.list_tags() == {
        f"t{p}-{r}" for p in range(ref_procs) for r in range(rounds) if r % 2
    }
    deleted = {f"t{p}-{r}" for p in range(ref_procs) for r in range(rounds) if r % 2 == 0}
    assert report.info.deleted_tags == deleted


@pytest.mark.parametrize("kind", [*KINDS[:1], pytest.param(KINDS[1], marks=pytest.mark.slow)])
def test_ref_operations_while_committing(new_storage: Any, kind: str) -> None:
    _mixed(new_storage(kind), committers=4, ref_procs=2, rounds=4)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_v2_stress_mixed(new_storage: Any, kind: str) -> None:
    _mixed(new_storage(kind), committers=6, ref_procs=3, rounds=20)
