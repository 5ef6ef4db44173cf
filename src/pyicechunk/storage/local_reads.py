"""How the local filesystem backend reads files: small cached reads on the caller's thread,
whole files, byte ranges and memory maps in a worker.

Every function here blocks; :mod:`pyicechunk.storage.local` decides which thread calls it.
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
import stat

from pyicechunk.exceptions import ObjectNotFoundError
from pyicechunk.storage import ByteRequest, ObjectVersion
from pyicechunk.storage.byte_range import resolve as resolve_range

_NOT_FOUND = (FileNotFoundError, IsADirectoryError, NotADirectoryError)


def _version(st: os.stat_result, data: bytes) -> ObjectVersion:
    # SHA-256 runs on the CPU's SHA instructions where it has them: on a 12 kB ``repo`` it
    # takes under half the time of BLAKE2b. 64 bits of it are plenty to tell contents apart.
    digest = hashlib.sha256(data).hexdigest()[:16]
    return ObjectVersion(f"{_identity(st)}-{digest}")


def _identity(st: os.stat_result) -> str:
    # A file is replaced by renaming a new one over it, never rewritten in place: the same
    # inode with the same modification time holds the same bytes.
    return f"{st.st_ino}-{st.st_mtime_ns}"


def _is_version(st: os.stat_result, version: ObjectVersion) -> bool:
    """Whether the regular file ``st`` describes is the one read at ``version``."""
    return stat.S_ISREG(st.st_mode) and version.token.rpartition("-")[0] == _identity(st)


def _read(path: str, key: str, byte_range: ByteRequest | None) -> bytes:
    try:
        with open(path, "rb", buffering=0) as f:
            if byte_range is None:
                return f.readall()
            fd = f.fileno()
            start, stop = resolve_range(byte_range, os.fstat(fd).st_size, key)
            return os.pread(fd, stop - start, start)
    except _NOT_FOUND:
        raise ObjectNotFoundError(key) from None


_MAP_MIN_BYTES = 256 * 1024
_RWF_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)
# Calls moving fewer bytes than this may run on the event loop's thread (see the local module).
_SMALL_BYTES = 64 * 1024


def _read_cached(
    path: str, key: str, byte_range: ByteRequest | None
) -> tuple[bytes, os.stat_result] | None:
    """A small read that never waits for a disk: the bytes and the file's status, or None.

    None means a worker should read instead: the bytes are ``_SMALL_BYTES`` or more, not all
    in the page cache (or the filesystem cannot say), or the file is not a regular one (a
    FIFO's open would block: it is opened non-blocking here, which regular files ignore).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except _NOT_FOUND:
        raise ObjectNotFoundError(key) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ObjectNotFoundError(key)
        start, stop = 0, st.st_size
        if byte_range is not None:
            start, stop = resolve_range(byte_range, st.st_size, key)
        size = stop - start
        if not stat.S_ISREG(st.st_mode) or size >= _SMALL_BYTES:
            return None
        if _RWF_NOWAIT is None or not size:
            # A platform without the flag (macOS) reads small local files here, as before.
            return os.pread(fd, size, start), st
        buffer = bytearray(size)
        try:
            if os.preadv(fd, [buffer], start, _RWF_NOWAIT) != size:
                return None  # partly cached
        except BlockingIOError:
            return None
        except OSError as e:
            if e.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            # The filesystem cannot tell (network and FUSE ones refuse the flag): there a read
            # may wait on a server, so a worker makes it.
            return None
        return bytes(buffer), st
    finally:
        os.close(fd)


def _in_page_cache(fd: int, size: int) -> bool:
    """Whether the file's first, middle and last bytes can be read without waiting for a disk.

    A read with ``RWF_NOWAIT`` fails instead of blocking when its data is not cached. Where the
    flag is missing or refused, the answer is False (so the caller reads, which always works).
    """
    if _RWF_NOWAIT is None:
        return False
    probe = bytearray(1)
    for offset in (0, size // 2, size - 1):
        try:
            if os.preadv(fd, [probe], offset, _RWF_NOWAIT) != 1:
                return False
        except OSError:  # BlockingIOError when not cached; EOPNOTSUPP where unsupported
            return False
    return True


def _map(path: str, key: str) -> bytes | memoryview:
    """A whole immutable object, memory-mapped when large and already in the page cache.

    Mapping shares the page cache instead of allocating and copying (about a third faster for
    1 MiB chunks read concurrently). When the file is not cached, though, filling a mapping
    reads the disk in small page-fault-sized pieces, and one large ``pread`` is about twice as
    fast, so a cheap residency probe picks the path. Mapping is used only for chunk objects,
    which are never rewritten or truncated in place (new data always gets a new name), so the
    mapping stays valid even if garbage collection unlinks the file meanwhile.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except _NOT_FOUND:
        raise ObjectNotFoundError(key) from None
    try:
        size = os.fstat(fd).st_size
        if size < _MAP_MIN_BYTES or not _in_page_cache(fd, size):
            return os.pread(fd, size, 0)
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        return memoryview(mmap.mmap(fd, size, flags=flags, prot=mmap.PROT_READ))
    finally:
        os.close(fd)


def _read_versioned(path: str) -> tuple[bytes, ObjectVersion]:
    """Read a file and its version from one open descriptor, so the two always agree."""
    with open(path, "rb", buffering=0) as f:
        st = os.fstat(f.fileno())
        data = f.readall()
    return data, _version(st, data)


def _get_versioned(path: str, key: str) -> tuple[bytes, ObjectVersion]:
    try:
        return _read_versioned(path)
    except _NOT_FOUND:
        raise ObjectNotFoundError(key) from None
