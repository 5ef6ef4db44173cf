"""How the local filesystem backend makes directories and their entries durable.

A file's fsync makes its data and inode durable, not its name: that is an entry in its
directory, made durable by the directory's own fsync, and a new directory is in turn an entry in
its parent.
"""

from __future__ import annotations

import os


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


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
