"""Repository lifecycle, configuration, refs, history and pickling (API-1.1 §4)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import pickle
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import zarr
from parity import INITIAL_SNAPSHOT_ID, commit_array, create_repo, msg, on_spec_2, write_values

# -- lifecycle -------------------------------------------------------------------------------


def test_create_fresh_repository(ic: ModuleType, repo: Any) -> None:
    assert repo.list_branches() == {"main"}
    assert repo.list_tags() == set()
    assert repo.lookup_branch("main") == INITIAL_SNAPSHOT_ID
    history = list(repo.ancestry(branch="main"))
    assert len(history) == 1
    root = history[0]
    assert isinstance(root, ic.SnapshotInfo)
    assert root.id == INITIAL_SNAPSHOT_ID
    assert root.message == "Repository initialized"
    assert root.metadata == {"__root": True}
    assert root.parent_id is None
    assert root.manifests == []


def test_create_makes_spec_2_unless_spec_1_is_asked_for(tmp_path: Path) -> None:
    """pyicechunk's default is icechunk 2.x's: spec 2 (a ``repo`` object, no ``refs/``);
    ``spec_version=1`` and ``open_or_create(create_version=1)`` give what 1.1.21 writes."""
    import pyicechunk as ic

    cases = {
        "default": lambda s: ic.Repository.create(s),
        "v1": lambda s: ic.Repository.create(s, spec_version=ic.SpecVersion.v1),
        "int-1": lambda s: ic.Repository.create(s, spec_version=1),
        "open_or_create": lambda s: ic.Repository.open_or_create(s),
        "open_or_create-1": lambda s: ic.Repository.open_or_create(s, create_version=1),
        "async": lambda s: asyncio.run(ic.Repository.create_async(s)),
    }
    for name, create in cases.items():
        root = tmp_path / name
        storage = ic.local_filesystem_storage(str(root))
        repo = create(storage)
        expected = 1 if name.endswith("1") else 2
        assert repo.spec_version == expected, name
        assert ic.Repository.fetch_spec_version(storage) == expected, name
        assert (root / "repo").exists() == (expected == 2), name
        assert (root / "refs" / "branch.main" / "ref.json").exists() == (expected == 1), name
        assert ic.Repository.open(storage).spec_version == expected, name


def test_create_twice_and_on_junk_prefix(ic: ModuleType, tmp_path: Path) -> None:
    storage = ic.local_filesystem_storage(str(tmp_path / "r"))
    ic.Repository.create(storage)
    with pytest.raises(
        ic.IcechunkError, match=msg("repositories can only be created in clean prefixes")
    ):
        ic.Repository.create(storage)

    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "some-file.txt").write_text("not a repository")
    junk_storage = ic.local_filesystem_storage(str(junk))
    assert ic.Repository.exists(junk_storage) is False
    with pytest.raises(
        ic.IcechunkError, match=msg("repositories can only be created in clean prefixes")
    ):
        ic.Repository.open_or_create(junk_storage)
    with pytest.raises(
        ic.IcechunkError, match=msg("repositories can only be created in clean prefixes")
    ):
        ic.Repository.create(junk_storage)


def test_open_missing_repository(ic: ModuleType, tmp_path: Path) -> None:
    storage = ic.local_filesystem_storage(str(tmp_path / "empty"))
    with pytest.raises(ic.IcechunkError, match=msg("the repository doesn't exist")):
        ic.Repository.open(storage)
    if ic.__name__ == "pyicechunk":
        # icechunk 2.x: no repository is an error, not "no config".
        with pytest.raises(ic.IcechunkError, match=msg("the repository doesn't exist")):
            ic.Repository.fetch_config(storage)
    else:
        assert ic.Repository.fetch_config(storage) is None
    assert ic.Repository.exists(storage) is False


def test_exists_open_and_open_or_create(ic: ModuleType, tmp_path: Path) -> None:
    storage = ic.local_filesystem_storage(str(tmp_path / "r"))
    created = ic.Repository.open_or_create(storage)
    assert ic.Repository.exists(storage) is True
    sid = commit_array(created)
    reopened = ic.Repository.open_or_create(storage)
    assert reopened.lookup_branch("main") == sid
    opened = ic.Repository.open(storage)
    assert opened.lookup_branch("main") == sid


def test_async_lifecycle(ic: ModuleType, tmp_path: Path) -> None:
    storage = ic.local_filesystem_storage(str(tmp_path / "r"))

    async def main() -> None:
        assert await ic.Repository.exists_async(storage) is False
        repo = await ic.Repository.create_async(storage)
        assert await repo.list_branches_async() == {"main"}
        assert await ic.Repository.exists_async(storage) is True
        again = await ic.Repository.open_async(storage)
        assert await again.lookup_branch_async("main") == INITIAL_SNAPSHOT_ID
        either = await ic.Repository.open_or_create_async(storage)
        assert await either.list_tags_async() == set()
        assert await ic.Repository.fetch_config_async(storage) is None

    asyncio.run(main())


# -- configuration -------------------------------------------------------------------------


def test_config_persisted_only_when_not_default(ic: ModuleType, tmp_path: Path) -> None:
    custom = ic.local_filesystem_storage(str(tmp_path / "custom"))
    config = ic.RepositoryConfig(inline_chunk_threshold_bytes=0)
    create_repo(ic, custom, config=config)
    fetched = ic.Repository.fetch_config(custom)
    assert fetched is not None
    assert fetched == config
    assert fetched.inline_chunk_threshold_bytes == 0

    plain = ic.local_filesystem_storage(str(tmp_path / "plain"))
    repo = create_repo(ic, plain)
    assert ic.Repository.fetch_config(plain) is None
    repo.save_config()
    saved = ic.Repository.fetch_config(plain)
    assert saved is not None
    assert saved == repo.config


def test_open_merges_given_config_over_saved(ic: ModuleType, tmp_path: Path) -> None:
    storage = ic.local_filesystem_storage(str(tmp_path / "r"))
    create_repo(ic, storage, config=ic.RepositoryConfig(inline_chunk_threshold_bytes=1000))
    repo = ic.Repository.open(storage, config=ic.RepositoryConfig(max_concurrent_requests=7))
    assert repo.config.inline_chunk_threshold_bytes == 1000
    assert repo.config.max_concurrent_requests == 7

    re = repo.reopen(config=ic.RepositoryConfig(get_partial_values_concurrency=3))
    assert re.config.inline_chunk_threshold_bytes == 1000
    assert re.config.max_concurrent_requests == 7
    assert re.config.get_partial_values_concurrency == 3
    same = repo.reopen()
    assert same.config == repo.config


def test_config_property_is_a_copy(ic: ModuleType, repo: Any) -> None:
    before = repo.config.inline_chunk_threshold_bytes
    repo.config.inline_chunk_threshold_bytes = 1
    assert repo.config.inline_chunk_threshold_bytes == before
    cfg = repo.config
    cfg.inline_chunk_threshold_bytes = 1
    assert repo.config.inline_chunk_threshold_bytes == before


def test_storage_property(ic: ModuleType, tmp_path: Path) -> None:
    storage = ic.local_filesystem_storage(str(tmp_path / "r"))
    repo = create_repo(ic, storage)
    assert isinstance(repo.storage, ic.Storage)
    # The copy points at the same place: a repo opened through it sees the same refs.
    sid = commit_array(repo)
    assert ic.Repository.open(repo.storage).lookup_branch("main") == sid


def test_inline_threshold_config_changes_chunk_type(ic: ModuleType, tmp_path: Path) -> None:
    storage = ic.local_filesystem_storage(str(tmp_path / "r"))
    repo = create_repo(ic, storage, config=ic.RepositoryConfig(inline_chunk_threshold_bytes=0))
    commit_array(repo, values=np.arange(1, 5, dtype="i1"))
    session = repo.readonly_session("main")
    assert session.chunk_type("/a", [0]) == ic.ChunkType.NATIVE


# -- sessions by ref -------------------------------------------------------------------------


def test_readonly_session_by_branch_tag_snapshot(ic: ModuleType, repo: Any) -> None:
    first = commit_array(repo, values=np.array([1, 2], dtype="i4"))
    repo.create_tag("v1", first)
    second = write_values(repo, "a", slice(None), 9, "overwrite")

    by_branch = repo.readonly_session("main")
    assert by_branch.snapshot_id == second
    assert by_branch.read_only is True
    assert by_branch.branch is None
    assert zarr.open_array(by_branch.store, path="a", mode="r")[:].tolist() == [9, 9]

    by_tag = repo.readonly_session(tag="v1")
    assert by_tag.snapshot_id == first
    assert zarr.open_array(by_tag.store, path="a", mode="r")[:].tolist() == [1, 2]

    by_id = repo.readonly_session(snapshot_id=first)
    assert by_id.snapshot_id == first
    by_kw = repo.readonly_session(branch="main")
    assert by_kw.snapshot_id == second

    async def main() -> None:
        s = await repo.readonly_session_async(tag="v1")
        assert s.snapshot_id == first
        w = await repo.writable_session_async("main")
        assert w.branch == "main"
        assert w.snapshot_id == second

    asyncio.run(main())


def test_readonly_session_as_of(ic: ModuleType, repo: Any) -> None:
    first = commit_array(repo)
    second = write_values(repo, "a", 0, 5, "second")
    info_first = repo.lookup_snapshot(first)
    info_second = repo.lookup_snapshot(second)
    assert repo.readonly_session("main", as_of=info_first.written_at).snapshot_id == first
    assert repo.readonly_session("main", as_of=info_second.written_at).snapshot_id == second
    between = info_first.written_at + (info_second.written_at - info_first.written_at) / 2
    assert repo.readonly_session("main", as_of=between).snapshot_id == first
    long_ago = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(
        ic.IcechunkError, match=msg("branch main does not have a snapshots before or at")
    ):
        repo.readonly_session("main", as_of=long_ago)
    with pytest.raises(
        ValueError, match=msg("as_of argument must be provided together with a branch name")
    ):
        repo.readonly_session(tag="t", as_of=long_ago)
    with pytest.raises(TypeError, match=msg("expected a datetime with non-None tzinfo")):
        repo.readonly_session("main", as_of=dt.datetime(2000, 1, 1))


def test_readonly_session_selector_errors(ic: ModuleType, repo: Any) -> None:
    with pytest.raises(ValueError, match=msg("Must provide one of branch, tag, or snapshot_id")):
        repo.readonly_session()
    with pytest.raises(ValueError, match=msg("Must provide one of branch, tag, or snapshot_id")):
        repo.readonly_session("main", tag="v1")
    with pytest.raises(ic.IcechunkError, match=msg("ref not found `nope`")):
        repo.readonly_session("nope")
    with pytest.raises(ic.IcechunkError, match=msg("ref not found `nope`")):
        repo.readonly_session(tag="nope")
    with pytest.raises(ic.IcechunkError, match=msg("ref not found `nope`")):
        repo.writable_session("nope")


def test_writable_session(ic: ModuleType, repo: Any) -> None:
    session = repo.writable_session("main")
    assert isinstance(session, ic.Session)
    assert session.read_only is False
    assert session.branch == "main"
    assert session.snapshot_id == INITIAL_SNAPSHOT_ID
    assert session.has_uncommitted_changes is False
    assert isinstance(session.store, ic.IcechunkStore)


def test_transaction_commits_on_exit(ic: ModuleType, repo: Any) -> None:
    with repo.transaction("main", message="in a transaction", metadata={"k": 1}) as store:
        assert isinstance(store, ic.IcechunkStore)
        zarr.create_group(store)
    tip = repo.lookup_snapshot(repo.lookup_branch("main"))
    assert tip.message == "in a transaction"
    assert tip.metadata == {"k": 1}
    assert tip.parent_id == INITIAL_SNAPSHOT_ID


def test_transaction_body_error_does_not_commit(ic: ModuleType, repo: Any) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with repo.transaction("main", message="never") as store:
            zarr.create_group(store)
            raise RuntimeError("boom")
    assert repo.lookup_branch("main") == INITIAL_SNAPSHOT_ID


def test_transaction_without_changes_raises(ic: ModuleType, repo: Any) -> None:
    with pytest.raises(
        ic.IcechunkError, match=msg("session error: cannot commit, no changes made to the session")
    ):
        with repo.transaction("main", message="nothing"):
            pass


# -- branches --------------------------------------------------------------------------------


def test_branch_lifecycle(ic: ModuleType, repo: Any) -> None:
    sid = commit_array(repo)
    repo.create_branch("dev", sid)
    assert repo.list_branches() == {"main", "dev"}
    assert repo.lookup_branch("dev") == sid
    dev_sid = write_values(repo, "a", 0, 7, "on dev", branch="dev")
    assert repo.lookup_branch("dev") == dev_sid
    assert repo.lookup_branch("main") == sid
    repo.delete_branch("dev")
    assert repo.list_branches() == {"main"}
    with pytest.raises(ic.IcechunkError, match=msg("ref not found `dev`")):
        repo.lookup_branch("dev")
    with pytest.raises(ic.IcechunkError, match=msg("ref not found `dev`")):
        repo.delete_branch("dev")
    repo.create_branch("dev", INITIAL_SNAPSHOT_ID)
    assert repo.lookup_branch("dev") == INITIAL_SNAPSHOT_ID


def test_branch_errors(ic: ModuleType, repo: Any) -> None:
    sid = commit_array(repo)
    repo.create_branch("dev", sid)
    # icechunk 2.x on spec 2: its own message for an existing branch, and names are not paths
    # there, so a '/' is allowed
    spec_2 = on_spec_2(ic, repo)
    existing = (
        f"branch already exists `dev -> {sid}`"
        if spec_2
        else (f"branch update conflict: `(None) != (Some({sid}))`")
    )
    with pytest.raises(ic.IcechunkError, match=msg(existing)):
        repo.create_branch("dev", sid)
    with pytest.raises(ic.IcechunkError, match=msg("main branch cannot be deleted")):
        repo.delete_branch("main")
    if spec_2:
        repo.create_branch("a/b", sid)
        assert repo.lookup_branch("a/b") == sid
    else:
        with pytest.raises(ic.IcechunkError, match=msg("invalid ref name `a/b`")):
            repo.create_branch("a/b", sid)
    repo.create_branch("with space", sid)
    assert "with space" in repo.list_branches()
    # icechunk 1.1.21 accepts an empty name; pyicechunk refuses it (a nameless ref is a mistake)
    if ic.__name__ == "pyicechunk":
        with pytest.raises(ic.IcechunkError, match=msg("invalid ref name ``")):
            repo.create_branch("", sid)
    else:
        repo.create_branch("", sid)


@pytest.mark.parametrize("op", ["create_branch", "create_tag", "reset_branch", "readonly_session"])
def test_unknown_and_malformed_snapshot_ids(ic: ModuleType, repo: Any, op: str) -> None:
    def call(snapshot_id: str) -> None:
        if op == "create_branch":
            repo.create_branch("x", snapshot_id)
        elif op == "create_tag":
            repo.create_tag("x", snapshot_id)
        elif op == "reset_branch":
            repo.reset_branch("main", snapshot_id)
        else:
            repo.readonly_session(snapshot_id=snapshot_id)

    with pytest.raises(ic.IcechunkError, match=msg("snapshot not found: `00000000000000000000`")):
        call("0" * 20)
    with pytest.raises(ic.IcechunkError, match=msg("invalid snapshot id: `abc`")):
        call("abc")


def test_reset_branch(ic: ModuleType, repo: Any) -> None:
    first = commit_array(repo)
    second = write_values(repo, "a", 0, 3, "second")
    repo.create_branch("dev", second)
    with pytest.raises(
        ic.IcechunkError,
        match=msg(f"branch update conflict: `(Some({first})) != (Some({second}))`"),
    ):
        repo.reset_branch("dev", first, from_snapshot_id=first)
    assert repo.lookup_branch("dev") == second
    repo.reset_branch("dev", first, from_snapshot_id=second)
    assert repo.lookup_branch("dev") == first
    assert [s.id for s in repo.ancestry(branch="dev")] == [first, INITIAL_SNAPSHOT_ID]
    with pytest.raises(ic.IcechunkError, match=msg("ref not found `nope`")):
        repo.reset_branch("nope", first)


def test_reset_branch_to_flushed_snapshot(ic: ModuleType, repo: Any) -> None:
    first = commit_array(repo)
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a", mode="r+")[0] = 42
    detached = session.flush("detached")
    assert repo.lookup_branch("main") == first
    repo.reset_branch("main", detached)
    assert [s.id for s in repo.ancestry(branch="main")] == [detached, first, INITIAL_SNAPSHOT_ID]
    repo.create_branch("from-flushed", detached)
    assert repo.lookup_branch("from-flushed") == detached


# -- tags ------------------------------------------------------------------------------------


def test_tags_are_immutable(ic: ModuleType, repo: Any) -> None:
    sid = commit_array(repo)
    repo.create_tag("v1", sid)
    assert repo.list_tags() == {"v1"}
    assert repo.lookup_tag("v1") == sid
    with pytest.raises(ic.IcechunkError, match=msg("tag already exists, tags are immutable: `v1`")):
        repo.create_tag("v1", sid)
    repo.delete_tag("v1")
    assert repo.list_tags() == set()
    # icechunk 2.x on spec 2 says why a deleted tag's name cannot come back
    reused = (
        "icechunk does not allow tag reuse and tag was already deleted `v1`"
        if on_spec_2(ic, repo)
        else "tag already exists, tags are immutable: `v1`"
    )
    with pytest.raises(ic.IcechunkError, match=msg(reused)):
        repo.create_tag("v1", sid)
    with pytest.raises(ic.IcechunkError, match=msg("ref not found `v1`")):
        repo.lookup_tag("v1")
    with pytest.raises(ic.IcechunkError, match=msg("ref not found `v1`")):
        repo.readonly_session(tag="v1")
    with pytest.raises(ic.IcechunkError, match=msg("ref not found `v1`")):
        repo.delete_tag("v1")
    with pytest.raises(ic.IcechunkError, match=msg("ref not found `never`")):
        repo.delete_tag("never")
    if on_spec_2(ic, repo):
        repo.create_tag("a/b", sid)
        assert repo.lookup_tag("a/b") == sid
    else:
        with pytest.raises(ic.IcechunkError, match=msg("invalid ref name `a/b`")):
            repo.create_tag("a/b", sid)


def test_tag_tombstone_on_disk(ic: ModuleType, tmp_path: Path) -> None:
    root = tmp_path / "r"
    repo = create_repo(ic, ic.local_filesystem_storage(str(root)))
    sid = commit_array(repo)
    repo.create_tag("v1", sid)
    assert json.loads((root / "refs" / "tag.v1" / "ref.json").read_text()) == {"snapshot": sid}
    repo.delete_tag("v1")
    assert (root / "refs" / "tag.v1" / "ref.json.deleted").exists()


def test_async_refs(ic: ModuleType, repo: Any) -> None:
    sid = commit_array(repo)

    async def main() -> None:
        await repo.create_branch_async("dev", sid)
        assert await repo.list_branches_async() == {"main", "dev"}
        await repo.reset_branch_async("dev", INITIAL_SNAPSHOT_ID)
        assert await repo.lookup_branch_async("dev") == INITIAL_SNAPSHOT_ID
        await repo.delete_branch_async("dev")
        await repo.create_tag_async("t", sid)
        assert await repo.lookup_tag_async("t") == sid
        await repo.delete_tag_async("t")
        assert await repo.list_tags_async() == set()

    asyncio.run(main())


# -- history ---------------------------------------------------------------------------------


def test_ancestry_sync_and_async(ic: ModuleType, repo: Any) -> None:
    first = commit_array(repo, message="first")
    second = write_values(repo, "a", 0, 1, "second")
    repo.create_tag("t", first)
    history = list(repo.ancestry(branch="main"))
    assert [s.id for s in history] == [second, first, INITIAL_SNAPSHOT_ID]
    assert [s.parent_id for s in history] == [first, INITIAL_SNAPSHOT_ID, None]
    assert [s.message for s in history] == ["second", "first", "Repository initialized"]
    assert all(a.written_at >= b.written_at for a, b in itertools.pairwise(history))
    assert [s.id for s in repo.ancestry(tag="t")] == [first, INITIAL_SNAPSHOT_ID]
    assert [s.id for s in repo.ancestry(snapshot_id=second)] == [second, first, INITIAL_SNAPSHOT_ID]

    async def main() -> None:
        a = [s.id async for s in repo.ancestry(branch="main")]
        b = [s.id async for s in repo.async_ancestry(branch="main")]
        assert a == b == [second, first, INITIAL_SNAPSHOT_ID]

    asyncio.run(main())
    with pytest.raises(ValueError, match=msg("Must provide one of branch, tag, or snapshot_id")):
        list(repo.ancestry())
    with pytest.raises(ValueError, match=msg("Must provide one of branch, tag, or snapshot_id")):
        list(repo.ancestry(branch="main", tag="t"))
    with pytest.raises(ic.IcechunkError, match=msg("ref not found `nope`")):
        list(repo.ancestry(branch="nope"))


def test_lookup_snapshot(ic: ModuleType, repo: Any) -> None:
    sid = commit_array(repo, message="a message", values=np.arange(1, 5, dtype="i4"))
    info = repo.lookup_snapshot(sid)
    assert info == next(iter(repo.ancestry(branch="main")))
    assert info.id == sid
    assert info.parent_id == INITIAL_SNAPSHOT_ID
    assert info.written_at.tzinfo is not None
    assert info.written_at.utcoffset() == dt.timedelta(0)
    assert len(info.manifests) == 1
    assert asyncio.run(repo.lookup_snapshot_async(sid)) == info
    with pytest.raises(ic.IcechunkError, match=msg("invalid snapshot id: `nope`")):
        repo.lookup_snapshot("nope")
    unknown = "0" * 20
    # spec 2 looks the id up in the snapshot list (icechunk 2.x's message), spec 1 reads the file
    missing = (
        f"snapshot id not found `{unknown}`"
        if on_spec_2(ic, repo)
        else f"object store error Object at location snapshots/{unknown} not found"
    )
    with pytest.raises(ic.IcechunkError, match=msg(missing)):
        repo.lookup_snapshot(unknown)


def test_diff_between_snapshots(ic: ModuleType, repo: Any) -> None:
    first = commit_array(repo, values=np.arange(1, 5, dtype="i4"))
    repo.create_tag("t1", first)
    session = repo.writable_session("main")
    root = zarr.open_group(session.store, mode="r+")
    root.create_group("g/h")
    root["a"][1] = 100
    root.attrs["x"] = 1
    second = session.commit("second")

    diff = repo.diff(from_snapshot_id=first, to_branch="main")
    assert isinstance(diff, ic.Diff)
    assert diff.new_groups == {"/g", "/g/h"}
    assert diff.new_arrays == set()
    assert diff.updated_groups == {"/"}
    assert diff.updated_arrays == set()
    assert diff.deleted_groups == set()
    assert diff.deleted_arrays == set()
    assert diff.updated_chunks == {"/a": [[1]]}
    assert repo.diff(from_tag="t1", to_snapshot_id=second) == diff
    assert asyncio.run(repo.diff_async(from_tag="t1", to_branch="main")) == diff

    whole = repo.diff(from_snapshot_id=INITIAL_SNAPSHOT_ID, to_snapshot_id=second)
    assert whole.new_groups == {"/", "/g", "/g/h"}
    assert whole.new_arrays == {"/a"}
    assert whole.updated_chunks == {"/a": [[0], [1], [2], [3]]}


def test_diff_errors(ic: ModuleType, repo: Any) -> None:
    first = commit_array(repo)
    with pytest.raises(
        ic.IcechunkError, match=msg("session error: `to` snapshot ancestry doesn't include `from`")
    ):
        repo.diff(from_branch="main", to_branch="main")
    with pytest.raises(
        ic.IcechunkError, match=msg("session error: `to` snapshot ancestry doesn't include `from`")
    ):
        repo.diff(from_snapshot_id=first, to_snapshot_id=INITIAL_SNAPSHOT_ID)
    with pytest.raises(ValueError, match=msg("Must provide one of branch, tag, or snapshot_id")):
        repo.diff(to_branch="main")
    with pytest.raises(ValueError, match=msg("Must provide one of branch, tag, or snapshot_id")):
        repo.diff(from_branch="main", from_snapshot_id=first, to_branch="main")


def test_inspect_snapshot(ic: ModuleType, repo: Any) -> None:
    sid = commit_array(repo, message="inspect me", values=np.arange(1, 5, dtype="i4"))
    repo.create_tag("t", sid)
    session = repo.writable_session("main")
    zarr.open_group(session.store, mode="r+").attrs["z"] = 1
    # icechunk 1.1's JSON text; icechunk 2.x returns a dict unless pretty= is given.
    text = repo.inspect_snapshot(sid, pretty=True)
    doc = json.loads(text)
    assert "\n" in text
    assert set(doc) == {
        "id",
        "parent_id",
        "flushed_at",
        "commit_message",
        "metadata",
        "manifests",
        "nodes",
    }
    info = repo.lookup_snapshot(sid)
    assert doc["id"] == sid
    assert doc["parent_id"] == INITIAL_SNAPSHOT_ID
    assert doc["commit_message"] == "inspect me"
    assert doc["metadata"] == {}
    assert doc["flushed_at"].endswith("Z")
    assert dt.datetime.fromisoformat(doc["flushed_at"]) == info.written_at
    [manifest] = doc["manifests"]
    assert manifest == {
        "id": info.manifests[0].id,
        "size_bytes": info.manifests[0].size_bytes,
        "num_chunk_refs": 4,
    }
    nodes = {n["path"]: n for n in doc["nodes"]}
    assert set(nodes) == {"/", "/a"}
    assert nodes["/"]["node_type"] == "group"
    assert "manifest_refs" not in nodes["/"]
    assert nodes["/a"]["node_type"] == "array"
    assert len(nodes["/a"]["id"]) == 13
    assert nodes["/a"]["manifest_refs"] == [{"id": manifest["id"], "extents": [[0, 4]]}]

    compact = repo.inspect_snapshot(sid, pretty=False)
    assert "\n" not in compact
    assert json.loads(compact) == doc
    assert json.loads(asyncio.run(repo.inspect_snapshot_async(sid, pretty=True))) == doc
    root_doc = json.loads(repo.inspect_snapshot(INITIAL_SNAPSHOT_ID, pretty=True))
    assert "parent_id" not in root_doc
    assert root_doc["manifests"] == []
    assert root_doc["nodes"] == []


def test_default_commit_metadata(ic: ModuleType, repo: Any) -> None:
    assert repo.default_commit_metadata() == {}
    repo.set_default_commit_metadata({"user": "alice", "k": "default"})
    assert repo.default_commit_metadata() == {"user": "alice", "k": "default"}
    session = repo.writable_session("main")
    zarr.create_group(session.store)
    sid = session.commit("c", metadata={"k": "override"})
    assert repo.lookup_snapshot(sid).metadata == {"user": "alice", "k": "override"}
    with pytest.raises(TypeError, match=msg("cannot be cast as 'dict'")):
        repo.set_default_commit_metadata([1, 2])
    repo.set_default_commit_metadata({})
    assert repo.default_commit_metadata() == {}


def test_default_commit_metadata_only_for_later_sessions(ic: ModuleType, repo: Any) -> None:
    early = repo.writable_session("main")
    repo.set_default_commit_metadata({"user": "bob"})
    zarr.create_group(early.store)
    sid = early.commit("early")
    assert repo.lookup_snapshot(sid).metadata == {}
    later = repo.writable_session("main")
    zarr.open_group(later.store, mode="r+").attrs["x"] = 1
    sid2 = later.commit("later")
    assert repo.lookup_snapshot(sid2).metadata == {"user": "bob"}


def test_chunk_storage_stats_non_virtual(ic: ModuleType, tmp_path: Path) -> None:
    repo = create_repo(ic, ic.local_filesystem_storage(str(tmp_path / "r")))
    stats = repo.chunk_storage_stats()
    assert (stats.native_bytes, stats.virtual_bytes, stats.inlined_bytes) == (0, 0, 0)
    session = repo.writable_session("main")
    root = zarr.open_group(session.store, mode="a")
    big = root.create_array("big", shape=(2000,), chunks=(1000,), dtype="i8", compressors=None)
    big[:] = np.arange(2000)
    small = root.create_array("small", shape=(4,), chunks=(4,), dtype="i1", compressors=None)
    small[:] = 1
    session.commit("c")
    stats = repo.chunk_storage_stats()
    assert stats.native_bytes == 2 * 8000
    assert stats.inlined_bytes == 4
    assert stats.virtual_bytes == 0
    with pytest.warns(DeprecationWarning):
        total = repo.total_chunks_storage()
    assert total == stats.native_bytes


# -- pickling --------------------------------------------------------------------------------


def test_repository_pickle_and_reopen(ic: ModuleType, local_repo: Any) -> None:
    local_repo.set_default_commit_metadata({"user": "carol"})
    sid = commit_array(local_repo)
    clone = pickle.loads(pickle.dumps(local_repo))
    assert isinstance(clone, ic.Repository)
    assert clone.lookup_branch("main") == sid
    assert clone.default_commit_metadata() == {"user": "carol"}
    assert clone.config == local_repo.config
    assert (
        clone.authorized_virtual_container_prefixes
        == local_repo.authorized_virtual_container_prefixes
    )
    assert local_repo.reopen().default_commit_metadata() == {}
