"""A varied spec-1 history to migrate, and snippets that describe a repository in either
implementation (a uniquely named helper module: test folders cannot share "conftest" imports).

:func:`build_v1_history` writes, with pyicechunk, a spec-1 repository with nested groups, several
dtypes (a 0-d array among them), inline, native and virtual chunks, a deleted chunk, a resize,
deleted nodes, five commits with metadata on ``main``, a second branch, tags and a deleted tag,
a stored config, and three snapshots no ref reaches (a flush, a deleted branch's commit, a
commit a branch was reset away from). :data:`VIEW` is what a reader sees of a repository;
it runs unchanged on pyicechunk and on icechunk 2.3.0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import zarr
from oracle.snippets import make_storage

import pyicechunk

VIRTUAL_VALUES = np.arange(100, 116, dtype="<i4")


@dataclass
class V1History:
    """What :func:`build_v1_history` made."""

    where: dict[str, Any]
    prefix: str
    main: list[str] = field(default_factory=list)  # commits on main, oldest first
    dev: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    deleted_tag: tuple[str, str] = ("", "")
    unreachable: set[str] = field(default_factory=set)

    @property
    def params(self) -> dict[str, Any]:
        """What the snippets need: the location and the virtual chunk container's prefix."""
        return {"where": self.where, "prefix": self.prefix}


def _config(ic: ModuleType, prefix: str, directory: Path) -> Any:
    config = ic.RepositoryConfig.default()
    config.inline_chunk_threshold_bytes = 64
    config.set_virtual_chunk_container(
        ic.VirtualChunkContainer(prefix, ic.local_filesystem_store(str(directory)))
    )
    return config


def build_v1_history(
    where: dict[str, Any], data_dir: Path, ic: ModuleType = pyicechunk
) -> V1History:
    """Write the history described in the module docstring at ``where`` (a location spec),
    with ``ic``: pyicechunk (asked for spec 1), or icechunk 1.1.21 (which writes only spec 1)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    data_file = data_dir / "values.bin"
    data_file.write_bytes(VIRTUAL_VALUES.tobytes())
    prefix = f"file://{data_dir}/"
    built = V1History(where, prefix)
    rs = np.random.RandomState(7)
    spec = {"spec_version": 1} if ic is pyicechunk else {}  # what there is to migrate
    repo = ic.Repository.create(make_storage(ic, where), _config(ic, prefix, data_dir), **spec)

    def commit(session: Any, message: str, **metadata: Any) -> str:
        sid = session.commit(message, metadata=metadata)
        built.main.append(sid)
        return sid

    s = repo.writable_session("main")
    root = zarr.create_group(s.store, attributes={"title": "to migrate"})
    grp = root.create_group("grp", attributes={"nested": {"x": 1.5}})
    sub = grp.create_group("sub")
    sub.create_group("leaf")
    grp.create_array("f8", shape=(20, 30), chunks=(10, 7), dtype="f8", fill_value=-1.0)[:] = (
        rs.standard_normal((20, 30))
    )
    root.create_array("i2", shape=(9,), chunks=(4,), dtype="i2")[:] = rs.randint(-300, 300, 9)
    root.create_array("scalar", shape=(), dtype="f4", fill_value=0.0)[()] = np.float32(3.25)
    root.create_array("flags", shape=(7, 3), chunks=(2, 2), dtype="bool")[:] = rs.rand(7, 3) > 0.5
    # Raw u1 chunks of 64 and 65 bytes: one inline, one a chunk object (threshold 64).
    for n in (64, 65):
        arr = sub.create_array(f"u1_{n}", shape=(2 * n,), chunks=(n,), dtype="u1", compressors=None)
        arr[:] = rs.randint(1, 255, size=2 * n).astype("u1")
    root.create_array(
        "virt", shape=(16,), chunks=(4,), dtype="<i4", compressors=None, fill_value=-1
    )
    url = data_file.as_uri()
    s.store.set_virtual_refs(
        "virt",
        [ic.VirtualChunkSpec([0], url, 48, 16), ic.VirtualChunkSpec([1], url, 0, 16)],
    )
    commit(s, "create hierarchy", step=1, who="A", f=0.25)

    s = repo.writable_session("main")
    f8 = zarr.open_array(s.store, path="grp/f8", mode="r+")
    f8[0:10, 0:7] = -1.0  # the fill value everywhere: the chunk is deleted
    f8[10:, 7:14] = rs.standard_normal((10, 7))
    s.store.set_virtual_refs("virt", [ic.VirtualChunkSpec([3], url, 16, 16)])
    commit(s, "edit and drop a chunk", step=2, nested={"a": [1, None]})

    s = repo.writable_session("main")
    root = zarr.open_group(s.store, mode="r+")
    root["grp/f8"].resize((15, 20))
    root.attrs["title"] = "resized"
    commit(s, "resize", step=3, big=2**40, neg=-3)

    s = repo.writable_session("main")
    root = zarr.open_group(s.store, mode="r+")
    del root["grp/sub/leaf"]
    del root["flags"]
    commit(s, "delete nodes", step=4, ok=True)

    s = repo.writable_session("main")
    root = zarr.open_group(s.store, mode="r+")
    root.create_array("late", shape=(3, 4), chunks=(3, 2), dtype="i8")[:] = rs.randint(
        0, 100, size=(3, 4)
    )
    commit(s, "late additions", step=5, items=[1.5, "x"])

    repo.create_branch("dev", built.main[2])
    s = repo.writable_session("dev")
    zarr.open_group(s.store, mode="r+").create_group("dev_only")
    zarr.open_array(s.store, path="i2", mode="r+")[:] = 1
    built.dev = s.commit("dev work", metadata={"branch": "dev"})

    built.tags = {"v1": built.main[0], "v3": built.main[2], "dev-tip": built.dev}
    for name, target in built.tags.items():
        repo.create_tag(name, target)
    repo.create_tag("withdrawn", built.main[1])
    repo.delete_tag("withdrawn")
    built.deleted_tag = ("withdrawn", built.main[1])

    # Three snapshots no ref reaches.
    s = repo.writable_session("main")
    zarr.open_array(s.store, path="i2", mode="r+")[0] = 99
    built.unreachable.add(s.flush("flushed, never committed"))
    repo.create_branch("tmp", built.main[-1])
    s = repo.writable_session("tmp")
    zarr.open_array(s.store, path="i2", mode="r+")[1] = 98
    built.unreachable.add(s.commit("on a branch that goes away"))
    repo.delete_branch("tmp")
    s = repo.writable_session("main")
    zarr.open_array(s.store, path="i2", mode="r+")[2] = 97
    built.unreachable.add(s.commit("reset away"))
    repo.reset_branch("main", built.main[-1])
    return built


# --- snippets: the same code on pyicechunk and on icechunk 2.3.0 -------------------------------

OPEN = """
access = getattr(getattr(icechunk, "credentials", None), "LocalFileSystemAccess", None)
repo = icechunk.Repository.open(
    make_storage(where), authorize_virtual_chunk_access={prefix: access}
)
"""

VIEW = (
    OPEN
    + """
