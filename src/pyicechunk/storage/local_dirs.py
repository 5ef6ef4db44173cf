"""How the local filesystem backend makes directories and their entries durable, deletes the
files of a directory under its lock, and gives a file a second name (a copy of a file never
changed in place).

A file's fsync makes its data and inode durable, not its name: that is an entry in its
directory, made durable by the directory's own fsync, and a new directory is in turn an entry in
its parent.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from pyicechunk.storage import ObjectVersion
from pyicechunk.storage.local_reads import _NOT_FOUND, _is_version
from pyicechunk.storage.local_threads import _flock


def _make_directories(directory: str, durable: bool) -> None:
    """Create ``directory`` and its missing parents; if ``durable``, make their entries durable.

    A new directory is an entry in its parent, which syncing the files inside it does not make
    durable: without this, a power loss could lose a new branch's folder (or the first
    ``manifests/``) with everything the syncs below it wrote. Directories are created rarely
    (a new branch, a prefix's first object), so the extra syncs cost nothing per commit.
    """
    missing = []
    parent = directory
    while parent and not os.path.isdir(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    os.makedirs(directory, exist_ok=True)
    if not durable:
        return
    for created in missing[:-1]:
        _fsync_directory(os.path.dirname(created))
    if missing:
        try:  # the topmost new one's parent was there before, and may not be ours to open
            _fsync_directory(parent)
        except PermissionError:
            pass


def _link_copy(source: str, path: str, version: ObjectVersion) -> bool:
    """Give the file at ``source`` the new name ``path`` (a hard link) if it is still the file
    read at ``version``.

    A copy of a file that is never changed in place, made without writing a new file (where
    creating a file costs far more than naming one). False, with nothing left at ``path``, if
    ``source`` was replaced meanwhile, is not a regular file, or cannot be linked (a missing
    directory, another filesystem, no hard links, a name taken): the caller writes the bytes
    instead, which also creates the directory.
    """
    try:
        os.link(source, path, follow_symlinks=False)
    except (OSError, NotImplementedError):  # the latter: no linkat on this platform
        return False
    try:
        linked = _is_version(os.lstat(path), version)
    except OSError:
        linked = False
    if not linked:
        os.unlink(path)
    return linked


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock_directory(directory: str) -> int | None:
    """Open ``directory`` and take its exclusive lock: the descriptor, or None if it is gone."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except _NOT_FOUND:
        return None
    try:
        # Excludes a concurrent compare-and-swap, which could otherwise revive a deleted ref.
        _flock(dir_fd)
    except BaseException:
        os.close(dir_fd)
        raise
    return dir_fd


def _unlink_files(paths: Sequence[str]) -> int:
    deleted = 0
    for path in paths:
        try:
            os.unlink(path)
            deleted += 1
        except _NOT_FOUND:
            pass
    return deleted


def _release_directory(dir_fd: int, sync: bool) -> None:
    try:
        if sync:
            os.fsync(dir_fd)
    finally:
        os.close(dir_fd)  # also releases the lock


def _delete_in_directory(directory: str, paths: Sequence[str], sync: bool) -> int:
    """Unlink a few ``paths`` in ``directory`` on this thread, under the directory's lock."""
    dir_fd = _lock_directory(directory)
    if dir_fd is None:
        return 0
    deleted = 0
    try:
        deleted = _unlink_files(paths)
    finally:
        _release_directory(dir_fd, sync and deleted > 0)
    return deleted
