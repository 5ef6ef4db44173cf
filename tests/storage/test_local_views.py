"""Large chunk objects are served as read-only memory maps; everything else as bytes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pyicechunk.exceptions import ObjectNotFoundError
from pyicechunk.storage import RangeByteRequest
from pyicechunk.storage.local import _MAP_MIN_BYTES, LocalFileSystemBackend


def test_views_of_chunks(tmp_path: Path) -> None:
    backend = LocalFileSystemBackend(str(tmp_path))
    big = bytes(range(256)) * (_MAP_MIN_BYTES // 256 + 3)

    async def main() -> None:
        await backend.put("chunks/BIG", big)
        await backend.put("chunks/SMALL", b"tiny")
        await backend.put("manifests/M", big)
        view = await backend.get_view("chunks/BIG")
        assert isinstance(view, memoryview) and view.readonly
        assert view == big
        # Unlinking (garbage collection) does not invalidate a mapping already handed out.
        await backend.delete("chunks/BIG")
        assert bytes(view[-256:]) == bytes(range(256))
        assert await backend.get_view("chunks/SMALL") == b"tiny"
        assert isinstance(await backend.get_view("manifests/M"), bytes)
        ranged = await backend.get_view("manifests/M", RangeByteRequest(0, 4))
        assert ranged == big[:4]
        with pytest.raises(ObjectNotFoundError):
            await backend.get_view("chunks/BIG")

    asyncio.run(main())
