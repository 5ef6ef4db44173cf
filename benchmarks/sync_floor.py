"""The durability floor of pyicechunk's small operations: the syncs each waits for, and their cost.

pyicechunk makes a commit durable before the branch moves, and a branch or tag change durable
before it returns; the references never sync. So with durability on, an operation costs at least
what the references' whole operation costs plus the syncs it has to wait for in sequence. This
diagnostic measures that part on this disk, for the operations of cases (f) and (g) of
``run.py``, on spec-1 and spec-2 repositories (local filesystem, in one process):

- ``syncs/op``: the sync calls made per operation (``fsync``, ``fdatasync``, ``syncfs``);
- ``rounds/op``: how many of them are waited for one after another (calls that overlap in time
  count as one round);
- ``sync ms/op``: the wall time per operation during which at least one sync is running, which
  is what durability adds to the operation at the least;
- ``durable`` and ``no sync``: the operation's time per call with ``durable=True`` and with
  ``durable=False`` (the same code, no sync calls at all);
- the cost of the two kinds of sync on their own, on a small new file and on a directory.

The floor of a durable operation is then ``no sync`` + ``sync ms/op``, and its ratio to the
reference's time is what a target such as "(f) commits <= 1.3" has to be measured against.

The sync functions are wrapped (to count and time the calls, which still run) in this process
only; this is a diagnostic, not a supported way to run pyicechunk.

Usage::

    python benchmarks/sync_floor.py               # 100 commits, 30 branch+tag pairs, 3 runs
    python benchmarks/sync_floor.py --repeat 5 --dir /tmp
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import zarr

import pyicechunk as ic
from pyicechunk.storage import local

_lock = threading.Lock()
_calls: list[tuple[float, float]] = []


def _timed(function: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args)
        finally:
            end = time.perf_counter()
            with _lock:
                _calls.append((start, end))

    return call


@contextmanager
def _counting() -> Iterator[None]:
    """Count and time every sync call made meanwhile (the calls still run)."""
    saved = os.fsync, os.fdatasync, local._syncfs
    os.fsync, os.fdatasync = _timed(os.fsync), _timed(os.fdatasync)
    if local._syncfs is not None:
        local._syncfs = _timed(local._syncfs)
    try:
        yield
    finally:
        os.fsync, os.fdatasync, local._syncfs = saved


def _rounds(calls: list[tuple[float, float]]) -> tuple[int, float]:
    """Groups of overlapping calls, and the time at least one call was running."""
    rounds, busy, end = 0, 0.0, float("-inf")
    for s, e in sorted(calls):
        if s > end:
            rounds += 1
            busy += e - s
            end = e
        elif e > end:
            busy += e - end
            end = e
    return rounds, busy


def _commits(repo: Any, n: int) -> Callable[[int], None]:
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(n,), chunks=(1,), dtype="float64")
    session.commit("create array")

    def one(i: int) -> None:
        session = repo.writable_session("main")
        zarr.open_array(session.store, path="a", mode="r+")[i] = i + 1
        session.commit(f"step {i}")

    return one


def _refs(repo: Any, n: int) -> Callable[[int], None]:
    snapshot = repo.lookup_branch("main")

    def one(i: int) -> None:
        # One of the four operations of a pair of case (g), in turn.
        pair, step = divmod(i, 4)
        if step == 0:
            repo.create_branch(f"branch-{pair}", snapshot)
        elif step == 1:
            repo.create_tag(f"tag-{pair}", snapshot)
        elif step == 2:
            repo.delete_branch(f"branch-{pair}")
        else:
            repo.delete_tag(f"tag-{pair}")

    return one


def _measure(
    root: Path, spec: int, operation: str, n: int, durable: bool
) -> tuple[float, int, int, float]:
    """Time per operation; and, counted, syncs, rounds and sync time per operation."""
    path = root / f"{operation}-{spec}-{durable}-{time.monotonic_ns()}"
    storage = ic.local_filesystem_storage(str(path), durable=durable)
    repo = ic.Repository.create(storage, spec_version=spec)
    one = (_commits if operation == "commit" else _refs)(repo, n)
    os.sync()  # set-up's dirty pages written first, as run.py does
    _calls.clear()
    with _counting():
        start = time.perf_counter()
        per_op = []
        for i in range(n):
            before = len(_calls)
            one(i)
            per_op.append(_rounds(_calls[before:])[0])
        elapsed = time.perf_counter() - start
    rounds, busy = _rounds(_calls)
    del rounds  # per operation, not across them
    shutil.rmtree(path)
    return elapsed / n, len(_calls), sum(per_op), busy / n


def _primitive_costs(root: Path, repeat: int = 30) -> tuple[float, float]:
    """Median ms of (a new 4 KiB file written and fdatasynced, a directory fsync)."""
    directory = root / f"primitive-{time.monotonic_ns()}"
    directory.mkdir()
    files, dirs = [], []
    try:
        for i in range(repeat):
            start = time.perf_counter()
            fd = os.open(directory / f"f{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, os.urandom(4096))
            os.fdatasync(fd)
            os.close(fd)
            files.append(time.perf_counter() - start)
            start = time.perf_counter()
            dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            os.fsync(dfd)
            os.close(dfd)
            dirs.append(time.perf_counter() - start)
    finally:
        shutil.rmtree(directory)
    return statistics.median(files) * 1e3, statistics.median(dirs) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=100)
    parser.add_argument("--ref-pairs", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where the repositories go (a temp dir)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pyicechunk-sync-floor-", dir=args.dir))
    try:
        file_ms, dir_ms = _primitive_costs(root)
        print(
            f"on this disk: new 4 KiB file + fdatasync {file_ms:.2f} ms, directory fsync "
            f"{dir_ms:.2f} ms (medians of 30)\n"
        )
        print(
            "| operation | spec | syncs/op | rounds/op | sync ms/op | durable ms/op "
            "| no sync ms/op | floor ms/op |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for operation, n in (("commit", args.commits), ("branch/tag", 4 * args.ref_pairs)):
            for spec in (1, 2):
                runs = [
                    (
                        _measure(root, spec, operation, n, True),
                        _measure(root, spec, operation, n, False),
                    )
                    for _ in range(args.repeat)
                ]
                durable = statistics.median(r[0][0] for r in runs) * 1e3
                nosync = statistics.median(r[1][0] for r in runs) * 1e3
                syncs = statistics.median(r[0][1] for r in runs) / n
                rounds = statistics.median(r[0][2] for r in runs) / n
                busy = statistics.median(r[0][3] for r in runs) * 1e3
                print(
                    f"| {operation} | {spec} | {syncs:.1f} | {rounds:.1f} | {busy:.2f} "
                    f"| {durable:.2f} | {nosync:.2f} | {nosync + busy:.2f} |"
                )
        print(f"\nmedians of {args.repeat} runs; floor = no sync + sync ms/op")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
