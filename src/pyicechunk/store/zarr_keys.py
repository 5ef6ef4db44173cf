"""The zarr v3 key grammar Icechunk understands: which node or chunk a store key names.

* ``zarr.json`` is the root node's metadata, ``a/b/zarr.json`` the metadata of node ``/a/b``;
* ``a/b/c/0/1`` is chunk ``(0, 1)`` of array ``/a/b``; ``c`` alone is the chunk of a 0-d root
  array and ``c/0/1`` a chunk of a root array;
* zarr v2 keys (``.zarray``, ``.zgroup``, ``.zattrs``, ``.zmetadata``) are recognised only to
  be refused for writes and reported missing for reads.
"""

from __future__ import annotations

from typing import Final

from pyicechunk.exceptions import IcechunkError

__all__ = [
    "CHUNK",
    "METADATA",
    "V2",
    "ParsedKey",
    "chunk_key",
    "chunk_key_prefix",
    "is_prefix_match",
    "metadata_key",
    "node_path",
    "not_a_node",
    "parse_key",
    "prefix_path",
]

_V2_NAMES: Final = frozenset({".zarray", ".zgroup", ".zattrs", ".zmetadata"})
_METADATA_SUFFIX: Final = "/zarr.json"

# Parsed key kinds. A parsed key is (kind, node path, chunk coordinates).
METADATA: Final = 0
CHUNK: Final = 1
V2: Final = 2
ParsedKey = tuple[int, str, tuple[int, ...]]
_NO_COORDS: tuple[int, ...] = ()
_U32_LIMIT: Final = 1 << 32


def invalid_key(key: str) -> IcechunkError:
    return IcechunkError(f"invalid zarr key format `{key}`", kind="invalid-key")


def node_path(relative: str) -> str | None:
    """The absolute node path for a key's path part, or None if it is not a canonical path.

    Empty components (``a//b``) and ``.`` / ``..`` are refused: node paths are canonical.
    """
    if not relative:
        return "/"
    if relative[0] == "/" or relative[-1] == "/" or "//" in relative:
        return None
    if "." in relative:
        for part in relative.split("/"):
            if part == "." or part == "..":
                return None
    return "/" + relative


def _parse_coords(key: str, text: str) -> tuple[int, ...]:
    """Chunk coordinates from ``0/1/2``: every component a u32 in canonical decimal.

    The reference also takes ``+1`` and ``007`` (its u32 parser does), so several keys name one
    chunk: ``a/c/007`` is written, then listed as ``a/c/7``. Those are refused here, with the
    canonical key in the message.

    Raises
    ------
    IcechunkError
        "invalid zarr key format" for anything else.
    """
    parts = text.split("/")
    # int() alone would also take " 1", "1_0" and non-ASCII digits.
    if text.isascii() and text.replace("/", "").isdigit() and "" not in parts:
        coords = tuple(map(int, parts))
        if len(text) > 9 and max(coords) >= _U32_LIMIT:
            raise invalid_key(key)
        if "0" in text and any(len(p) > 1 and p[0] == "0" for p in parts):
            raise _non_canonical_key(key, text, coords)
        return coords
    digits = [p[1:] if p[:1] == "+" else p for p in parts]
    if all(d.isascii() and d.isdigit() for d in digits):
        coords = tuple(map(int, digits))
        if max(coords) < _U32_LIMIT:
            raise _non_canonical_key(key, text, coords)
    raise invalid_key(key)


def _non_canonical_key(key: str, text: str, coords: tuple[int, ...]) -> IcechunkError:
    canonical = key[: len(key) - len(text)] + "/".join(map(str, coords))
    return IcechunkError(
        f"invalid zarr key format `{key}`: chunk coordinates are written in decimal without "
        f"sign or leading zeros; the key of this chunk is `{canonical}`",
        kind="invalid-key",
    )


def parse_key(key: str) -> ParsedKey:
    """Classify a zarr key, following the reference's key grammar.

    Raises
    ------
    IcechunkError
        If the key is neither metadata, a chunk, nor a zarr v2 key.
    """
    if key.endswith("zarr.json"):
        if key == "zarr.json":
            return (METADATA, "/", _NO_COORDS)
        if key.endswith(_METADATA_SUFFIX):
            path = node_path(key[: -len(_METADATA_SUFFIX)])
            if path is None:
                raise invalid_key(key)
            return (METADATA, path, _NO_COORDS)
    if "." in key and key.rpartition("/")[2] in _V2_NAMES:
        return (V2, key, _NO_COORDS)
    # The reference splits at the LAST "c" character, not at a "/c/" component: "a/c/0/1" is
    # chunk (0, 1) of /a, "a/c" the chunk of a 0-d array /a, and so is "arc" of /ar.
    head, sep, tail = key.rpartition("c")
    if not sep:
        raise invalid_key(key)
    if head:
        if head[-1] == "/":
            head = head[:-1]
        path = node_path(head)
        if path is None:
            raise invalid_key(key)
    else:
        path = "/"
    if not tail:
        return (CHUNK, path, _NO_COORDS)
    if tail[0] != "/":
        raise invalid_key(key)
    return (CHUNK, path, _parse_coords(key, tail[1:]))


def prefix_path(prefix: str) -> tuple[str, str]:
    """The prefix without trailing ``/`` (as error messages show it) and its node path."""
    trimmed = prefix.rstrip("/")
    path = node_path(trimmed.lstrip("/"))
    if path is None:
        raise IcechunkError(
            f"bad key prefix ({trimmed}): Cannot convert to a path", kind="bad-key-prefix"
        )
    return trimmed, path


def not_a_node(trimmed: str) -> IcechunkError:
    return IcechunkError(
        f"bad key prefix ({trimmed}): Only prefixes pointing to a group or array are allowed",
        kind="bad-key-prefix",
    )


def metadata_key(path: str) -> str:
    return "zarr.json" if path == "/" else f"{path[1:]}/zarr.json"


def chunk_key_prefix(path: str) -> str:
    """The part of every chunk key of array `path` before the coordinates."""
    return "c" if path == "/" else f"{path[1:]}/c"


def chunk_key(prefix: str, coords: tuple[int, ...]) -> str:
    if not coords:
        return prefix
    return prefix + "/" + "/".join(map(str, coords))


def is_prefix_match(key: str, prefix: str) -> bool:
    """True if `key` is `prefix` itself or lies below it as a path (``a`` matches ``a/b``)."""
    if not prefix:
        return True
    return key.startswith(prefix) and (len(key) == len(prefix) or key[len(prefix)] == "/")
