"""Shared values of the repo-object tests."""

from __future__ import annotations

from pyicechunk.format.ids import INITIAL_SNAPSHOT_ID
from pyicechunk.format.repo_info import (
    RepoInfo,
    SnapshotInfo,
    encode_metadata_items,
    initial_repo_info,
)

ROOT_ITEMS = encode_metadata_items({"__icechunk": {"is_root": True}})


IDS = [bytes([i]) * 12 for i in range(1, 5)]


def base_repo() -> RepoInfo:
    root = SnapshotInfo(INITIAL_SNAPSHOT_ID, None, 10, "Repository initialized", ROOT_ITEMS)
    return initial_repo_info(root, 20)
