"""Damaged files and user mistakes end in a clear IcechunkError and change nothing on disk."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from zarr.core.buffer import default_buffer_prototype

import pyicechunk as icechunk
from pyicechunk.format.header import HEADER_SIZE


def tree_digest(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def build_repo(path: Path, spec_version: int) -> tuple[Path, str, str]:
    """A local repository of that format version with two commits of array ``/a``."""
    storage = icechunk.local_filesystem_storage(str(path))
    repo = icechunk.Repository.create(storage, spec_version=spec_version)
    session = repo.writable_session("main")
    root = zarr.group(session.store)
    arr = root.create_array("a", shape=(8,), chunks=(4,), dtype="f8")
    arr[:] = np.arange(8.0)
    first = session.commit("first")
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a", mode="r+")[0] = 42.0
    second = session.commit("second")
    return path, first, second


@pytest.fixture(params=[1, 2], ids=["spec1", "spec2"])
def repo_dir(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, str, str]:
    """The two-commit repository, of each format version in turn."""
    return build_repo(tmp_path / "repo", request.param)


@pytest.fixture
def spec1_repo_dir(tmp_path: Path) -> tuple[Path, str, str]:
    """The two-commit repository in spec 1, for the tests of its files under ``refs/``."""
    return build_repo(tmp_path / "repo", 1)


def open_repo(path: Path) -> icechunk.Repository:
    return icechunk.Repository.open(icechunk.local_filesystem_storage(str(path)))


def damage(kind: str, data: bytes) -> bytes:
    if kind == "bad magic":
        return b"XXXX" + data[4:]
    if kind == "truncated header":
        return data[:20]
    if kind == "truncated body":
        return data[: HEADER_SIZE + (len(data) - HEADER_SIZE) // 2]
    if kind == "newer spec version":
        return data[:36] + bytes([3]) + data[37:]
    if kind == "wrong file type":
        return data[:37] + bytes([4 if data[37] != 4 else 1]) + data[38:]
    if kind == "garbage body":
        return data[:HEADER_SIZE] + b"\x00" * (len(data) - HEADER_SIZE)
    if kind == "empty":
        return b""
    raise AssertionError(kind)


KINDS = [
    "bad magic",
    "truncated header",
    "truncated body",
    "newer spec version",
    "wrong file type",
    "garbage body",
    "empty",
]


def expect_error(path: Path, action: Callable[[], Any], *words: str) -> None:
    before = tree_digest(path)
    with pytest.raises(icechunk.IcechunkError) as info:
        action()
    message = str(info.value)
    for word in words:
        assert word in message, message
    assert tree_digest(path) == before


@pytest.mark.parametrize("kind", KINDS)
def test_damaged_snapshot(repo_dir: tuple[Path, str, str], kind: str) -> None:
    path, first, second = repo_dir
    snap = path / "snapshots" / second
    snap.write_bytes(damage(kind, snap.read_bytes()))
    repo = open_repo(path)
    expect_error(path, lambda: repo.readonly_session(branch="main"), f"snapshots/{second}")
    expect_error(path, lambda: repo.writable_session("main"), f"snapshots/{second}")
    # The rest of the repository stays usable.
    old = repo.readonly_session(snapshot_id=first)
    np.testing.assert_array_equal(zarr.open_array(old.store, path="a", mode="r")[:], np.arange(8.0))
    repo.create_branch("rescue", first)
    assert repo.lookup_branch("rescue") == first


@pytest.mark.parametrize("kind", KINDS)
def test_damaged_manifest(repo_dir: tuple[Path, str, str], kind: str) -> None:
    path, _, second = repo_dir
    repo = open_repo(path)
    info = repo.lookup_snapshot(second)
    manifest = path / "manifests" / info.manifests[0].id
    manifest.write_bytes(damage(kind, manifest.read_bytes()))
    session = open_repo(path).readonly_session(branch="main")
    array = zarr.open_array(session.store, path="a", mode="r")
    expect_error(path, lambda: array[:], f"manifests/{info.manifests[0].id}")


def test_missing_snapshot_object(repo_dir: tuple[Path, str, str]) -> None:
    path, _, second = repo_dir
    (path / "snapshots" / second).unlink()
    repo = open_repo(path)
    expect_error(path, lambda: repo.readonly_session(branch="main"), second)
    expect_error(path, lambda: repo.lookup_snapshot(second), f"snapshots/{second}")


def test_missing_chunk_object(repo_dir: tuple[Path, str, str]) -> None:
    path, _, _ = repo_dir
    repo = icechunk.Repository.open(
        icechunk.local_filesystem_storage(str(path)),
        icechunk.RepositoryConfig(inline_chunk_threshold_bytes=0),
    )
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a", mode="r+")[:] = 7.0
    session.commit("native chunks")
    for chunk in (path / "chunks").iterdir():
        chunk.unlink()
    array = zarr.open_array(repo.readonly_session(branch="main").store, path="a", mode="r")
    expect_error(path, lambda: array[:], "chunks/")


def test_unknown_refs_and_malformed_ids(repo_dir: tuple[Path, str, str]) -> None:
    path, first, _ = repo_dir
    repo = open_repo(path)
    expect_error(path, lambda: repo.lookup_branch("nope"), "ref not found `nope`")
    expect_error(path, lambda: repo.lookup_tag("nope"), "ref not found `nope`")
    expect_error(path, lambda: repo.writable_session("nope"), "ref not found `nope`")
    expect_error(path, lambda: repo.readonly_session(tag="nope"), "ref not found")
    expect_error(path, lambda: repo.delete_branch("nope"), "ref not found")
    expect_error(path, lambda: repo.delete_tag("nope"), "ref not found")
    for bad in ("abc", "", "!" * 20, first + "0", first.lower()[:-1] + "U"):
        expect_error(path, lambda b=bad: repo.create_branch("x", b), "invalid snapshot id")
        expect_error(
            path, lambda b=bad: repo.readonly_session(snapshot_id=b), "invalid snapshot id"
        )
        expect_error(path, lambda b=bad: repo.lookup_snapshot(b), "invalid snapshot id")
    # spec 2 looks ids up in the snapshot list, with icechunk 2.x's message
    unknown = "snapshot id not found" if repo.spec_version == 2 else "snapshot not found"
    expect_error(path, lambda: repo.create_tag("t", "0" * 20), unknown)
    expect_error(path, lambda: repo.reset_branch("main", "0" * 20), unknown)
    expect_error(path, lambda: repo.readonly_session(snapshot_id="0" * 20), unknown)


def test_invalid_branch_and_tag_names(repo_dir: tuple[Path, str, str]) -> None:
    path, first, _ = repo_dir
    repo = open_repo(path)
    expect_error(path, lambda: repo.create_branch("", first), "invalid ref name ``")
    if repo.spec_version == 2:
        # names are not paths in spec 2: icechunk 2.x accepts a '/' there
        repo.create_branch("a/b", first)
        repo.create_tag("a/b", first)
        assert repo.lookup_branch("a/b") == repo.lookup_tag("a/b") == first
        return
    for name in ("a/b", "/x", "x/"):
        expect_error(
            path, lambda n=name: repo.create_branch(n, first), f"invalid ref name `{name}`"
        )
        expect_error(path, lambda n=name: repo.create_tag(n, first), "invalid ref name")
    expect_error(path, lambda: repo.delete_branch("main"), "main branch cannot be deleted")


def test_bad_store_keys(repo_dir: tuple[Path, str, str]) -> None:
    path, _, _ = repo_dir
    store = open_repo(path).writable_session("main").store
    proto = default_buffer_prototype()
    buf = proto.buffer.from_bytes(b"x" * 8)

    def run(coro: Any) -> Any:
        return zarr.core.sync.sync(coro)

    expect_error(path, lambda: run(store.get("a/zzz", proto)), "invalid zarr key format")
    expect_error(path, lambda: run(store.set("a/zzz", buf)), "invalid zarr key format")
    expect_error(path, lambda: run(store.set("a/c/99", buf)), "invalid chunk index")
    expect_error(path, lambda: run(store.set("a/c/x", buf)), "invalid zarr key format")
    expect_error(path, lambda: run(store.set(".zgroup", buf)), "Zarr V2")
    expect_error(
        path,
        lambda: run(store.set("g/zarr.json", proto.buffer.from_bytes(b"{nope"))),
        "bad metadata",
    )
    expect_error(
        path,
        lambda: run(store.set("g/zarr.json", proto.buffer.from_bytes(b'{"node_type": "x"}'))),
        "bad metadata",
    )


def test_junk_under_refs_is_reported(spec1_repo_dir: tuple[Path, str, str]) -> None:
    path, _, _ = spec1_repo_dir
    (path / "refs" / "junk").mkdir()
    (path / "refs" / "junk" / "file").write_bytes(b"?")
    repo = open_repo(path)
    expect_error(path, repo.list_branches, "refs/junk/file")


def test_damaged_ref_file(spec1_repo_dir: tuple[Path, str, str]) -> None:
    path, _, _ = spec1_repo_dir
    (path / "refs" / "branch.main" / "ref.json").write_bytes(b"not json")
    repo = open_repo(path)
    expect_error(path, lambda: repo.lookup_branch("main"), "refs/branch.main/ref.json")
