"""A writer to be killed: commits, tags and branches in a loop, acknowledging each one.

Run as a script it is a fork server: it imports pyicechunk, zarr and numpy once (starting no
thread), then forks one writer per ``run`` command read from stdin, so that each of the many
writers a crash test kills costs a fork instead of a Python start-up. Protocol, one line each::

    run <repository> <acknowledgements file> <run number>   ->  <pid of the writer>
    reap <pid>                                              ->  <wait status>

A writer opens the repository and repeats, until it is killed: commit a chunk of ``/a``
(inline) and of ``/b`` (native) to ``main`` or ``dev``, sometimes create a tag or a branch at
the last commit. After each operation returns it appends one JSON line describing it to the
acknowledgements file, so every line there is an operation the writer saw succeed.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading

import numpy as np
import zarr

import pyicechunk as icechunk

CHUNKS = 16
NATIVE = 256  # float64 per chunk of /b: 2 KiB, above the inline threshold


def chunk_values(value: int) -> np.ndarray:
    return np.full(NATIVE, float(value))


def create(path: str, spec_version: int | None = None) -> None:
    """The repository the writers work on: /a (inline chunks) and /b (native), main and dev."""
    repo = icechunk.Repository.create(
        icechunk.local_filesystem_storage(path), spec_version=spec_version
    )
    session = repo.writable_session("main")
    root = zarr.group(session.store)
    root.create_array("a", shape=(CHUNKS,), chunks=(1,), dtype="i8", compressors=None)
    root.create_array("b", shape=(CHUNKS * NATIVE,), chunks=(NATIVE,), dtype="f8")
    repo.create_branch("dev", session.commit("arrays"))


def acknowledge(fd: int, record: dict[str, object]) -> None:
    # One write of a short line to an O_APPEND file: a kill leaves it whole or absent.
    os.write(fd, (json.dumps(record) + "\n").encode())


def write_forever(path: str, acks: str, run: int) -> None:
    rng = random.Random(run)
    fd = os.open(acks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(path))
    last: str | None = None
    for step in range(1_000_000):
        roll = rng.random()
        if last is not None and roll < 0.08:
            name = f"t-{run}-{step}"
            repo.create_tag(name, last)
            acknowledge(fd, {"kind": "tag", "name": name, "snapshot": last})
            continue
        if last is not None and roll < 0.12:
            name = f"b-{run}-{step}"
            repo.create_branch(name, last)
            acknowledge(fd, {"kind": "branch", "name": name, "snapshot": last})
            continue
        branch = "dev" if roll < 0.3 else "main"
        chunk = rng.randrange(CHUNKS)
        value = run * 1_000_000 + step
        session = repo.writable_session(branch)
        zarr.open_array(session.store, path="a", mode="r+")[chunk] = value
        zarr.open_array(session.store, path="b", mode="r+")[
            chunk * NATIVE : (chunk + 1) * NATIVE
        ] = chunk_values(value)
        last = session.commit(f"run {run} step {step}")
        acknowledge(
            fd,
            {"kind": "commit", "branch": branch, "snapshot": last, "chunk": chunk, "value": value},
        )


def serve() -> None:
    # Forking is only safe while this process has a single thread (native ones included).
    assert threading.active_count() == 1
    if os.path.isdir("/proc/self/task"):
        assert len(os.listdir("/proc/self/task")) == 1
    print("ready", flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "run":
            pid = os.fork()
            if pid == 0:
                devnull = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1):
                    os.dup2(devnull, fd)
                try:
                    write_forever(args[0], args[1], int(args[2]))
                finally:
                    os._exit(0)
            print(pid, flush=True)
        elif command == "reap":
            _, status = os.waitpid(int(args[0]), 0)
            print(status, flush=True)


if __name__ == "__main__":
    serve()
