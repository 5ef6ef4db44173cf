"""A spec-1 repository migrated by pyicechunk, as icechunk 2.3.0 sees it, against a copy of the
same repository migrated by icechunk 2.3.0 itself (FORMAT-V2 §13).

The history (:func:`migration_history.build_v1_history`) is written by pyicechunk as spec 1 and
described by pyicechunk before the migration; after it, icechunk 2.3.0 must describe both
migrated copies exactly as pyicechunk described the original (refs, ancestry with ids, parents,
messages, metadata and times, the data of every array at every listed snapshot, diffs), and the
two copies must agree on what only spec 2 has (ops log, deleted tags, config, the snapshot list
of the ``repo`` object). Then icechunk 2.3.0 works on top of what we migrated.
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from migration_history import OPEN, VIEW, build_v1_history
from oracle import InProcess, Oracle, equal, raises
from oracle.snippets import make_storage

import pyicechunk as ic
from pyicechunk._sync import sync
from pyicechunk.format.flexbuffers import decode_flexbuffer
from pyicechunk.format.repo_info import RepoInfo, unpack_repo_object
from pyicechunk.ops.migration import migrate_1_to_2
from pyicechunk.session.context import RepoContext
from pyicechunk.storage import keys

OPS_LOG = (
    OPEN
    + """
