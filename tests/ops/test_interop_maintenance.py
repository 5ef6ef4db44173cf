"""Expiration and garbage collection across implementations.

One implementation writes a repository with several branches, a tag, a deleted tag, a flushed
snapshot and overwritten chunks. Two copies of it are then expired and garbage collected, one by
icechunk 1.1.21 and one by pyicechunk: both must report the same results and leave the same
objects, and the other implementation must read every retained version of the maintained copy.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import icechunk
import numpy as np
import pytest
import zarr

import pyicechunk

IMPLS = {"icechunk": icechunk, "pyicechunk": pyicechunk}
PREFIXES = ("chunks", "manifests", "snapshots", "transactions", "refs")


def _build(ic: ModuleType, path: Path) -> str:
    """Write the repository; return the written_at-threshold snapshot id for expiration."""
    repo = ic.Repository.create(  # spec 1, the format icechunk 1.1.21 maintains
        ic.local_filesystem_storage(str(path)),
        ic.RepositoryConfig(inline_chunk_threshold_bytes=16),
        **({"spec_version": 1} if ic is pyicechunk else {}),
    )
    ids = []
    for i in range(5):
        session = repo.writable_session("main")
        if i == 0:
            root = zarr.create_group(session.store, attributes={"v": 0})
            root.create_array("x", shape=(6, 4), chunks=(2, 4), dtype="f8", fill_value=0)
            root.create_array("small", shape=(3,), chunks=(1,), dtype="u1", fill_value=0)
        x = zarr.open_array(session.store, path="x")
        x[2 * (i % 3) : 2 * (i % 3) + 2, :] = i + 0.5
        zarr.open_array(session.store, path="small")[i % 3] = i
        ids.append(session.commit(f"c{i}"))
        if i == 1:
            repo.create_tag("old", ids[1])
            repo.create_branch("dev", ids[1])
            dev = repo.writable_session("dev")
            zarr.open_array(dev.store, path="x")[:] = -1.0
            dev.commit("dev overwrite")
        if i == 2:
            repo.create_tag("gone", ids[2])
            repo.delete_tag("gone")
            detached = repo.writable_session("main")
            zarr.open_array(detached.store, path="x")[:2, :] = 99.0
            detached.flush("detached")
    return str(ids[3])


def _object_names(path: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for prefix in PREFIXES:
        out[prefix] = {
            str(p.relative_to(path / prefix)) for p in (path / prefix).rglob("*") if p.is_file()
        }
    return out


def _maintain(ic: ModuleType, path: Path, cut_id: str) -> tuple[set[str], Any]:
    repo = ic.Repository.open(ic.local_filesystem_storage(str(path)))
    cut = repo.lookup_snapshot(cut_id).written_at
    expired = repo.expire_snapshots(cut, delete_expired_branches=True)
    summary = repo.garbage_collect(dt.datetime.now(dt.UTC))
    return expired, summary


def _contents(ic: ModuleType, path: Path) -> dict[str, Any]:
    """Every ref's ancestry and the arrays at every snapshot in it, as seen by ``ic``."""
    repo = ic.Repository.open(ic.local_filesystem_storage(str(path)))
    seen: dict[str, Any] = {"branches": repo.list_branches(), "tags": repo.list_tags()}
    for kind, names in (("branch", seen["branches"]), ("tag", seen["tags"])):
        for name in names:
            history = list(repo.ancestry(**{kind: name}))
            seen[f"{kind}:{name}"] = [(s.id, s.parent_id, s.message) for s in history]
            for info in history:
                if info.parent_id is None:
                    continue  # the initial snapshot holds no nodes
                store = repo.readonly_session(snapshot_id=info.id).store
                group = zarr.open_group(store, mode="r")
                seen[info.id] = {k: np.asarray(a[...]).tolist() for k, a in group.arrays()}
    return seen


@pytest.mark.parametrize("writer", ["icechunk", "pyicechunk"])
def test_maintenance_is_interchangeable(writer: str, tmp_path: Path) -> None:
    ic_writer = importlib.import_module(writer)
    original = tmp_path / "original"
    cut_id = _build(ic_writer, original)
    copies = {}
    for name in IMPLS:
        copies[name] = tmp_path / name
        shutil.copytree(original, copies[name])
    results = {name: _maintain(IMPLS[name], copies[name], cut_id) for name in IMPLS}

    ref_expired, ref_summary = results["icechunk"]
    our_expired, our_summary = results["pyicechunk"]
    assert our_expired == ref_expired and ref_expired
    for field in (
        "chunks_deleted",
        "manifests_deleted",
        "snapshots_deleted",
        "transaction_logs_deleted",
        "attributes_deleted",
    ):
        assert getattr(our_summary, field) == getattr(ref_summary, field), field
    assert ref_summary.snapshots_deleted > 0 and ref_summary.chunks_deleted > 0
    assert _object_names(copies["pyicechunk"]) == _object_names(copies["icechunk"])

    # Each implementation reads what the other maintained, and agrees with what it sees itself.
    by_reference = _contents(icechunk, copies["pyicechunk"])
    assert by_reference == _contents(pyicechunk, copies["pyicechunk"])
    assert by_reference == _contents(pyicechunk, copies["icechunk"])
    assert by_reference["branches"] == {"main"}  # dev's tip was expired and deleted
    assert by_reference["tags"] == {"old"}
    assert [h[0] for h in by_reference["branch:main"]][-1] == "1CECHNKREP0F1RSTCMT0"
    assert len(by_reference["branch:main"]) == 3  # c4, c3, root
    assert os.path.exists(copies["pyicechunk"] / "refs" / "tag.old" / "ref.json")
