"""An in-memory stand-in for `pyicechunk.session._SessionCore`, used until session.py lands.

It implements the contract in notes/SESSION_CORE_API.md (nodes, chunks, the error rules) with
dicts, so that the store's key translation can be tested on its own. It is a test double of a
dependency of the store, not of the store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from zarr.abc.store import ByteRequest, OffsetByteRequest, RangeByteRequest

from pyicechunk.exceptions import IcechunkError

_NO_CONTAINER = "invalid chunk location, no matching virtual chunk container: `{}`"


@dataclass(frozen=True)
class NodeInfo:
    path: str
    node_id: bytes
    is_array: bool
    user_data: bytes
    shape: tuple[tuple[int, int], ...] | None


def _slice(data: bytes, byte_range: ByteRequest | None) -> bytes:
    if byte_range is None:
        return data
    if isinstance(byte_range, RangeByteRequest):
        return data[byte_range.start : byte_range.end]
    if isinstance(byte_range, OffsetByteRequest):
        return data[byte_range.offset :]
    return data[max(len(data) - byte_range.suffix, 0) :]


class FakeCore:
    """Nodes and chunks of one session, in dicts."""

    def __init__(self, read_only: bool = False, containers: tuple[str, ...] = ()) -> None:
        self.read_only = read_only
        self.containers = containers
        self.nodes: dict[str, NodeInfo] = {}
        self.chunks: dict[str, dict[tuple[int, ...], bytes]] = {}
        self.virtual: dict[tuple[str, tuple[int, ...]], tuple[Any, ...]] = {}

    def public_session(self, for_fork: bool) -> tuple[str, FakeCore]:
        return ("fork" if for_fork else "session", self)

    def _writable(self) -> None:
        if self.read_only:
            raise IcechunkError("cannot write to read-only store")

    async def get_node(self, path: str) -> NodeInfo | None:
        return self.nodes.get(path)

    async def list_nodes(self, prefix: str = "/") -> list[NodeInfo]:
        below = "/" if prefix == "/" else prefix + "/"
        return sorted(
            (n for p, n in self.nodes.items() if p == prefix or p.startswith(below)),
            key=lambda n: n.path,
        )

    async def set_metadata(self, path: str, data: bytes) -> None:
        self._writable()
        try:
            doc = json.loads(data)
        except ValueError as e:
            raise IcechunkError(f"bad metadata: {e}") from e
        if not isinstance(doc, dict) or doc.get("node_type") not in ("array", "group"):
            raise IcechunkError("bad metadata: not a zarr v3 group or array document")
        shape = None
        if doc["node_type"] == "array":
            chunks = doc["chunk_grid"]["configuration"]["chunk_shape"]
            shape = tuple(zip(doc["shape"], chunks, strict=True))
        old = self.nodes.get(path)
        if old is not None and old.is_array and shape is None:
            self.chunks.pop(path, None)
        self.nodes[path] = NodeInfo(path, b"id", shape is not None, bytes(data), shape)
        if shape is not None:
            self.chunks.setdefault(path, {})
            max_index = [0 if n == 0 else (n - 1) // c for n, c in shape]
            self.chunks[path] = {
                k: v
                for k, v in self.chunks[path].items()
                if all(i <= m for i, m in zip(k, max_index, strict=False))
            }

    async def delete_node(self, path: str) -> None:
        self._writable()
        below = "/" if path == "/" else path + "/"
        for p in [p for p in self.nodes if p == path or p.startswith(below)]:
            del self.nodes[p]
            self.chunks.pop(p, None)

    async def clear(self) -> None:
        self._writable()
        self.nodes.clear()
        self.chunks.clear()

    def _array(self, path: str, coords: tuple[int, ...]) -> dict[tuple[int, ...], bytes]:
        node = self.nodes.get(path)
        if node is None:
            raise KeyError(path)
        if not node.is_array or node.shape is None:
            raise IcechunkError(f"there is not an array at `{path}`")
        for c, (n, size) in zip(coords, node.shape, strict=False):
            if c > (0 if n == 0 else (n - 1) // size):
                raise IcechunkError(
                    f"invalid chunk index: coordinates ChunkIndices({list(coords)}) "
                    f"are not valid for array at {path}"
                )
        return self.chunks[path]

    async def get_chunk(
        self, path: str, coords: tuple[int, ...], byte_range: ByteRequest | None
    ) -> bytes | None:
        node = self.nodes.get(path)
        if node is None or not node.is_array:
            return None
        data = self.chunks[path].get(coords)
        return None if data is None else _slice(data, byte_range)

    async def get_chunks(
        self, requests: list[tuple[str, tuple[int, ...], ByteRequest | None]]
    ) -> list[bytes | None]:
        return [await self.get_chunk(*r) for r in requests]

    async def set_chunk(self, path: str, coords: tuple[int, ...], data: bytes) -> None:
        self._writable()
        self._array(path, coords)[coords] = data

    async def delete_chunk(self, path: str, coords: tuple[int, ...]) -> None:
        self._writable()
        self._array(path, coords).pop(coords, None)

    async def chunk_exists(self, path: str, coords: tuple[int, ...]) -> bool:
        return coords in self.chunks.get(path, {})

    async def chunk_size(self, path: str, coords: tuple[int, ...]) -> int:
        return len(self.chunks.get(path, {}).get(coords, b""))

    async def chunk_coords(self, path: str) -> list[tuple[int, ...]]:
        return sorted(self.chunks.get(path, {}))

    async def set_virtual_ref(
        self,
        path: str,
        coords: tuple[int, ...],
        location: str,
        offset: int,
        length: int,
        checksum: str | datetime | None,
        validate_container: bool,
    ) -> None:
        self._writable()
        if validate_container and not location.startswith(self.containers):
            raise IcechunkError(_NO_CONTAINER.format(location))
        chunks = self._array(path, coords)
        chunks[coords] = b"\0" * length
        self.virtual[(path, coords)] = (location, offset, length, checksum)
