"""Local filesystem storage backend, safe for concurrent writers in several processes.

Each key is a file under the root directory. The design choices that make it safe:

* Every write goes to a temporary file in the target's directory, which is written and then
  renamed (``put``, ``put_if_version``) or hard-linked (``put_if_absent``) into place, so a
  reader never sees a partial object; a new chunk, nothing refers to before its ``put``
  returns, is created under its own fresh name instead (a crash leaves an unreferenced file
  that garbage collection deletes). Conditional writes (refs, config, tags) are fsynced with
  their directory before they return. Plain ``put`` (chunks, manifests, snapshots, transaction
  logs: immutable objects with fresh random names) is made durable by ``make_durable``, which a
  commit calls for everything the new snapshot references before it moves the ref: so a ref
  never points at data that a power loss could take away, and bulk writes are not serialised
  behind one fsync each. A large barrier (many files) is one ``syncfs(2)`` per filesystem on
  Linux: fsyncing files one by one costs a journal commit each, so syncing the filesystem once
  is several times faster for hundreds of chunks. (It also writes back other processes' dirty
  data on that filesystem, which is why small barriers keep to per-file ``fdatasync``.)
  Temporary names are ``<name>#<digits>``: the reference's filesystem listing skips exactly this
  pattern, so a temporary file left behind by a crash is invisible to both implementations.
* Deletes sync their directory when they remove a ref, the config or ``repo`` (so that it
  stays removed after a power loss), not when they remove chunks, manifests, snapshots or
  transaction logs: garbage that comes back after a power loss is still unreferenced, and
  the next collection deletes it again.
* All of that syncing is the default, ``durable=True``. With ``durable=False`` (or
  ``PYICECHUNK_DURABLE=0``) the backend makes no sync call at all (no ``fsync``,
  ``fdatasync``, ``syncfs``, directory fsync, nor a started write-back), which is icechunk's
  behaviour: the page cache keeps every write through a process crash, and the operating
  system decides when it reaches the disk, so an OS crash or power loss may lose recent
  commits. Everything below (temporary files, links, renames, locks) is unchanged, so writes
  stay atomic and concurrent commits stay safe.
* ``put_if_absent`` relies on ``link(2)`` failing when the target exists, which is atomic.
* ``put_if_version`` and deletes hold an exclusive ``flock`` on the object's *directory* while
  they compare and rename. Locking the directory instead of a lock file creates no extra
  objects, so nothing new appears under ``refs/`` (where the reference rejects unknown names) or
  at the root (where ``Repository.create`` requires a clean prefix). Each branch has its own
  directory, so commits to different branches do not wait for each other.
* Conditional writes carry their write id (lost-response recovery, see
  :mod:`pyicechunk.storage`) in the extended attribute ``user.icechunkwriteid`` of the
  temporary file, set before it is fsynced and linked or renamed into place: the id belongs to
  the inode, so it appears atomically with the content, survives a crash with it, and no other
  reader (the reference, ``ls``) ever sees it, unlike a sidecar file, which would be a second,
  separately visible object under ``refs/``. It is written whatever ``unsafe_use_metadata``
  says: that switch keeps metadata headers away from object stores that refuse them, and no
  server is involved here. A filesystem without user extended attributes gets no stamps (one
  warning); its conditional writes work as before, without recovery. On a local disk every call
  reports its own outcome, so a failed call never hides a landed write (one that fails after
  the rename, in the directory fsync, is reported: it may not survive a power loss); the read-
  back serves network filesystems, where a ``link`` whose reply was lost is sent again and fails
  with ``EEXIST`` against itself, and wrappers that lose responses on purpose (the fault tests).
  icechunk 2.3.0 stamps nothing on a local filesystem (its local storage cannot keep user
  metadata, and fails every write when ``unsafe_use_metadata`` is on); it replaces a file by
  renaming a new one into place, so an object it wrote carries no stamp of ours and a failed
  precondition against it is a conflict.
* Symbolic links are never followed under ``refs/``: an operation on a ref whose path below the
  root passes through a link (``refs`` itself, ``refs/branch.x`` or its ``ref.json``) raises,
  and listings skip links there. A linked ref directory would otherwise make a commit write its
  temporary file and new ref outside the repository, and a linked ref file would be read from
  anywhere. Other objects follow links as before (a ``chunks`` directory on another disk is a
  deliberate layout, and the reference follows links too). The check is ``lstat`` per path
  component before the operation; a link swapped in between check and use is not caught.
* The version token combines the file's inode, its modification time and a digest of its
  content. Inode numbers are recycled and timestamps are coarse, so inode and time alone could
  repeat for a different object of the same size; with the digest a repeat means the content is
  the same too, and then the swap is still correct.

A call runs on the event loop's own thread when it moves less than 64 KiB, makes no sync call
and waits for nobody: a read whose bytes are all in the page cache (a read with ``RWF_NOWAIT``
says so without blocking), a small write without a sync, a stat, a delete of one file that needs
no directory sync, a free lock (one held by another process is waited for in a worker instead).
Everything else (large transfers, any ``fsync``, listings, bulk deletes, disk reads) runs on a
shared thread pool, one hop per operation. A hop costs tens to hundreds of microseconds on a
loaded machine, more than such a small call itself; a sync or a disk read can take milliseconds,
which the loop must not wait for. The backend keeps no event-loop state, so it can be used from
any loop or thread.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import random
import stat
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pyicechunk.exceptions import IcechunkError
from pyicechunk.storage import (
    ByteRequest,
    ConditionalWrite,
    ObjectInfo,
    ObjectVersion,
    StorageBackend,
    _check_key,
    keys,
)
from pyicechunk.storage.local_dirs import (
    _delete_in_directory,
    _fsync_directory,
    _link_copy,
    _lock_directory,
    _make_directories,
    _release_directory,
    _unlink_files,
)
from pyicechunk.storage.local_reads import (
    _NOT_FOUND,
    _SMALL_BYTES,
    _get_versioned,
    _map,
    _read,
    _read_cached,
    _read_versioned,
    _version,
)
from pyicechunk.storage.local_stamps import _XATTRS, _read_stamp, _stamp, _warn_unstamped_once
from pyicechunk.storage.local_threads import _flock, _get_executor, _LockBusy

if TYPE_CHECKING:
    from pyicechunk.config import StorageSettings

__all__ = ["DURABLE_ENV_VAR", "LocalFileSystemBackend", "is_temporary_name"]

_T = TypeVar("_T")

_IMMUTABLE_PREFIXES = keys.IMMUTABLE_PREFIXES  # the name `keys` is a parameter in methods


def is_temporary_name(name: str) -> bool:
    """Whether a file name is a temporary-file name (``<anything>#<ascii digits>``)."""
    _, sep, suffix = name.partition("#")
    return bool(sep) and suffix.isascii() and suffix.isdigit()


def _info(key: str, st: os.stat_result) -> ObjectInfo:
    return ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime_ns / 1e9, UTC))


