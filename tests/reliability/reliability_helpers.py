"""Helpers for the reliability tests: small repositories and surgery on their objects.

Objects are rewritten through pyicechunk's own asset manager, so a test can give a snapshot a
new parent or a manifest other contents under the object's own id, which is exactly what a
damaged or hostile file looks like to a reader.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import zarr

import pyicechunk as icechunk
from pyicechunk._sync import sync
from pyicechunk.format.ids import decode_id
from pyicechunk.format.snapshot import Snapshot


def open_repo(path: Path) -> icechunk.Repository:
    """A fresh Repository (empty caches) on a local repository."""
    return icechunk.Repository.open(icechunk.local_filesystem_storage(str(path)))


def assets(path: Path) -> Any:
    return open_repo(path)._ctx.assets


def read_snapshot(path: Path, snapshot_id: str) -> Snapshot:
    snapshot: Snapshot = sync(assets(path).fetch_snapshot(decode_id(snapshot_id, 12)))
    return snapshot


def rewrite_snapshot(path: Path, snapshot_id: str, **fields: Any) -> None:
    """Store a snapshot again under its own id with some fields replaced."""
    snapshot = read_snapshot(path, snapshot_id)
    sync(assets(path).write_snapshot(dataclasses.replace(snapshot, **fields)))


def sid(text: str) -> bytes:
    return decode_id(text, 12)


def linear_history(path: Path, commits: int = 3) -> list[str]:
    """A repository whose main has ``commits`` commits on top of the initial snapshot.

    Commit ``i`` writes ``i + 1`` into every element of array ``/a`` (4 elements, 2 chunks).
    Returns the snapshot ids, oldest (the initial snapshot) first. The repository is spec 1:
    there each snapshot file names its parent, which is what the history tests rewrite (spec 2
    keeps parents in the ``repo`` object's snapshot list instead).
    """
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(path)), spec_version=1)
    ids = [repo.lookup_branch("main")]
    for i in range(commits):
        session = repo.writable_session("main")
        if i == 0:
            zarr.group(session.store).create_array("a", shape=(4,), chunks=(2,), dtype="i4")
        zarr.open_array(session.store, path="a", mode="r+")[:] = np.full(4, i + 1)
        ids.append(session.commit(f"commit {i}"))
    return ids