def arrays_at(**ref):
    group = zarr.open_group(repo.readonly_session(**ref).store, mode="r")
    return {
        path: member[...]
        for path, member in sorted(group.members(max_depth=None))
        if isinstance(member, zarr.Array)
    }

def history(**ref):
    return [
        (s.id, s.parent_id, s.message, s.metadata, s.written_at) for s in repo.ancestry(**ref)
    ]

def diff_fields(d):
    return {
        name: sorted(getattr(d, name)) if name != "updated_chunks" else {
            path: sorted(tuple(c) for c in coords) for path, coords in d.updated_chunks.items()
        }
        for name in (
            "new_groups", "new_arrays", "deleted_groups", "deleted_arrays",
            "updated_groups", "updated_arrays", "updated_chunks",
        )
    }

branches = sorted(repo.list_branches())
tags = sorted(repo.list_tags())
histories = {**{b: history(branch=b) for b in branches}, **{t: history(tag=t) for t in tags}}
listed = sorted({entry[0] for h in histories.values() for entry in h})
# The initial snapshot has no root group to open.
with_data = [e[0] for h in histories.values() for e in h if e[1] is not None]
main = [entry[0] for entry in histories["main"]]
{
    "branches": branches,
    "tips": {b: repo.lookup_branch(b) for b in branches},
    "tags": {t: repo.lookup_tag(t) for t in tags},
    "histories": histories,
    "listed": listed,
    "data": {sid: arrays_at(snapshot_id=sid) for sid in sorted(set(with_data))},
    "diffs": [
        diff_fields(repo.diff(from_snapshot_id=old, to_snapshot_id=new))
        for new, old in zip(main, main[1:])
    ],
}
"""
)