def _linux_libc_function(name: str, *argtypes: Any) -> Any:
    """The C library's ``name`` (returning int, setting errno) on Linux; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    function.argtypes = list(argtypes)
    function.restype = ctypes.c_int
    return function


def _load_sync_file_range() -> Callable[[int, int], None] | None:
    # Linux can start writing a file back to disk without waiting for it. Doing that for every
    # large object as it is written overlaps the disk with zarr's encoding, so the durability
    # barrier at commit time finds most pages already clean. Elsewhere this is a no-op.
    function = _linux_libc_function(
        "sync_file_range", ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint
    )
    if function is None:
        return None
    write_flag = 2  # SYNC_FILE_RANGE_WRITE: initiate writeback, do not wait

    def start(fd: int, size: int) -> None:
        function(fd, 0, size, write_flag)

    return start


_start_writeback = _load_sync_file_range()
_WRITEBACK_MIN_BYTES = 64 * 1024


_syncfs: Callable[[int], int] | None = _linux_libc_function("syncfs", ctypes.c_int)
# From this many files on, one syncfs per filesystem beats one fdatasync per file (each of
# those waits for its own journal commit: about 0.1 ms a file on ext4, against a few ms for a
# whole-filesystem sync when little else is dirty).
_SYNCFS_MIN_FILES = 32

# A bulk delete spreads each directory's unlinks over up to this many threads, at least this
# many files to a thread (below that the thread hop costs more than the overlap gains). On a
# filesystem mounted with ``discard`` an unlink waits for the device to trim the file's blocks:
# 190 unlinks took 0.43 s on one thread, 0.14 s on eight.
_UNLINK_THREADS = 8
_UNLINKS_PER_THREAD = 8


def _sync_filesystems(directories: Sequence[str]) -> None:
    """Make everything written on the filesystems holding ``directories`` durable."""
    assert _syncfs is not None
    done: set[int] = set()
    for directory in directories:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            device = os.fstat(fd).st_dev
            if device in done:
                continue
            if _syncfs(fd) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"syncfs failed: {os.strerror(err)}", directory)
            done.add(device)
        finally:
            os.close(fd)


_posix_fallocate: Callable[[int, int, int], None] | None = getattr(os, "posix_fallocate", None)
_NO_FALLOCATE = (errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS)


def _preallocate(fd: int, size: int) -> None:
    """Allocate the blocks of a file about to be written, where the filesystem can.

    A file renamed over an existing one with its blocks not yet allocated (delayed allocation)
    makes ext4 start writing it back inside the ``rename`` (its ``auto_da_alloc`` guard for
    programs that never sync), which costs the compare-and-swap of a small object about as
    much as the rest of it together; allocated first, the data is written back later, as any
    other. Filesystems that cannot preallocate just skip it.
    """
    if _posix_fallocate is None or not size:
        return
    try:
        _posix_fallocate(fd, 0, size)
    except OSError as e:
        if e.errno not in _NO_FALLOCATE:
            raise


def _write_new_file(
    name: str,
    path: str,
    data: bytes | memoryview,
    sync: bool,
    writeback: bool,
    preallocate: bool = False,
    write_id: str | None = None,
) -> None:
    """Create the file ``name`` (it must not exist) holding ``data``, for the object at
    ``path``; if this fails, nothing is left at ``name``.

    ``sync`` fsyncs it before returning; otherwise ``writeback`` starts writing a large file
    back to disk without waiting. With a ``write_id``, the file is stamped with it before the
    fsync. ``preallocate``: allocate its blocks first (see :func:`_preallocate`).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, 0o666)
    except FileNotFoundError:
        # writeback is asked for exactly when the backend is durable (plain puts sync later).
        _make_directories(os.path.dirname(name), durable=sync or writeback)
        fd = os.open(name, flags, 0o666)
    try:
        if preallocate:
            _preallocate(fd, len(data))
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if write_id is not None:
            _stamp(fd, path, write_id)
        if sync:
            os.fsync(fd)
        elif writeback and _start_writeback is not None and len(data) >= _WRITEBACK_MIN_BYTES:
            _start_writeback(fd, len(data))
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise
    os.close(fd)


