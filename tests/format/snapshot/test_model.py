"""The snapshot model: node paths and the order of descendants."""

from __future__ import annotations

from typing import Any

import pytest

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.snapshot import (
    NodeSnapshot,
    Snapshot,
    validate_path,
)


def test_iter_descendants_uses_path_order() -> None:
    paths = ["/", "/a", "/a-b", "/a/b", "/a/b/c", "/a0", "/ab", "/b"]
    snap = Snapshot(
        b"S" * 12,
        None,
        tuple(NodeSnapshot(bytes(8), p, b"", None) for p in reversed(paths)),
        0,
        "",
        {},
        (),
    )
    assert [n.path for n in snap.iter_descendants("/a")] == ["/a/b", "/a/b/c"]
    assert [n.path for n in snap.iter_descendants("/")] == paths[1:]
    assert list(snap.iter_descendants("/b")) == []
    assert list(snap.iter_descendants("/missing")) == []
    assert snap.get_node("/a-b") is not None and snap.get_node("/a/") is None


@pytest.mark.parametrize("path", ["/", "/a", "/a/b", "/a.b", "/...", "/a b/é"])
def test_valid_paths(path: str) -> None:
    assert validate_path(path) == path


@pytest.mark.parametrize("path", ["", "a", "a/b", "/a/", "//", "/a//b", "/./a", "/a/..", 5])
def test_invalid_paths(path: Any) -> None:
    with pytest.raises(IcechunkError, match="invalid node path"):
        validate_path(path)
