"""The local backend's copies of ``repo`` into ``overwritten/``: a hard link to the file read,
or the bytes written out when that file is no longer the one read."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import zarr

import pyicechunk
from pyicechunk.storage.local import LocalFileSystemBackend


def _copy(backend: LocalFileSystemBackend, key: str, *, replace_first: bytes | None) -> bytes:
    async def go() -> bytes:
        data, version = await backend.get_versioned("repo")
        if replace_first is not None:
            await backend.put("repo", replace_first)
        await backend.put_copy(key, data, source="repo", version=version)
        return data

    return asyncio.run(go())


def test_copy_of_an_unchanged_file_is_a_second_name_for_it(tmp_path: Path) -> None:
    backend = LocalFileSystemBackend(str(tmp_path), durable=False)
    asyncio.run(backend.put("repo", b"state"))
    asyncio.run(backend.put("overwritten/first", b"makes the directory"))
    _copy(backend, "overwritten/copy", replace_first=None)
    repo, copy = os.stat(tmp_path / "repo"), os.stat(tmp_path / "overwritten" / "copy")
    assert (copy.st_ino, copy.st_nlink) == (repo.st_ino, 2)
    assert (tmp_path / "overwritten" / "copy").read_bytes() == b"state"


def test_copy_of_a_replaced_file_writes_the_bytes_read(tmp_path: Path) -> None:
    backend = LocalFileSystemBackend(str(tmp_path), durable=False)
    asyncio.run(backend.put("repo", b"state read"))
    asyncio.run(backend.put("overwritten/first", b"makes the directory"))
    _copy(backend, "overwritten/copy", replace_first=b"a later state")
    copy = tmp_path / "overwritten" / "copy"
    assert copy.read_bytes() == b"state read"
    assert os.stat(copy).st_ino != os.stat(tmp_path / "repo").st_ino
    assert (tmp_path / "repo").read_bytes() == b"a later state"


def test_copy_into_a_missing_directory_creates_it(tmp_path: Path) -> None:
    backend = LocalFileSystemBackend(str(tmp_path), durable=True)
    asyncio.run(backend.put("repo", b"state"))
    _copy(backend, "overwritten/copy", replace_first=None)
    assert (tmp_path / "overwritten" / "copy").read_bytes() == b"state"


def test_a_symbolic_link_in_place_of_the_file_read_is_not_linked(tmp_path: Path) -> None:
    # The file read is replaced by a symbolic link to a file elsewhere: the copy holds the bytes
    # read, and is no name for what the link points at.
    outside = tmp_path / "outside"
    outside.write_bytes(b"not the repository's")
    root = tmp_path / "root"
    backend = LocalFileSystemBackend(str(root), durable=False)
    asyncio.run(backend.put("repo", b"state read"))
    asyncio.run(backend.put("overwritten/first", b"makes the directory"))

    async def go() -> None:
        data, version = await backend.get_versioned("repo")
        os.unlink(root / "repo")
        os.symlink(outside, root / "repo")
        await backend.put_copy("overwritten/copy", data, source="repo", version=version)

    asyncio.run(go())
    copy = root / "overwritten" / "copy"
    assert not copy.is_symlink()
    assert copy.read_bytes() == b"state read"
    assert os.stat(copy).st_ino != os.stat(outside).st_ino
    assert outside.read_bytes() == b"not the repository's"


def test_every_backup_of_a_spec2_repository_holds_the_state_it_replaced(tmp_path: Path) -> None:
    # Each update links the state it read into overwritten/; the ops log's chain of backups
    # still reads back entry by entry, and each backup is a file of its own once repo moved on.
    path = tmp_path / "repo"
    repo = pyicechunk.Repository.create(pyicechunk.local_filesystem_storage(str(path)))
    states = [(path / "repo").read_bytes()]
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(4,), chunks=(1,), dtype="i4")
    snapshot = session.commit("array")
    states.append((path / "repo").read_bytes())
    for i in range(5):
        repo.create_tag(f"t{i}", snapshot)
        states.append((path / "repo").read_bytes())
    backups = sorted((path / "overwritten").iterdir())
    assert sorted(p.read_bytes() for p in backups) == sorted(states[:-1])
    assert all(os.stat(p).st_nlink == 1 for p in backups)
    reopened = pyicechunk.Repository.open(pyicechunk.local_filesystem_storage(str(path)))
    assert len(list(reopened.ops_log())) == 7
