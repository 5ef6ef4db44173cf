"""Google Cloud Storage through obstore against fake-gcs-server (the fixture is in conftest.py).

The storage is built as a user would point ``gcs_storage`` at a GCS-compatible endpoint: a
service-account key naming it (``gcs_base_url``) and skipping OAuth. The endpoint is HTTPS;
the plain-HTTP endpoint, which needs ``allow_http``, is tested in test_gcs_http_endpoint.py.
"""

from __future__ import annotations

import asyncio
import pickle
import threading
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import icechunk
import numpy as np
import pytest
import zarr

import pyicechunk
from pyicechunk.config import StorageConcurrencySettings, StorageSettings
from pyicechunk.storage import RangeByteRequest, Storage, StorageBackend, gcs_storage
from pyicechunk.testing.storage import StorageTests

_T = TypeVar("_T")


def _gcs(server: Any, bucket: str, prefix: str) -> Storage:
    return gcs_storage(bucket=bucket, prefix=prefix, service_account_key=server.https_key)


def _reference_gcs(server: Any, bucket: str, prefix: str) -> Any:
    return icechunk.gcs_storage(bucket=bucket, prefix=prefix, service_account_key=server.https_key)


def _at_once(*calls: Callable[[], _T]) -> list[_T | BaseException]:
    """Run the calls on threads released together; each one's result or exception."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[_T | BaseException] = [RuntimeError("did not run")] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = calls[i]()
        except BaseException as e:  # the outcome under test, whatever it is
            outcomes[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


class TestGcsBackend(StorageTests):
    @pytest.fixture
    def storage_backend(self, gcs_server: Any, gcs_bucket: str) -> StorageBackend:
        return _gcs(gcs_server, gcs_bucket, "conformance")._backend


def test_repository_on_gcs(gcs_server: Any, gcs_bucket: str) -> None:
    storage = _gcs(gcs_server, gcs_bucket, "repo")
    assert repr(storage) == f"<icechunk.Storage>\ntype: GCS\nbucket: {gcs_bucket}\nprefix: repo\n"
    repo = pyicechunk.Repository.create(storage)
    session = repo.writable_session("main")
    arr = zarr.create_array(session.store, name="a", shape=(6, 4), chunks=(4, 3), dtype="f8")
    data = np.arange(24, dtype="f8").reshape(6, 4)
    arr[:] = data
    first = session.commit("first")
    repo.create_tag("v1", first)
    repo.create_branch("dev", first)
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a", mode="r+")[0, :] = -1
    second = session.commit("second")
    dev = repo.writable_session("dev")
    zarr.open_array(dev.store, path="a", mode="r+")[5, :] = 99
    on_dev = dev.commit("on dev")

    again = pyicechunk.Repository.open(
        pickle.loads(pickle.dumps(_gcs(gcs_server, gcs_bucket, "repo")))
    )
    assert again.list_tags() == {"v1"}
    assert again.list_branches() == {"main", "dev"}
    assert [s.id for s in again.ancestry(branch="main")][:2] == [second, first]
    assert [s.id for s in again.ancestry(branch="dev")][:2] == [on_dev, first]
    for view in (again.readonly_session(tag="v1"), again.readonly_session(snapshot_id=first)):
        np.testing.assert_array_equal(zarr.open_array(view.store, path="a", mode="r")[:], data)
    flushed = next(s for s in again.ancestry(branch="main") if s.id == first).written_at
    as_of = again.readonly_session("main", as_of=flushed)
    np.testing.assert_array_equal(zarr.open_array(as_of.store, path="a", mode="r")[:], data)
    tip = zarr.open_array(again.readonly_session("main").store, path="a", mode="r")[:]
    np.testing.assert_array_equal(tip[0], [-1] * 4)
    np.testing.assert_array_equal(tip[1:], data[1:])
    dev_tip = zarr.open_array(again.readonly_session("dev").store, path="a", mode="r")[:]
    np.testing.assert_array_equal(dev_tip[5], [99] * 4)
    again.delete_branch("dev")
    again.delete_tag("v1")
    assert pyicechunk.Repository.open(storage).list_branches() == {"main"}
    assert pyicechunk.Repository.open(storage).list_tags() == set()


def test_large_objects_are_read_in_parallel_parts(gcs_server: Any, gcs_bucket: str) -> None:
    """Past ``ideal_concurrent_request_size`` a read is split into ranged GETs of one version."""
    concurrency = StorageConcurrencySettings(
        max_concurrent_requests_for_object=4, ideal_concurrent_request_size=1000
    )
    backend = _gcs(gcs_server, gcs_bucket, "big")._backend.with_settings(
        StorageSettings(concurrency=concurrency)
    )
    data = np.random.default_rng(0).integers(0, 256, 10_001, dtype=np.uint8).tobytes()
    asyncio.run(backend.put("chunks/big", data))
    assert asyncio.run(backend.get("chunks/big")) == data
    assert asyncio.run(backend.get("chunks/big", RangeByteRequest(999, 8_002))) == data[999:8_002]


def test_two_committers_one_wins(gcs_server: Any, gcs_bucket: str) -> None:
    """Two writers (separate repository handles) commit on the same branch at the same time:
    the server's generation precondition lets exactly one move the branch."""
    storage = _gcs(gcs_server, gcs_bucket, "race")
    repo = pyicechunk.Repository.create(storage)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(2,), chunks=(1,), dtype="i8")
    base = session.commit("base")

    def committer(value: int) -> Callable[[], str]:
        writer = pyicechunk.Repository.open(_gcs(gcs_server, gcs_bucket, "race"))
        mine = writer.writable_session("main")
        zarr.open_array(mine.store, path="a", mode="r+")[:] = value
        return lambda: mine.commit(f"writer {value}")

    outcomes = _at_once(committer(1), committer(2))
    won = [o for o in outcomes if isinstance(o, str)]
    lost = [o for o in outcomes if isinstance(o, pyicechunk.ConflictError)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    reader = pyicechunk.Repository.open(storage)
    assert [s.id for s in reader.ancestry(branch="main")][:2] == [won[0], base]
    winner = outcomes.index(won[0]) + 1
    values = zarr.open_array(reader.readonly_session("main").store, path="a", mode="r")[:]
    np.testing.assert_array_equal(values, [winner, winner])


def test_two_tag_creators_one_wins(gcs_server: Any, gcs_bucket: str) -> None:
    storage = _gcs(gcs_server, gcs_bucket, "tags")
    repo = pyicechunk.Repository.create(storage)
    tip = repo.lookup_branch("main")
    writers = [pyicechunk.Repository.open(_gcs(gcs_server, gcs_bucket, "tags")) for _ in range(4)]
    outcomes = _at_once(*(lambda w=w: w.create_tag("release", tip) for w in writers))
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert outcomes.count(None) == 1, outcomes
    assert len(errors) == 3 and all("tag already exists" in str(e) for e in errors), errors
    assert pyicechunk.Repository.open(storage).lookup_tag("release") == tip


def test_conditional_writes_are_stamped_on_the_server(gcs_server: Any, gcs_bucket: str) -> None:
    """The write id travels as GCS custom metadata (``x-goog-meta-icechunkwriteid``), one
    fresh id per conditional write; the server keeps it (read here with the JSON API)."""
    repo = pyicechunk.Repository.create(_gcs(gcs_server, gcs_bucket, "r"), spec_version=1)
    repo.create_tag("v1", repo.lookup_branch("main"))
    stamps = []
    for key in ("r/refs/branch.main/ref.json", "r/refs/tag.v1/ref.json"):
        metadata = gcs_server.object_resource(gcs_bucket, key)["metadata"]
        assert list(metadata) == ["icechunkwriteid"]
        stamps.append(metadata["icechunkwriteid"])
    assert len(set(stamps)) == 2
    assert all(uuid.UUID(stamp).version == 4 for stamp in stamps)


def _object_metadata(server: Any, bucket: str, prefix: str, directory: str) -> dict[str, str]:
    (name,) = [
        o["name"]
        for o in server.list_objects(bucket, f"{prefix}/{directory}/")
        if not o["name"].endswith("1CECHNKREP0F1RSTCMT0")  # the initial snapshot: not the commit's
    ]
    metadata: dict[str, str] = server.object_resource(bucket, name)["metadata"]
    return metadata


def test_reference_and_pyicechunk_share_a_bucket(gcs_server: Any, gcs_bucket: str) -> None:
    """icechunk 1.1.21 and pyicechunk on one GCS bucket: each reads and extends the other's
    history, and both label their objects with the same metadata."""
    theirs = icechunk.Repository.create(_reference_gcs(gcs_server, gcs_bucket, "ref"))
    session = theirs.writable_session("main")
    arr = zarr.create_array(session.store, name="a", shape=(4, 4), chunks=(2, 2), dtype="i4")
    arr[:] = 1
    by_reference = session.commit("by the reference")
    theirs.create_tag("ref-tag", by_reference)

    ours = pyicechunk.Repository.open(_gcs(gcs_server, gcs_bucket, "ref"))
    assert ours.lookup_tag("ref-tag") == by_reference
    view = zarr.open_array(ours.readonly_session(tag="ref-tag").store, path="a", mode="r")
    np.testing.assert_array_equal(view[:], np.ones((4, 4)))
    session = ours.writable_session("main")
    zarr.open_array(session.store, path="a", mode="r+")[0, :] = 7
    by_us = session.commit("by pyicechunk")
    ours.create_branch("ours", by_us)

    again = icechunk.Repository.open(_reference_gcs(gcs_server, gcs_bucket, "ref"))
    assert [s.id for s in again.ancestry(branch="main")][:2] == [by_us, by_reference]
    assert again.list_branches() == {"main", "ours"}
    tip = zarr.open_array(again.readonly_session(branch="ours").store, path="a", mode="r")[:]
    expected = np.ones((4, 4), dtype="i4")
    expected[0, :] = 7
    np.testing.assert_array_equal(tip, expected)
    # the reference commits on top of ours, and we see it
    session = again.writable_session("main")
    zarr.open_array(session.store, path="a", mode="r+")[3, :] = 5
    last = session.commit("reference again")
    assert (
        pyicechunk.Repository.open(_gcs(gcs_server, gcs_bucket, "ref")).lookup_branch("main")
        == last
    )

    # the same labels on the metadata objects, apart from who wrote them
    ours_fresh = pyicechunk.Repository.create(_gcs(gcs_server, gcs_bucket, "ours"), spec_version=1)
    session = ours_fresh.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(4, 4), chunks=(2, 2), dtype="i4")[:] = 1
    session.commit("by pyicechunk")
    theirs_fresh = icechunk.Repository.create(_reference_gcs(gcs_server, gcs_bucket, "theirs"))
    session = theirs_fresh.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(4, 4), chunks=(2, 2), dtype="i4")[:] = 1
    session.commit("by the reference")
    for directory in ("snapshots", "manifests", "transactions"):
        mine = _object_metadata(gcs_server, gcs_bucket, "ours", directory)
        reference = _object_metadata(gcs_server, gcs_bucket, "theirs", directory)
        assert mine.pop("ic_client").startswith("pyic-")
        assert reference.pop("ic_client").startswith("ic-")
        assert mine == reference