def _write_temporary(
    path: str,
    data: bytes | memoryview,
    sync: bool,
    writeback: bool,
    write_id: str | None = None,
    preallocate: bool = False,
) -> str:
    """Write ``data`` to a new temporary file beside ``path`` (:func:`_write_new_file`); return
    its name."""
    # Not ``secrets``: its system call lets go of the interpreter lock, and a name needs no
    # secrecy, only to differ from other writers' (O_EXCL refuses a clash; ``random`` is
    # reseeded in a forked child).
    tmp = f"{path}#{random.getrandbits(63)}"
    _write_new_file(tmp, path, data, sync, writeback, preallocate, write_id)
    return tmp


def _put(path: str, data: bytes | memoryview, durable: bool) -> None:
    # Not fsynced here: a commit makes every object it references durable in one concurrent
    # barrier just before the ref moves (``make_durable``), which lets the kernel write chunks
    # back while zarr is still producing them instead of waiting on each one. A backend that
    # is not durable leaves write-back entirely to the operating system.
    tmp = _write_temporary(path, data, sync=False, writeback=durable)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _put_chunk(path: str, data: bytes | memoryview, durable: bool) -> None:
    # Created under its own fresh name, without a temporary file and a rename: nothing refers
    # to a chunk before its put has returned, so no reader meets it half written, and a crash
    # leaves an unreferenced file that garbage collection deletes. One that exists already (a
    # put made again) is replaced as every other object is.
    try:
        _write_new_file(path, path, data, sync=False, writeback=durable)
    except FileExistsError:
        _put(path, data, durable)


def _sync_files(paths: Sequence[str]) -> None:
    for path in paths:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)


