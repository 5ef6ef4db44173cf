"""Zarr key -> node path / chunk coordinates, checked against a table and against icechunk."""

from __future__ import annotations

import icechunk
import pytest
import zarr
from zarr.core.buffer import default_buffer_prototype

from pyicechunk._error_context import without_context
from pyicechunk.exceptions import IcechunkError
from pyicechunk.store.zarr_keys import CHUNK as _CHUNK
from pyicechunk.store.zarr_keys import METADATA as _METADATA
from pyicechunk.store.zarr_keys import V2 as _V2
from pyicechunk.store.zarr_keys import chunk_key as _chunk_key
from pyicechunk.store.zarr_keys import chunk_key_prefix as _chunk_key_prefix
from pyicechunk.store.zarr_keys import parse_key as _parse_key

VALID = [
    ("zarr.json", (_METADATA, "/", ())),
    ("a/zarr.json", (_METADATA, "/a", ())),
    ("a/b/zarr.json", (_METADATA, "/a/b", ())),
    ("/zarr.json", (_METADATA, "/", ())),
    ("c", (_CHUNK, "/", ())),
    ("c/0", (_CHUNK, "/", (0,))),
    ("c/0/1", (_CHUNK, "/", (0, 1))),
    ("a/c", (_CHUNK, "/a", ())),
    ("a/c/3", (_CHUNK, "/a", (3,))),
    ("a/b/c/1/2/3", (_CHUNK, "/a/b", (1, 2, 3))),
    ("abc/c/1", (_CHUNK, "/abc", (1,))),
    ("a/c/4294967295", (_CHUNK, "/a", (4294967295,))),
    # The reference splits at the last "c" character, not at a "c" path component.
    ("arc", (_CHUNK, "/ar", ())),
    ("a/c/0c", (_CHUNK, "/a/c/0", ())),
    (".zarray", (_V2, ".zarray", ())),
    ("a/.zgroup", (_V2, "a/.zgroup", ())),
    ("a/b/.zattrs", (_V2, "a/b/.zattrs", ())),
    (".zmetadata", (_V2, ".zmetadata", ())),
]

INVALID = [
    "",
    "g1",
    "a/zzz",
    "foo",
    "nonexistent_key",
    "a/c/",
    "a/c0",
    "a/c/x",
    "a/c/-1",
    "a/c/1.5",
    "a/c/0.0",
    "foo/0/0",
    "a/c/4294967296",
    "a/c/ 1",
    "a/c/1_0",
    "a/c//1",
    "a/c/1/",
]

# The reference's u32 parser takes these, so two keys name one chunk (written as `a/c/007`,
# listed as `a/c/7`); we refuse them and name the canonical key instead.
NON_CANONICAL_COORDS = [
    ("a/c/007", "a/c/7"),
    ("a/c/+7", "a/c/7"),
    ("c/0/01", "c/0/1"),
    ("a/b/c/+0/00", "a/b/c/0/0"),
]

# Paths must be canonical; the reference's path type refuses these (we also refuse empty
# components, where the reference would store a path such as "/a//b").
NOT_CANONICAL = ["../zarr.json", "a/../zarr.json", "a/./b/zarr.json", "a//b/zarr.json", "../c/0"]


@pytest.mark.parametrize(("key", "expected"), VALID)
def test_valid_keys(key: str, expected: tuple[int, str, tuple[int, ...]]) -> None:
    assert _parse_key(key) == expected


@pytest.mark.parametrize("key", INVALID + NOT_CANONICAL)
def test_invalid_keys(key: str) -> None:
    with pytest.raises(IcechunkError) as info:
        _parse_key(key)
    assert without_context(info.value.message) == f"invalid zarr key format `{key}`"


@pytest.mark.parametrize(("key", "canonical"), NON_CANONICAL_COORDS)
def test_non_canonical_coordinates_name_the_canonical_key(key: str, canonical: str) -> None:
    with pytest.raises(IcechunkError) as info:
        _parse_key(key)
    message = without_context(info.value.message)
    assert message.startswith(f"invalid zarr key format `{key}`: ")
    assert message.endswith(f"the key of this chunk is `{canonical}`")


@pytest.mark.parametrize(
    ("path", "coords", "key"),
    [("/", (), "c"), ("/", (0, 1), "c/0/1"), ("/a", (), "a/c"), ("/a/b", (2, 10), "a/b/c/2/10")],
)
def test_chunk_keys_round_trip(path: str, coords: tuple[int, ...], key: str) -> None:
    assert _chunk_key(_chunk_key_prefix(path), coords) == key
    assert _parse_key(key) == (_CHUNK, path, coords)


@pytest.mark.parametrize("key", [k for k, _ in VALID] + INVALID)
def test_key_validity_matches_icechunk(key: str) -> None:
    """icechunk 1.1.21 accepts and refuses exactly the keys we do (reads of missing keys)."""
    session = icechunk.Repository.create(icechunk.in_memory_storage()).writable_session("main")
    proto = default_buffer_prototype()
    try:
        zarr.core.sync.sync(session.store.get(key, proto))
    except icechunk.IcechunkError as error:
        reference = f"invalid zarr key format `{key}`" in str(error)
    else:
        reference = False
    try:
        _parse_key(key)
    except IcechunkError:
        ours = True
    else:
        ours = False
    assert ours == reference