[(repr(u.kind), u.updated_at, u.backup_path) for u in repo.ops_log()]
"""
)

MIGRATE = """
repo = icechunk.Repository.open(make_storage(where))
migrated = icechunk.upgrade_icechunk_repository(repo, dry_run=False)
int(migrated.spec_version)
"""


def _copy(source: dict[str, Any], target: dict[str, Any]) -> None:
    """Copy every object of one location to another (a directory, or an S3 prefix)."""
    if source["kind"] == "local":
        shutil.copytree(source["path"], target["path"])
        return
    src = make_storage(ic, source).backend
    dst = make_storage(ic, target).backend

    async def copy() -> None:
        for info in await src.list(""):
            await dst.put(info.key, await src.get(info.key))

    sync(copy())


def _migrate_with_pyicechunk(where: dict[str, Any]) -> RepoInfo:
    """Our migration of the repository at ``where``, through the repository state as the
    public function runs it (which also needs ``Repository.open`` of spec 2 for its result)."""
    ctx = RepoContext(storage=make_storage(ic, where), config=ic.RepositoryConfig(), spec_version=1)
    return sync(migrate_1_to_2(ctx.state, ctx.storage.backend, dry_run=False))


def _repo_object(where: dict[str, Any]) -> RepoInfo:
    backend = make_storage(ic, where).backend
    return unpack_repo_object(sync(backend.get(keys.REPO)))


def _listing(where: dict[str, Any]) -> list[str]:
    backend = make_storage(ic, where).backend
    return sorted(info.key for info in sync(backend.list("")))


def _comparable(repo: RepoInfo) -> dict[str, Any]:
    """The ``repo`` object with its FlexBuffers decoded (their byte layout may differ: 2.3.0
    writes non-negative integers as UInt, we as Int)."""
    return {
        "branches": dict(repo.branches),
        "tags": dict(repo.tags),
        "deleted_tags": repo.deleted_tags,
        "snapshots": {
            sid: (
                s.parent_id,
                s.flushed_at,
                s.message,
                s.metadata_values(),
                s.pruned_ancestor_tx_logs,
            )
            for sid, s in repo.snapshots.items()
        },
        "status": repo.status,
        "metadata": repo.metadata_values(),
        "config": None if repo.config is None else decode_flexbuffer(repo.config),
        "log": [(u.action, u.updated_at, u.backup_path) for u in repo.latest_updates[1:]],
        "newest": type(repo.latest_updates[0].action),
        "repo_before_updates": repo.repo_before_updates,
        "flags": (repo.enabled_feature_flags, repo.disabled_feature_flags),
        "spec_version": repo.spec_version,
    }


@pytest.mark.parametrize(
    ("writer", "kind"),
    [("pyicechunk", "local"), ("pyicechunk", "s3"), ("icechunk", "local")],
    ids=["pyicechunk-local", "pyicechunk-s3", "icechunk1-local"],
)
def test_what_we_migrate_reads_as_icechunk_2_migrates_it(
    pyic: InProcess,
    ic2: Oracle,
    storage_spec: Callable[..., dict[str, Any]],
    tmp_path: Path,
    writer: str,
    kind: str,
) -> None:
    """The history is written by pyicechunk, or by icechunk 1.1.21 (the repositories users
    actually migrate); pyicechunk describes it before the migration."""
    ours_at, theirs_at = storage_spec(kind, "ours"), storage_spec(kind, "theirs")
    built = build_v1_history(ours_at, tmp_path / "data", importlib.import_module(writer))
    before = pyic.run(VIEW, **built.params)
    _copy(ours_at, theirs_at)
    files_before = _listing(ours_at)

    _migrate_with_pyicechunk(ours_at)
    assert ic2.run(MIGRATE, where=theirs_at) == 2

    # Only `repo` is new; refs/ and config.yaml are gone; every other object stays.
    after = _listing(ours_at)
    assert set(after) - set(files_before) == {keys.REPO}
    assert {k for k in set(files_before) - set(after)} == {
        k for k in files_before if k.startswith(keys.REFS) or k == keys.CONFIG
    }
    assert _listing(theirs_at) == after

    # icechunk 2.3.0 sees in our migration what pyicechunk saw before it, and the same as in
    # its own.
    ours_seen = ic2.run(VIEW, **built.params)
    assert equal(ours_seen, before)
    theirs_seen = ic2.run(VIEW, where=theirs_at, prefix=built.prefix)
    assert equal(theirs_seen, ours_seen)
    listed = set(ours_seen["listed"])
    assert built.unreachable and not built.unreachable & listed
    assert set(built.main) | {built.dev} <= listed

    # What only spec 2 has: the same ops log (all but the migration's own time), deleted tags,
    # config and snapshot list.
    ours_log = ic2.run(OPS_LOG, **built.params)
    theirs_log = ic2.run(OPS_LOG, where=theirs_at, prefix=built.prefix)
    assert (
        ours_log[0][0]
        == theirs_log[0][0]
        == ("icechunk.ops.UpdateType.RepoMigrated(from_version=1, to_version=2)")
    )
    assert equal(ours_log[1:], theirs_log[1:])
    assert len(ours_log) == 1 + 1 + 5 + 1 + 1 + 3 + 2  # init, commits, dev, tags, deleted tag
    assert ic2.run(
        "icechunk.Repository.fetch_config(make_storage(where)) "
        "== icechunk.Repository.fetch_config(make_storage(other))",
        where=ours_at,
        other=theirs_at,
    )
    assert equal(_comparable(_repo_object(ours_at)), _comparable(_repo_object(theirs_at)))
    name, target = built.deleted_tag
    with raises("AlreadyExistsError", kind="tag-previously-deleted"):
        ic2.run(f"repo.create_tag({name!r}, {target!r})", **built.params)

    # icechunk 2.3.0 works on top: commit, amend, tag, delete a branch; all of it reads back.
    done = ic2.run(
        OPEN
        + """
s = repo.writable_session("main")
zarr.open_array(s.store, path="i2", mode="r+")[3] = 42
first = s.commit("on top of the migration", metadata={"by": "icechunk2"})
s = repo.writable_session("main")
zarr.open_array(s.store, path="late", mode="r+")[0, 0] = -5
amended = s.amend("amended on top")
repo.create_tag("after", amended)
repo.delete_branch("dev")
[repr(u.kind).split("(")[0].rsplit(".", 1)[1] for u in repo.ops_log()][:5]
""",
        **built.params,
    )
    assert done == ["BranchDeleted", "TagCreated", "CommitAmended", "NewCommit", "RepoMigrated"]
    ic2.reset()
    seen = ic2.run(VIEW, **built.params)
    assert seen["branches"] == ["main"]
    assert seen["histories"]["main"][0][2] == "amended on top"
    assert seen["histories"]["main"][1][0] == built.main[-1]
    assert seen["data"][seen["tags"]["after"]]["i2"][3] == 42