def _link_if_absent(path: str, tmp: str, durable: bool) -> bool:
    """Give the fully written temporary file ``tmp`` the name ``path`` unless that exists."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)
    if durable:
        _fsync_directory(os.path.dirname(path))
    return True


def _swap_if_version(
    path: str, tmp: str, version: ObjectVersion, durable: bool
) -> os.stat_result | None:
    """Rename ``tmp`` over ``path`` if ``path`` is still at ``version`` (under the dir lock).

    Returns the status of the file now named ``path`` (taken before the rename, which changes
    neither its inode nor its modification time), or None if ``path`` had moved on. ``tmp`` is
    gone when this returns or raises (also :class:`_LockBusy`).
    """
    directory = os.path.dirname(path)
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except _NOT_FOUND:
        os.unlink(tmp)
        return None
    try:
        # The data was written (and fsynced, if durable) before taking the lock, to keep the
        # critical section down to compare + rename + directory fsync.
        try:
            _flock(dir_fd)
            try:
                _, current = _read_versioned(path)
            except _NOT_FOUND:
                current = None
            if current != version:
                os.unlink(tmp)
                return None
            written = os.stat(tmp)
            os.replace(tmp, path)
        except BaseException:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            raise
        if durable:
            os.fsync(dir_fd)
        return written
    finally:
        os.close(dir_fd)  # also releases the lock


def _place(
    path: str, data: bytes, write_id: str | None, version: ObjectVersion | None, sync: bool
) -> bool | ObjectVersion:
    """A whole conditional write in one call: the temporary file (synced if ``sync``), then
    create-if-absent (``version`` None) or compare-and-swap (directory synced if ``sync``;
    the new version on success).

    An empty file (a tag's tombstone) has no data to sync: the directory sync that makes its
    name durable commits the inode it names with it (journaling filesystems write metadata in
    order), so it costs one sync instead of two.
    """
    # Without a sync, a replacing rename would start the write-back of an unallocated file.
    preallocate = version is not None and not sync
    tmp = _write_temporary(path, data, sync and len(data) > 0, False, write_id, preallocate)
    if version is None:
        return _link_if_absent(path, tmp, sync)
    written = _swap_if_version(path, tmp, version, sync)
    return False if written is None else _version(written, data)


def _stat_file(path: str) -> os.stat_result | None:
    try:
        st = os.stat(path)
    except _NOT_FOUND:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def _under_refs(key: str) -> bool:
    """Whether a key (or key prefix) is under ``refs/``, which no symbolic link may lead into."""
    return key == keys.REFS.rstrip("/") or key.startswith(keys.REFS)


def _refuse_links(root: str, key: str) -> None:
    """Raise if the path of ``key`` below ``root`` passes through a symbolic link."""
    path = root
    for part in key.split("/"):
        path = f"{path}/{part}"
        try:
            is_link = stat.S_ISLNK(os.lstat(path).st_mode)
        except OSError:
            return  # not there (yet): the operation itself reports what it finds
        if is_link:
            raise IcechunkError(
                f"refusing to follow the symbolic link {path} (for {key!r}): refs in a local "
                "repository must be real files and directories inside it, so that nothing "
                "outside the repository is read or written through them; replace the link "
                "with the ref it should be",
                kind="io",
            )


def _list(root: str, prefix: str) -> list[ObjectInfo]:
    # Start the walk in the deepest directory that the prefix names completely.
    base, _, _ = prefix.rpartition("/")
    if base and _under_refs(base):
        _refuse_links(root, base)
    found: list[ObjectInfo] = []
    pending = [(f"{root}/{base}" if base else root, f"{base}/" if base else "")]
    while pending:
        directory, key_prefix = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except _NOT_FOUND:
            continue
        for entry in entries:
            key = key_prefix + entry.name
            try:
                if _under_refs(key) and entry.is_symlink():
                    continue  # not a ref: a link to somewhere else
                if entry.is_dir():
                    if (key + "/").startswith(prefix) or prefix.startswith(key + "/"):
                        pending.append((entry.path, key + "/"))
                elif key.startswith(prefix) and not is_temporary_name(entry.name):
                    st = entry.stat()
                    if stat.S_ISREG(st.st_mode):
                        found.append(_info(key, st))
            except FileNotFoundError:
                continue  # deleted while we were listing
    found.sort(key=lambda info: info.key)
    return found


DURABLE_ENV_VAR = "PYICECHUNK_DURABLE"
_DURABLE_WORDS = {"1": True, "true": True, "yes": True, "on": True}
_DURABLE_WORDS.update({"0": False, "false": False, "no": False, "off": False})


def _durable_from_environment() -> bool:
    """Whether local storage created without an explicit ``durable`` syncs its writes.

    ``PYICECHUNK_DURABLE`` decides (``0``/``false``/``no``/``off`` or ``1``/``true``/``yes``/
    ``on``); unset or empty means durable.

    Raises
    ------
    IcechunkError
        The variable holds something else.
    """
    value = os.environ.get(DURABLE_ENV_VAR, "").strip().lower()
    if not value:
        return True
    if value not in _DURABLE_WORDS:
        raise IcechunkError(
            f"{DURABLE_ENV_VAR} must be 0, false, no or off (to leave syncing to the operating "
            f"system) or 1, true, yes or on (durable commits), got {value!r}",
            kind="storage-config",
        )
    return _DURABLE_WORDS[value]


class LocalFileSystemBackend(StorageBackend):
    """Objects kept as files under a local directory.

    Parameters
    ----------
    path
        The root directory; a relative path is made absolute at construction. It is created
        when the first object is written.
    durable
        True: a commit's objects, the ref it moves and every directory entry it changes reach
        the disk before the commit returns (fsync). False: no sync at all, as icechunk does;
        the operating system writes the data back when it chooses, so a process crash loses
        nothing but an OS crash or a power loss may lose recent commits. Writes stay atomic
        either way. None (the default): ``PYICECHUNK_DURABLE``, else True.
    """

    read_only = False
    quick_copies = True  # a hard link (or a small write) on this thread

    def __init__(self, path: str, durable: bool | None = None) -> None:
        self._root = os.path.abspath(os.fspath(path))
        self._durable = _durable_from_environment() if durable is None else bool(durable)

    @property
    def durable(self) -> bool:
        """Whether writes are synced to disk before the operations that need them return."""
        return self._durable

    def _path(self, key: str) -> str:
        _check_key(key)
        if is_temporary_name(key.rpartition("/")[2]):
            raise IcechunkError(
                f"invalid storage key {key!r}: a final component of the form '<name>#<digits>' "
                "is reserved for temporary files on the local filesystem",
                kind="invalid-key",
            )
        if _under_refs(key):
            _refuse_links(self._root, key)  # a few lstat calls, on ref operations only
        return f"{self._root}/{key}"

    async def _call(self, what: str, function: Callable[..., _T], *args: Any) -> _T:
        """``function(*args)`` in a worker thread."""
        try:
            return await asyncio.get_running_loop().run_in_executor(
                _get_executor(), function, *args
            )
        except OSError as e:
            raise self._io_error(what, e) from e

    async def _run(self, what: str, here: bool, function: Callable[..., _T], *args: Any) -> _T:
        """``function(*args)``: on this thread if ``here`` (see the module docstring), else in a
        worker; made here, a call that finds a lock held is made again in a worker."""
        if here:
            try:
                return function(*args)
            except _LockBusy:
                pass
            except OSError as e:
                raise self._io_error(what, e) from e
        return await self._call(what, function, *args)

    def _io_error(self, what: str, error: OSError) -> IcechunkError:
        return IcechunkError(
            f"local filesystem storage error for {what} under {self._root}: {error}", kind="io"
        )

    def _read_here(
        self, key: str, byte_range: ByteRequest | None
    ) -> tuple[str, tuple[bytes, os.stat_result] | None]:
        """The path of ``key`` and, when it can be read on this thread, its bytes and status."""
        path = self._path(key)
        try:
            return path, _read_cached(path, key, byte_range)
        except OSError as e:
            raise self._io_error(f"object {key!r}", e) from e

    def supports_conditional_update(self) -> bool:
        return True

    async def get(self, key: str, byte_range: ByteRequest | None = None) -> bytes:
        path, done = self._read_here(key, byte_range)
        if done is not None:
            return done[0]
        return await self._call(f"object {key!r}", _read, path, key, byte_range)

    async def get_view(self, key: str, byte_range: ByteRequest | None = None) -> bytes | memoryview:
        if byte_range is not None or not key.startswith(keys.CHUNKS):
            return await self.get(key, byte_range)
        path, done = self._read_here(key, None)
        if done is not None:
            return done[0]
        return await self._call(f"object {key!r}", _map, path, key)

    async def get_versioned(self, key: str) -> tuple[bytes, ObjectVersion]:
        # The small objects replaced in place (refs, config, ``repo``) are read with their
        # version on every commit and history walk: nearly always here, from the page cache.
        path, done = self._read_here(key, None)
        if done is not None:
            data, st = done
            return data, _version(st, data)
        return await self._call(f"object {key!r}", _get_versioned, path, key)

    def get_versioned_now(self, key: str) -> tuple[bytes, ObjectVersion]:
        # The caller holds no event loop (blocking code): even a read the page cache cannot
        # serve is made here.
        try:
            return _get_versioned(self._path(key), key)
        except OSError as e:
            raise self._io_error(f"object {key!r}", e) from e

    async def put(self, key: str, data: bytes | memoryview) -> None:
        # A plain put makes no sync call below _WRITEBACK_MIN_BYTES (nor at all, if not durable).
        here = len(data) < min(_SMALL_BYTES, _WRITEBACK_MIN_BYTES)
        write = _put_chunk if key.startswith(keys.CHUNKS) else _put
        await self._run(f"object {key!r}", here, write, self._path(key), data, self._durable)

    async def put_copy(
        self, key: str, data: bytes, *, source: str, version: ObjectVersion | None
    ) -> None:
        if version is not None:
            what = f"object {key!r}"
            args = (self._path(source), self._path(key), version)
            if await self._run(what, True, _link_copy, *args):
                return
        await self.put(key, data)

    async def put_many(self, items: Sequence[tuple[str, bytes | memoryview]]) -> None:
        # The small writes (made on this thread) one after another, without a task each; every
        # key is checked before anything is written.
        for key, _ in items:
            self._path(key)
        small = min(_SMALL_BYTES, _WRITEBACK_MIN_BYTES)
        for key, data in items:
            if len(data) < small:
                await self.put(key, data)
        await asyncio.gather(*(self.put(key, data) for key, data in items if len(data) >= small))

    async def make_durable(self, keys: Sequence[str]) -> None:
        if not keys or not self._durable:
            return
        paths = [self._path(key) for key in keys]
        directories = sorted({os.path.dirname(p) for p in paths})
        if _syncfs is not None and len(paths) >= _SYNCFS_MIN_FILES:
            # Files, their directory entries and everything else dirty on the filesystem.
            await self._call(f"{len(paths)} objects to sync", _sync_filesystems, directories)
            return
        # File contents and the directory entries that name them are independent, so all the
        # syncs run at once; the barrier is complete when every one has returned.
        # Up to 16 batches in flight: enough to keep the device queue full, few thread hops.
        size = max(1, -(-len(paths) // 16))
        batches = [paths[i : i + size] for i in range(0, len(paths), size)]
        await asyncio.gather(
            *(self._call(f"{len(b)} objects to sync", _sync_files, b) for b in batches),
            *(self._call(f"directory {d!r}", _fsync_directory, d) for d in directories),
        )

    async def _prepare(
        self, key: str, data: bytes, durable: Sequence[str], write_id: str | None
    ) -> tuple[str, str]:
        """Write the new object to a temporary file (synced if this backend is durable) while
        ``durable`` is synced."""
        path = self._path(key)
        sync = self._durable
        results = await asyncio.gather(
            self._call(f"object {key!r}", _write_temporary, path, data, sync, False, write_id),
            self.make_durable(durable),
            return_exceptions=True,
        )
        tmp, synced = results
        if isinstance(tmp, BaseException):
            raise tmp
        if isinstance(synced, BaseException):
            await self._call(f"object {key!r}", os.unlink, tmp)
            raise synced
        return path, tmp

    async def _write_conditionally(self, write: ConditionalWrite) -> bool | ObjectVersion:
        key = write.key
        what = f"object {key!r}"
        if not (self._durable and write.durable):
            # Nothing else to sync first: the whole write is one call, made here when it
            # makes no sync call and is small.
            here = not self._durable and len(write.data) < _SMALL_BYTES
            path = self._path(key)
            args = (path, write.data, write.write_id, write.version, self._durable)
            return await self._run(what, here, _place, *args)
        # A commit's objects are synced while the new ref's temporary file is written.
        path, tmp = await self._prepare(key, write.data, write.durable, write.write_id)
        if write.version is None:
            return await self._call(what, _link_if_absent, path, tmp, self._durable)
        written = await self._call(what, _swap_if_version, path, tmp, write.version, self._durable)
        return False if written is None else _version(written, write.data)

    def _stamps_write_ids(self) -> bool:
        if not _XATTRS:
            _warn_unstamped_once(self._root)
        return _XATTRS

    async def _read_write_id(self, key: str) -> str | None:
        return await self._run(f"the write id of {key!r}", True, _read_stamp, self._path(key))

    def _may_have_landed(self, error: Exception) -> bool:
        # See the module docstring: a local call's failure is its outcome.
        return False

    async def delete(self, key: str) -> None:
        await self.delete_many([key])

    async def delete_many(self, keys: Sequence[str]) -> int:
        by_directory: dict[str, list[str]] = {}
        immutable: set[str] = set()
        for key in keys:
            path = self._path(key)
            directory = os.path.dirname(path)
            by_directory.setdefault(directory, []).append(path)
            if key.startswith(_IMMUTABLE_PREFIXES):
                immutable.add(directory)
        # A deleted ref, config or repo must stay deleted after a power loss, so a durable
        # backend syncs their directory. Not so for chunks, manifests, snapshots and logs
        # (garbage collection): one that comes back is unreferenced garbage, which the next
        # collection deletes again, and that sync is expensive (on a filesystem mounted with
        # `discard` it waits for the freed blocks to be trimmed: tens of ms a directory).
        counts = await asyncio.gather(
            *(
                self._delete_in_directory(d, paths, self._durable and d not in immutable)
                for d, paths in by_directory.items()
            )
        )
        return sum(counts)

    async def _delete_in_directory(self, directory: str, paths: list[str], sync: bool) -> int:
        """Unlink ``paths`` (all in ``directory``) under the directory's lock, then sync it if
        ``sync``."""
        what = f"{len(paths)} objects to delete in {directory!r}"
        if len(paths) <= _UNLINKS_PER_THREAD:
            # One file without a sync is unlinked here; an unlink of many may wait on the disk.
            here = not sync and len(paths) == 1
            return await self._run(what, here, _delete_in_directory, directory, paths, sync)
        dir_fd = await self._call(what, _lock_directory, directory)
        if dir_fd is None:
            return 0
        deleted = 0
        try:
            # An unlink waits on the filesystem (a discard, a journal entry), not on the CPU,
            # so a large batch is split over a few threads: the lock, held here by this
            # process, covers them all.
            size = max(_UNLINKS_PER_THREAD, -(-len(paths) // _UNLINK_THREADS))
            slices = [paths[i : i + size] for i in range(0, len(paths), size)]
            results = await asyncio.gather(
                *(self._call(what, _unlink_files, part) for part in slices),
                return_exceptions=True,
            )
            deleted = sum(r for r in results if isinstance(r, int))
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        finally:
            await self._call(what, _release_directory, dir_fd, sync and deleted > 0)
        return deleted

    async def exists(self, key: str) -> bool:
        return await self._run(f"object {key!r}", True, _stat_file, self._path(key)) is not None

    async def head(self, key: str) -> ObjectInfo | None:
        st = await self._run(f"object {key!r}", True, _stat_file, self._path(key))
        return None if st is None else _info(key, st)

    async def list(self, prefix: str) -> list[ObjectInfo]:
        base = prefix.rpartition("/")[0]
        if base:
            _check_key(base)
        return await self._call(f"the listing of {prefix!r}", _list, self._root, prefix)

    def default_settings(self) -> StorageSettings:
        # Unlike the reference, conditional updates stay on (None): they are real here.
        return self._local_settings(4096, unsafe_use_metadata=False)

    # The default (durable) is not shown, so these reprs stay icechunk's; the reference has no
    # such setting and behaves like durable=False.
    def __repr__(self) -> str:
        setting = "" if self._durable else ", durable=false"
        return f"LocalFileSystemObjectStoreBackend(path={self._root}{setting})"

    def _storage_fields(self) -> tuple[tuple[str, str], ...]:
        fields = (("type", "local filesystem"), ("path", self._root))
        return fields if self._durable else (*fields, ("durable", "false"))

    def __reduce__(self) -> tuple[Any, ...]:
        # The resolved setting travels, so a worker process ignores its own environment.
        return (LocalFileSystemBackend, (self._root, self._durable))
