"""Writers killed with SIGKILL at random moments never damage the repository.

A fork server (``crash_writer.py``) starts writers that commit, tag and branch in a loop on a
local repository and acknowledge each operation once it returned. The test kills each writer
at a random moment, then checks with a fresh Repository: it opens, the branches and tags are
exactly the acknowledged ones (plus ``main`` and ``dev``), every acknowledged commit is in its
branch's history with the data it wrote, and everything each ref reaches can be read (no ref
points at a missing snapshot, manifest or chunk).

``PYICECHUNK_CRASH_RUNS`` sets the number of kills (default 50); the ``slow`` variant kills 500
writers.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from crash_writer import NATIVE, chunk_values, create

import pyicechunk as icechunk

RUNS = int(os.environ.get("PYICECHUNK_CRASH_RUNS", "50"))
WRITER = Path(__file__).with_name("crash_writer.py")


class ForkServer:
    def __init__(self) -> None:
        # One BLAS thread: numpy's import would otherwise start a pool, and the server must
        # stay single-threaded to fork safely.
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(sys.path),
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
        }
        self.proc = subprocess.Popen(
            [sys.executable, str(WRITER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self._line() == "ready"

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the fork server died"
        return line.strip()

    def _send(self, line: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self._line()

    def start(self, repo: Path, acks: Path, run: int) -> int:
        return int(self._send(f"run {repo} {acks} {run}"))

    def reap(self, pid: int) -> int:
        return int(self._send(f"reap {pid}"))

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(30)


@pytest.fixture
def server() -> Iterator[ForkServer]:
    s = ForkServer()
    yield s
    s.close()


def acknowledged(acks: Path) -> list[dict[str, Any]]:
    if not acks.exists():
        return []
    text = acks.read_text()
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


class Checker:
    """Checks the repository after each kill; what was verified once stays verified."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.parents: dict[str, str | None] = {}  # learned from walks: snapshots are immutable
        self.committed: set[str] = set()  # acknowledged commits whose writes were read back
        self.verified: set[str] = set()  # ref tips whose arrays were read in full
        self.unacknowledged: set[str] = set()  # refs created by a writer killed before its ack

    def check(self, acks: list[dict[str, Any]], run: int) -> None:
        repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(self.path)))
        refs = {"branch": repo.list_branches(), "tag": repo.list_tags()}
        for kind, listed in refs.items():
            wanted = {a["name"] for a in acks if a["kind"] == kind}
            if kind == "branch":
                wanted |= {"main", "dev"}
            assert wanted <= listed, f"acknowledged {kind}es are missing: {wanted - listed}"
            new = listed - wanted - self.unacknowledged
            assert len(new) <= 1 and all(n.split("-")[1] == str(run) for n in new), new
            self.unacknowledged |= new
        for record in acks:
            if record["kind"] in ("tag", "branch"):
                lookup = repo.lookup_tag if record["kind"] == "tag" else repo.lookup_branch
                assert lookup(record["name"]) == record["snapshot"]
        tips = {b: repo.lookup_branch(b) for b in refs["branch"]}
        tips |= {t: repo.lookup_tag(t) for t in refs["tag"]}
        histories = {name: self.history(repo, tip) for name, tip in tips.items()}
        for record in acks:
            if record["kind"] != "commit":
                continue
            sid = record["snapshot"]
            assert sid in histories[record["branch"]], f"acknowledged commit {sid} is lost"
            self.read_commit(repo, sid, record["chunk"], record["value"])
        for tip in tips.values():
            self.read_all(repo, tip)

    def history(self, repo: icechunk.Repository, tip: str) -> set[str]:
        """The ancestry of ``tip``, read from storage down to a snapshot read before."""
        sid: str | None = tip
        while sid is not None and sid not in self.parents:
            parent = repo.lookup_snapshot(sid).parent_id
            self.parents[sid] = parent
            sid = parent
        out: set[str] = set()
        sid = tip
        while sid is not None:
            out.add(sid)
            sid = self.parents[sid]
        return out

    def read_commit(self, repo: icechunk.Repository, sid: str, chunk: int, value: int) -> None:
        """The chunks the commit wrote hold its values (the rest is read at ref tips)."""
        if sid in self.committed:
            return
        store = repo.readonly_session(snapshot_id=sid).store
        assert zarr.open_array(store, path="a", mode="r")[chunk] == value
        b = zarr.open_array(store, path="b", mode="r")[chunk * NATIVE : (chunk + 1) * NATIVE]
        np.testing.assert_array_equal(b, chunk_values(value))
        self.committed.add(sid)

    def read_all(self, repo: icechunk.Repository, sid: str) -> None:
        """Read every chunk a ref reaches: none may be missing."""
        if sid in self.verified:
            return
        store = repo.readonly_session(snapshot_id=sid).store
        zarr.open_array(store, path="a", mode="r")[:]
        zarr.open_array(store, path="b", mode="r")[:]
        self.verified.add(sid)


def crash_many(
    tmp_path: Path, server: ForkServer, runs: int, seed: int, spec_version: int | None = None
) -> dict[str, int]:
    path = tmp_path / "repo"
    create(str(path), spec_version)
    acks = tmp_path / "acks.jsonl"
    checker = Checker(path)
    rng = random.Random(seed)
    stats = {"runs": 0, "commits": 0, "refs": 0}
    for run in range(runs):
        pid = server.start(path, acks, seed * 100_000 + run)
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(pid, signal.SIGKILL)
        status = server.reap(pid)
        assert os.WIFSIGNALED(status), f"writer {run} ended on its own: status {status}"
        checker.check(acknowledged(acks), seed * 100_000 + run)
        stats["runs"] += 1
    # The whole history also walks cleanly through the public iterator.
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(path)))
    assert len(list(repo.ancestry(branch="main"))) > 1
    records = acknowledged(acks)
    stats["commits"] = sum(r["kind"] == "commit" for r in records)
    stats["refs"] = sum(r["kind"] != "commit" for r in records)
    return stats


def test_killed_writers(tmp_path: Path, server: ForkServer) -> None:
    stats = crash_many(tmp_path, server, RUNS, seed=1)
    print(f"crash test: {stats}")
    assert stats["commits"] > 0


@pytest.mark.slow
def test_killed_writers_long(tmp_path: Path, server: ForkServer) -> None:
    stats = crash_many(tmp_path, server, 500, seed=2)
    print(f"crash test: {stats}")
