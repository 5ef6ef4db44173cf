"""Helpers for the security suite (a uniquely named module: several test folders have a
conftest.py, so tests cannot import from "conftest" reliably).

Hostile virtual chunk locations reach a reader through a manifest, and nothing forces a
manifest's writer to normalise them; :func:`crafted_repo` writes them verbatim, as an attacker
with write access to the repository (or a careless tool) would.
"""

from __future__ import annotations

import errno
import importlib
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import zarr

import pyicechunk
from pyicechunk.format.manifest import VirtualPayload

IMPLEMENTATIONS = ("pyicechunk", "icechunk")
CHUNK = 8  # bytes per virtual chunk in the crafted arrays


def implementation(name: str) -> ModuleType:
    return importlib.import_module(name)


@dataclass(frozen=True)
class Case:
    """A location to read, what pyicechunk must do with it, and what icechunk 1.1.21 does.

    ``ours`` and ``reference`` are ``"refused"`` (an IcechunkError before anything outside the
    container is touched) or the name of the object whose bytes the read returns. ``fragment``
    is a piece of pyicechunk's error message.
    """

    name: str
    location: str
    ours: str = "refused"
    reference: str = "refused"
    fragment: str = ""


def crafted_repo(
    path: Path, prefix: str, store_config: Any, locations: Sequence[str], spec_version: int = 1
) -> None:
    """A local pyicechunk repository whose array ``a`` has one virtual chunk per location.

    Chunk ``i`` covers bytes ``0..CHUNK`` of ``locations[i]``, stored exactly as given (the
    session's change set is filled directly, bypassing ``set_virtual_ref``'s normalisation).
    The config holds one container, ``prefix`` with ``store_config``. The repository is spec
    1 by default, so that icechunk 1.1.21 can read it too.
    """
    config = pyicechunk.RepositoryConfig.default()
    config.set_virtual_chunk_container(pyicechunk.VirtualChunkContainer(prefix, store_config))
    repo = pyicechunk.Repository.create(
        pyicechunk.local_filesystem_storage(str(path)), config, spec_version=spec_version
    )
    session = repo.writable_session("main")
    zarr.create_array(
        session.store,
        name="a",
        shape=(CHUNK * len(locations),),
        chunks=(CHUNK,),
        dtype="u1",
        compressors=None,
        fill_value=0,
    )
    core = session._core
    node_id = core.node("/a").node_id
    for i, location in enumerate(locations):
        core.changes.set_chunk(node_id, (i,), VirtualPayload(location, 0, CHUNK))
    session.commit("crafted virtual refs")


def read_chunk(ic: ModuleType, path: Path, index: int, authorize: dict[str, Any]) -> bytes:
    """Open the repository at ``path`` with ``ic`` and read virtual chunk ``index`` of ``a``."""
    repo = ic.Repository.open(
        ic.local_filesystem_storage(str(path)), authorize_virtual_chunk_access=authorize
    )
    arr = zarr.open_array(repo.readonly_session("main").store, path="a", mode="r")
    return bytes(arr[CHUNK * index : CHUNK * (index + 1)].tobytes())


def one_line(error: BaseException) -> str:
    """An error's message on one line (the reference wraps and indents long messages)."""
    return " ".join(str(error).replace("|", " ").split())


@dataclass
class FifoWatch:
    """A named pipe that records every time something opens it for reading.

    A reader's ``open`` blocks until a writer appears; the watcher keeps trying a non-blocking
    write-open, which succeeds only while a reader has the pipe open, then writes
    :attr:`payload` and closes. So reading the pipe works (a broken check would get the payload
    back), and :attr:`opened` counts exactly the reads that reached the filesystem.
    """

    path: Path
    payload: bytes = b"SECRET!!" * 4
    opened: list[float] = field(default_factory=list)
    _ticks: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        os.mkfifo(self.path)
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._ticks += 1
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:
                if e.errno != errno.ENXIO:  # ENXIO: no reader right now
                    raise
                time.sleep(0.002)
                continue
            self.opened.append(time.monotonic())
            try:
                os.write(fd, self.payload)
            except (BlockingIOError, BrokenPipeError):
                pass  # the reader already gave up (e.g. after seeing a size of 0)
            finally:
                os.close(fd)
            time.sleep(0.01)  # let the reader see end-of-file before looking again

    def opens(self) -> int:
        """How many opens were seen, once the watcher has finished handling any in progress.

        A reader unblocks as soon as the watcher's open succeeds, possibly before the watcher
        thread records it; two more turns of its loop make sure the record is there.
        """
        start = self._ticks
        deadline = time.monotonic() + 5
        while self._ticks < start + 2 and time.monotonic() < deadline:
            time.sleep(0.001)
        return len(self.opened)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
