"""Large chunk objects are served as read-only memory maps; everything else as bytes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from pyicechunk.exceptions import ObjectNotFoundError
from pyicechunk.storage import RangeByteRequest
from pyicechunk.storage.local import LocalFileSystemBackend
from pyicechunk.storage.local_reads import _MAP_MIN_BYTES, _in_page_cache


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


@pytest.mark.skipif(not hasattr(os, "RWF_NOWAIT"), reason="residency probe needs RWF_NOWAIT")
def test_uncached_chunks_are_read_not_mapped(tmp_path: Path) -> None:
    # A chunk that is not in the page cache is read with one pread (faster than faulting a
    # mapping in page by page); once cached, the same chunk is mapped.
    backend = LocalFileSystemBackend(str(tmp_path))
    big = bytes(range(256)) * (_MAP_MIN_BYTES // 256 + 3)
    asyncio.run(backend.put("chunks/BIG", big))
    path = tmp_path / "chunks" / "BIG"
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # clean pages can be dropped
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        assert not _in_page_cache(fd, len(big))
    finally:
        os.close(fd)
    first = asyncio.run(backend.get_view("chunks/BIG"))
    assert isinstance(first, bytes) and first == big
    second = asyncio.run(backend.get_view("chunks/BIG"))  # the read above cached it
    assert isinstance(second, memoryview) and second == big
