"""Conditional writes whose responses are lost count as success, once; real conflicts still fail.

A :class:`FaultyBackend` applies every ref or config write and then loses its response (and,
with ``resend``, sends the same write again first, as an SDK's transparent retry does, so that
it fails its precondition against itself). The write id read back from the object tells the
repository that the write was its own (FORMAT-V2 §14). Runs on memory, local and S3 storage,
on spec-1 repositories (the ref and config files).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import zarr

import pyicechunk
from pyicechunk.storage import ConditionalWrite, Storage, StorageBackend
from pyicechunk.testing.faults import FaultPlan, FaultyBackend, InjectedFault

KINDS = ["memory", "local", "s3"]
RESEND = pytest.mark.parametrize("resend", [False, True], ids=["lost", "lost-then-resent"])


def _lossy(new_storage: Any, kind: str, resend: bool, **rates: float) -> FaultyBackend:
    plan = FaultPlan(rates=rates, lost_ack=1.0, resend=resend)
    faulty = FaultyBackend(new_storage(kind)._backend, plan)
    faulty.enabled = False
    return faulty


def _repo(faulty: FaultyBackend) -> Any:
    return pyicechunk.Repository.open(Storage.from_backend(faulty))


def _commit(repo: Any, value: int, message: str) -> str:
    session = repo.writable_session("main")
    root = zarr.open_group(session.store, mode="a")
    if "a" not in root:
        root.create_array("a", shape=(4,), chunks=(2,), dtype="i8", fill_value=-1)
    zarr.open_array(session.store, path="a", mode="r+")[:] = value
    return str(session.commit(message))


@pytest.mark.parametrize("kind", KINDS)
@RESEND
def test_tag_create_with_lost_response(new_storage: Any, kind: str, resend: bool) -> None:
    faulty = _lossy(new_storage, kind, resend, put_if_absent=1.0)
    pyicechunk.Repository.create(Storage.from_backend(faulty), spec_version=1)
    repo = _repo(faulty)
    tip = repo.lookup_branch("main")
    faulty.enabled = True
    repo.create_tag("v1", tip)
    assert faulty.injected["put_if_absent"] == 1
    assert repo.lookup_tag("v1") == tip
    assert repo.list_tags() == {"v1"}
    # creating it again is a real conflict, and it is not mistaken for our own write
    if resend:
        with pytest.raises(pyicechunk.IcechunkError, match="tag already exists"):
            repo.create_tag("v1", tip)
    else:  # the response was lost and the write was not ours: the transport error stands
        with pytest.raises(InjectedFault):
            repo.create_tag("v1", tip)
    faulty.enabled = False
    assert _repo(faulty).list_tags() == {"v1"}


@pytest.mark.parametrize("kind", KINDS)
@RESEND
def test_commit_with_lost_response_lands_once(new_storage: Any, kind: str, resend: bool) -> None:
    faulty = _lossy(new_storage, kind, resend, put_if_version=1.0)
    repo = pyicechunk.Repository.create(Storage.from_backend(faulty), spec_version=1)
    _commit(repo, 1, "first")
    faulty.enabled = True
    sid = _commit(repo, 2, "second")
    assert faulty.injected["put_if_version"] == 1
    faulty.enabled = False
    again = _repo(faulty)
    assert again.lookup_branch("main") == sid
    assert [s.message for s in again.ancestry(branch="main")] == [
        "second",
        "first",
        "Repository initialized",
    ]
    arr = zarr.open_array(again.readonly_session("main").store, path="a", mode="r")
    np.testing.assert_array_equal(arr[:], [2] * 4)


@pytest.mark.parametrize("kind", KINDS)
@RESEND
def test_config_save_with_lost_responses(new_storage: Any, kind: str, resend: bool) -> None:
    faulty = _lossy(new_storage, kind, resend, put_if_absent=1.0, put_if_version=1.0)
    repo = pyicechunk.Repository.create(Storage.from_backend(faulty), spec_version=1)
    faulty.enabled = True
    repo = repo.reopen(config=pyicechunk.RepositoryConfig(inline_chunk_threshold_bytes=11))
    repo.save_config()  # creates config.yaml
    repo = repo.reopen(config=pyicechunk.RepositoryConfig(inline_chunk_threshold_bytes=22))
    repo.save_config()  # replaces it
    assert faulty.injected == {"put_if_absent": 1, "put_if_version": 1}
    faulty.enabled = False
    saved = pyicechunk.Repository.fetch_config(Storage.from_backend(faulty))
    assert saved is not None and saved.inline_chunk_threshold_bytes == 22


class _Race(FaultyBackend):
    """A lossy backend where another writer moves the branch just before our compare-and-swap.

    ``race`` is shared with the copies that ``with_settings`` makes.
    """

    def __init__(self, inner: StorageBackend, plan: FaultPlan) -> None:
        super().__init__(inner, plan)
        self.race: dict[str, Any] = {}

    async def _write_conditionally(self, write: ConditionalWrite) -> bool:
        other = self.race.pop("other", None)
        if other is not None and write.key == "refs/branch.main/ref.json":
            self.race["theirs"] = await other.commit_async("theirs")
        return await super()._write_conditionally(write)


@pytest.mark.parametrize("kind", KINDS)
@RESEND
def test_concurrent_commit_still_conflicts(new_storage: Any, kind: str, resend: bool) -> None:
    inner = new_storage(kind)._backend
    race = _Race(inner, FaultPlan(rates={"put_if_version": 1.0}, lost_ack=1.0, resend=resend))
    race.enabled = False
    repo = pyicechunk.Repository.create(Storage.from_backend(race), spec_version=1)
    _commit(repo, 1, "base")
    mine = repo.writable_session("main")
    zarr.open_array(mine.store, path="a", mode="r+")[:] = 3
    other = pyicechunk.Repository.open(Storage.from_backend(inner)).writable_session("main")
    zarr.open_array(other.store, path="a", mode="r+")[:] = 2
    race.race["other"] = other
    race.enabled = True
    # the branch moved under our update: its lost response must not turn into a success
    expected = pyicechunk.ConflictError if resend else InjectedFault
    with pytest.raises(expected):
        mine.commit("mine")
    assert race.injected["put_if_version"] == 1
    race.enabled = False
    assert _repo(race).lookup_branch("main") == race.race["theirs"]


@pytest.mark.parametrize("kind", KINDS)
def test_failed_read_back_is_an_error_not_a_conflict(new_storage: Any, kind: str) -> None:
    faulty = _lossy(new_storage, kind, True, put_if_version=1.0, head=1.0)
    repo = pyicechunk.Repository.create(Storage.from_backend(faulty), spec_version=1)
    _commit(repo, 1, "base")
    faulty.enabled = True
    with pytest.raises(pyicechunk.IcechunkError, match="reading the object back") as info:
        _commit(repo, 2, "unknown outcome")
    assert "refs/branch.main/ref.json" in info.value.message
    faulty.enabled = False
    # it did land; the error did not claim otherwise, and nothing half-done is visible
    assert next(iter(_repo(faulty).ancestry(branch="main"))).message == "unknown outcome"
