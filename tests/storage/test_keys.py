"""The repository layout: object keys and what belongs to a repository (storage/keys.py)."""

from __future__ import annotations

import pytest

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.ids import INITIAL_SNAPSHOT_ID
from pyicechunk.storage import keys

_ID = "1CECHNKREP0F1RSTCMT0"


def test_object_keys() -> None:
    assert keys.snapshot_key(INITIAL_SNAPSHOT_ID) == f"snapshots/{_ID}"
    assert keys.manifest_key(INITIAL_SNAPSHOT_ID) == f"manifests/{_ID}"
    assert keys.transaction_key(INITIAL_SNAPSHOT_ID) == f"transactions/{_ID}"
    assert keys.chunk_key(INITIAL_SNAPSHOT_ID) == f"chunks/{_ID}"
    assert keys.branch_key("main") == keys.SPEC1_MAIN_BRANCH == "refs/branch.main/ref.json"
    assert keys.tag_key("v1") == "refs/tag.v1/ref.json"
    assert keys.tag_tombstone_key("v1") == "refs/tag.v1/ref.json.deleted"
    assert keys.backup_key("repo.1.X") == "overwritten/repo.1.X"


@pytest.mark.parametrize("name", ["a/b", "..\\x", "nul\0"])
def test_a_ref_key_is_one_component(name: str) -> None:
    for key in (keys.branch_key, keys.tag_key, keys.tag_tombstone_key):
        with pytest.raises(IcechunkError, match="cannot contain"):
            key(name)


def test_ref_keys_parse_back() -> None:
    assert keys.parse_ref_key(keys.branch_key("dev")) == ("branch", "dev")
    assert keys.parse_ref_key(keys.tag_key("a.b")) == ("tag", "a.b")
    assert keys.parse_ref_key(keys.tag_tombstone_key("v")) == ("tombstone", "v")
    assert keys.parse_ref_key("refs/branch.dev/other") is None
    with pytest.raises(IcechunkError, match="unexpected object refs/junk"):
        keys.parse_ref_key("refs/junk")


@pytest.mark.parametrize(
    ("key", "belongs"),
    [
        ("config.yaml", True),
        ("repo", True),
        (f"snapshots/{_ID}", True),
        (f"chunks/{_ID}", True),
        ("chunks/not-an-id", False),
        ("refs/branch.main/ref.json", True),
        ("refs/tag.v1/ref.json.deleted", True),
        ("refs/branch.main/ref.json.deleted", False),
        ("refs/other.x/ref.json", False),
        (f"overwritten/repo.30707554124643.{_ID}", True),
        ("overwritten/repo.x.y", False),
        ("notes.txt", False),
        ("snapshots/sub/" + _ID, False),
    ],
)
def test_layout_keys(key: str, belongs: bool) -> None:
    assert keys.is_layout_key(key) is belongs


def test_layout_directories() -> None:
    layout = [("chunks",), ("refs",), ("overwritten",), ("refs", "branch.x"), ("refs", "tag.y")]
    for parts in layout:
        assert keys.is_layout_directory(parts), parts
    for parts in [("other",), ("refs", "branch."), ("refs", "junk.x"), ("chunks", "x")]:
        assert not keys.is_layout_directory(parts), parts
