"""A small history built with pyicechunk, shared by the command line and browser tests."""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

import numpy as np
import zarr

import pyicechunk

# The spec versions the command line is tested on.
SPEC_VERSIONS = (1, 2)


def create(storage: Any, spec: int) -> Any:
    """A new repository of spec version ``spec``."""
    return pyicechunk.Repository.create(storage, spec_version=spec)


def build_history(storage: Any, spec: int = 1) -> dict[str, str]:
    """main: root ← c1 (two arrays) ← c2 (edits /data/line chunk 0); dev: c1 ← d1 (attributes);
    tag v1 at c1. Returns the snapshot ids by name."""
    repo = create(storage, spec)
    ids = {"root": repo.lookup_branch("main")}
    session = repo.writable_session("main")
    root = zarr.group(session.store, attributes={"title": "cli test"})
    line = root.create_array("data/line", shape=(50,), chunks=(10,), dtype="f8")
    line[:] = np.arange(50) * 0.5
    plane = root.create_array("data/plane", shape=(6, 4), chunks=(3, 2), dtype="i4")
    plane[:] = np.arange(24).reshape(6, 4)
    ids["c1"] = session.commit("first: two arrays", metadata={"author": "cli"})
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="data/line", mode="r+")[0:10] = -1
    ids["c2"] = session.commit("second: edit the line")
    repo.create_branch("dev", ids["c1"])
    session = repo.writable_session("dev")
    zarr.open_group(session.store, mode="r+").attrs["note"] = "on dev"
    ids["d1"] = session.commit("dev: a note")
    repo.create_tag("v1", ids["c1"])
    return ids


def add_lookalike(repo: Any, snapshot_id: str, tag: str) -> str:
    """A copy of snapshot ``snapshot_id`` under a new id sharing its first 6 characters, tagged
    ``tag``: random ids almost never share a prefix, so ambiguity has to be made."""
    from pyicechunk._sync import sync
    from pyicechunk.format.ids import decode_id, encode_id

    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    middle = "".join(secrets.choice(alphabet) for _ in range(13))
    new_id = snapshot_id[:6] + middle + snapshot_id[19]
    assets = repo._ctx.assets  # test fixture only: the public API cannot choose an id
    original = sync(assets.fetch_snapshot(decode_id(snapshot_id, 12)))
    copy = dataclasses.replace(original, id=decode_id(new_id, 12))
    sync(assets.write_snapshot(copy))
    if repo.spec_version >= 2:  # a spec-2 repository lists every snapshot in `repo`
        from pyicechunk.repo_state import NewSnapshot, SnapshotKind

        sync(repo._ctx.state.add_snapshot(NewSnapshot(SnapshotKind.DETACHED, copy)))
    repo.create_tag(tag, encode_id(copy.id))
    return encode_id(copy.id)
