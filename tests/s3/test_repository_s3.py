"""Repositories on a real S3 server: lifecycle, conditional writes under races, interop."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from types import SimpleNamespace
from typing import Any

import icechunk
import numpy as np
import pytest
import zarr
from s3_helpers import s3_kwargs

import pyicechunk
from pyicechunk.storage import s3_storage


def _commit_one(repo: Any, path: str, value: int, message: str) -> str:
    session = repo.writable_session("main")
    root = zarr.open_group(session.store, mode="a")
    arr = root.require_array(path, shape=(4,), chunks=(2,), dtype="i4", fill_value=0)
    arr[:] = value
    return str(session.commit(message))


def test_create_commit_read_branch_tag(s3_server: Any, s3_bucket: str) -> None:
    storage = s3_storage(**s3_kwargs(s3_server, s3_bucket, "repo"))
    repo = pyicechunk.Repository.create(storage)
    first = _commit_one(repo, "a", 7, "first")
    repo.create_branch("dev", first)
    repo.create_tag("v1", first)
    second = _commit_one(repo, "a", 9, "second")

    again = pyicechunk.Repository.open(s3_storage(**s3_kwargs(s3_server, s3_bucket, "repo")))
    assert again.list_branches() == {"main", "dev"}
    assert again.list_tags() == {"v1"}
    tagged = zarr.open_array(again.readonly_session(tag="v1").store, path="a", mode="r")
    assert tagged[:].tolist() == [7] * 4
    tip = zarr.open_array(again.readonly_session("main").store, path="a", mode="r")
    assert tip[:].tolist() == [9] * 4
    assert [s.id for s in again.ancestry(branch="main")][:2] == [second, first]


def test_concurrent_tag_creation_has_one_winner(s3_server: Any, s3_bucket: str) -> None:
    repo = pyicechunk.Repository.create(s3_storage(**s3_kwargs(s3_server, s3_bucket, "r")))
    snap = _commit_one(repo, "a", 1, "c")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def create() -> None:
        own = pyicechunk.Repository.open(s3_storage(**s3_kwargs(s3_server, s3_bucket, "r")))
        barrier.wait()
        try:
            own.create_tag("release", snap)
            outcomes.append("won")
        except pyicechunk.IcechunkError as e:
            assert "already exists" in str(e)
            outcomes.append("lost")

    threads = [threading.Thread(target=create) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lost", "won"]


def _committer(endpoint: str, bucket: str, worker: int, n: int) -> None:
    server = SimpleNamespace(
        endpoint_url=endpoint, access_key_id="x", secret_access_key="x", region="us-east-1"
    )
    repo = pyicechunk.Repository.open(s3_storage(**s3_kwargs(server, bucket, "r")))
    for i in range(n):
        while True:
            session = repo.writable_session("main")
            root = zarr.open_group(session.store, mode="a")
            root.attrs[f"w{worker}-{i}"] = i
            try:
                session.commit(f"worker {worker} commit {i}")
                break
            except pyicechunk.ConflictError:
                continue


def test_processes_commit_to_one_branch_without_losing_any(s3_server: Any, s3_bucket: str) -> None:
    repo = pyicechunk.Repository.create(s3_storage(**s3_kwargs(s3_server, s3_bucket, "r")))
    session = repo.writable_session("main")
    zarr.open_group(session.store, mode="w")
    session.commit("root")
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_committer, args=(s3_server.endpoint_url, s3_bucket, w, 10))
        for w in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    messages = [s.message for s in repo.ancestry(branch="main")]
    assert sum(m.startswith("worker ") for m in messages) == 40
    attrs = zarr.open_group(repo.readonly_session("main").store, mode="r").attrs.asdict()
    assert len(attrs) == 40


def test_interop_with_the_reference_on_s3(s3_server: Any, s3_bucket: str) -> None:
    kwargs = s3_kwargs(s3_server, s3_bucket, "shared")
    ref_repo = icechunk.Repository.create(icechunk.s3_storage(**kwargs))
    _commit_one(ref_repo, "a", 1, "by icechunk")

    ours = pyicechunk.Repository.open(s3_storage(**kwargs))
    arr = zarr.open_array(ours.readonly_session("main").store, path="a", mode="r")
    assert arr[:].tolist() == [1] * 4
    _commit_one(ours, "b", 2, "by pyicechunk")

    ref_again = icechunk.Repository.open(icechunk.s3_storage(**kwargs))
    group = zarr.open_group(ref_again.readonly_session("main").store, mode="r")
    assert group["a"][:].tolist() == [1] * 4
    assert group["b"][:].tolist() == [2] * 4
    _commit_one(ref_again, "a", 3, "by icechunk again")

    final = pyicechunk.Repository.open(s3_storage(**kwargs))
    group = zarr.open_group(final.readonly_session("main").store, mode="r")
    assert np.asarray(group["a"][:]).tolist() == [3] * 4
    messages = [s.message for s in final.ancestry(branch="main")]
    assert messages[:3] == ["by icechunk again", "by pyicechunk", "by icechunk"]


@pytest.mark.parametrize("use_metadata", [True, False])
def test_object_metadata_written_when_enabled(
    s3_server: Any, s3_bucket: str, use_metadata: bool
) -> None:
    config = pyicechunk.RepositoryConfig(
        storage=pyicechunk.StorageSettings(unsafe_use_metadata=use_metadata)
    )
    storage = s3_storage(**s3_kwargs(s3_server, s3_bucket, "m"))
    # The repository applies its config's storage settings to the backend itself. Spec 1: the
    # labels icechunk 1.1.21 writes (spec 2's are compared with icechunk 2.3.0's elsewhere).
    repo = pyicechunk.Repository.create(storage, config=config, spec_version=1)
    _commit_one(repo, "a", 1, "c")
    client = s3_server.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    kinds = {"snapshots": "snapshot", "manifests": "manifest", "transactions": "transaction-log"}
    for key in keys:
        head = client.head_object(Bucket=s3_bucket, Key=key)
        folder = key.split("/")[1]
        if not use_metadata:
            assert head["Metadata"] == {}
        elif folder in kinds:
            assert head["Metadata"] == {
                "ic_spec_ver": "1",
                "ic_client": head["Metadata"]["ic_client"],
                "ic_file_type": kinds[folder],
                "ic_comp_alg": "zstd",
            }
        elif folder in ("refs", "config.yaml"):
            # conditional writes carry their write id (FORMAT-V2 §14), a UUID4
            stamp = head["Metadata"].pop("icechunkwriteid")
            assert uuid.UUID(stamp).version == 4
            assert head["Metadata"] == {}
        else:
            assert head["Metadata"] == {}
