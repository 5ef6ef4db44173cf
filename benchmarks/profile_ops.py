"""Where the time of pyicechunk's small operations goes: wall time, storage requests, a profile.

Operations (each on a repository of its own, built untimed first):

- ``commit``: a writable session, one tiny chunk and one attribute written, the commit;
- ``branch`` / ``tag``: create a branch (a tag) at a snapshot and delete it again;
- ``expire``: ``expire_snapshots`` on a history of one-chunk commits, all but the newest few
  expiring; ``gc``: ``garbage_collect`` right after it, on the same repository object;
- ``rewrite``: ``rewrite_manifests`` of many small arrays, on a freshly opened repository.

Each runs on spec 1 and spec 2, on the local filesystem and on S3 (a moto server process on
127.0.0.1), through the async API inside ``asyncio.run``, so all of pyicechunk's own Python
work happens on the calling thread's event loop. Every configuration makes three kinds of pass
over the same scenario, each on a new repository:

- ``--repeat`` timed passes: wall time per operation, and the CPU time of the loop's thread
  against the rest of the process (worker threads for file I/O, obstore's runtime);
- one counted pass: every storage request, from the TRACE records of the ``pyicechunk.storage``
  logger (see ``pyicechunk.storage.request_log``), by request kind and by object kind;
- one profiled pass: cProfile over the operations only (enabled around each, on the loop's
  thread), own time grouped into buckets (:data:`BUCKETS`), plus the top functions.

Timed passes run neither the profiler nor the request log, so their times carry no overhead.

Usage::

    python benchmarks/profile_ops.py --out profile-report.md   # all, --repeat 3
    python benchmarks/profile_ops.py --quick --storage local  # smoke run, seconds
    python benchmarks/profile_ops.py --ops commit,branch --spec 2 --repeat 5
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import logging
import pstats
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np
import zarr.api.asynchronous as zarr_async
from cases import _EXPIRE_CHUNK, _EXPIRE_CHUNKS, ARRAY, _check, _encoded_chunks, _expire_chunk

import pyicechunk as ic
from pyicechunk.storage import local_filesystem_storage, s3_storage

TRACE = 5  # pyicechunk's TRACE level (pyicechunk._logging.TRACE)
STORAGE_LOGGER = "pyicechunk.storage"
OPS = ("commit", "branch", "tag", "expire", "gc", "rewrite")
TOP_FUNCTIONS = 8


@dataclass(frozen=True)
class Sizes:
    """How much work a pass does; ``--quick`` shrinks it to a smoke run."""

    commits: int  # commits per pass
    ref_pairs: int  # branch (and tag) create + delete pairs per pass
    history: int  # commits before expiration
    keep: int  # newest commits that survive it
    rewrite_arrays: int
    rewrite_chunks: int  # one-element chunks per array (inline in the manifest)
    rewrites: int  # rewrites per pass


FULL = Sizes(
    commits=20, ref_pairs=20, history=50, keep=10, rewrite_arrays=30, rewrite_chunks=100, rewrites=2
)
QUICK = Sizes(
    commits=3, ref_pairs=3, history=6, keep=2, rewrite_arrays=3, rewrite_chunks=4, rewrites=1
)

# -- scenarios: an untimed set-up, then timed steps --------------------------------------------

# A step: the operation's name and a thunk running one operation. Whatever a scenario does
# between two steps (opening a repository, choosing a time) is not measured.
Step = tuple[str, Callable[[], Awaitable[Any]]]
Scenario = Callable[[ic.Storage, int, Sizes], AsyncIterator[Step]]


async def _new_repo(storage: ic.Storage, spec: int) -> ic.Repository:
    return await ic.Repository.create_async(storage, spec_version=spec)


async def _one_chunk_array(repo: ic.Repository, shape: int, chunk: int) -> str:
    session = await repo.writable_session_async("main")
    await zarr_async.create_array(
        store=session.store, name=ARRAY, shape=(shape,), chunks=(chunk,), dtype="float64"
    )
    snapshot: str = await session.commit_async("create array")
    return snapshot


async def _write_commit(repo: ic.Repository, index: Any, value: Any, attrs: dict[str, Any]) -> str:
    session = await repo.writable_session_async("main")
    arr = await zarr_async.open_array(store=session.store, path=ARRAY, mode="r+")
    await arr.setitem(index, value)
    if attrs:
        await arr.update_attributes(attrs)
    snapshot: str = await session.commit_async(f"write {attrs}")
    return snapshot


async def commits(storage: ic.Storage, spec: int, sizes: Sizes) -> AsyncIterator[Step]:
    """Small commits on one repository object, as a pipeline committing in a loop would."""
    repo = await _new_repo(storage, spec)
    await _one_chunk_array(repo, sizes.commits, 1)
    for i in range(sizes.commits):
        yield "commit", partial(_write_commit, repo, i, float(i + 1), {"step": i})


async def refs(storage: ic.Storage, spec: int, sizes: Sizes) -> AsyncIterator[Step]:
    """Branch and tag pairs (create, delete) at one snapshot; tag names are never reused."""
    repo = await _new_repo(storage, spec)
    snapshot = await _one_chunk_array(repo, 1, 1)

    async def branch(name: str) -> None:
        await repo.create_branch_async(name, snapshot)
        await repo.delete_branch_async(name)

    async def tag(name: str) -> None:
        await repo.create_tag_async(name, snapshot)
        await repo.delete_tag_async(name)

    for i in range(sizes.ref_pairs):
        yield "branch", partial(branch, f"branch-{i}")
        yield "tag", partial(tag, f"tag-{i}")


async def maintenance(storage: ic.Storage, spec: int, sizes: Sizes) -> AsyncIterator[Step]:
    """Expire all but the newest commits of a history, then collect the garbage.

    Each commit of the history replaces one 1 KiB chunk of ten (a chunk file, a manifest, a
    snapshot and a transaction log for the collector), as in ``cases.py``'s case (h).
    """
    repo = await _new_repo(storage, spec)
    await _one_chunk_array(repo, _EXPIRE_CHUNK * _EXPIRE_CHUNKS, _EXPIRE_CHUNK)
    expected = np.zeros(_EXPIRE_CHUNK * _EXPIRE_CHUNKS)
    for k in range(sizes.history):
        lo = (k % _EXPIRE_CHUNKS) * _EXPIRE_CHUNK
        expected[lo : lo + _EXPIRE_CHUNK] = _expire_chunk(k)
        await _write_commit(
            repo, slice(lo, lo + _EXPIRE_CHUNK), expected[lo : lo + _EXPIRE_CHUNK], {}
        )
    history = [s async for s in repo.async_ancestry(branch="main")]
    older_than = history[sizes.keep - 1].written_at
    repo = await ic.Repository.open_async(storage)  # nothing cached from building the history
    expired: set[str] = set()
    collected: list[ic.GCSummary] = []

    async def expire() -> None:
        expired.update(await repo.expire_snapshots_async(older_than))

    async def gc() -> None:
        # On spec 2 an S3 object's whole-second time counts as the end of its second, so the
        # newest objects are "older than now" only a second later. Nothing is written after the
        # set-up: a threshold a second ahead deletes what waiting that second would.
        threshold = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
        collected.append(await repo.garbage_collect_async(threshold))

    yield "expire", expire
    yield "gc", gc
    # The older commits and the array's creation expire; the collector deletes all of them.
    want = sizes.history - sizes.keep + 1
    if len(expired) != want or collected[0].snapshots_deleted != want:
        raise AssertionError(f"expected {want} snapshots expired and deleted: {collected}")
    session = await repo.readonly_session_async(branch="main")
    arr = await zarr_async.open_array(store=session.store, path=ARRAY, mode="r")
    _check(await arr.getitem(slice(None)), expected)


_ENCODED: list[Any] = []  # zarr's bytes for the rewrite arrays' chunks, made once (sync)


async def rewrites(storage: ic.Storage, spec: int, sizes: Sizes) -> AsyncIterator[Step]:
    """``rewrite_manifests`` of many arrays of inline chunks, each on a freshly opened repo."""
    repo = await _new_repo(storage, spec)
    session = await repo.writable_session_async("main")
    names = [f"array{i:03}" for i in range(sizes.rewrite_arrays)]
    for name in names:
        await zarr_async.create_array(
            store=session.store, name=name, shape=(sizes.rewrite_chunks,), chunks=(1,), dtype="f8"
        )
    # Pre-encoded chunks through the store's own set: zarr's per-chunk Python is not the point.
    await asyncio.gather(
        *(
            session.store.set(f"{name}/c/{i}", _ENCODED[i % len(_ENCODED)])
            for name in names
            for i in range(sizes.rewrite_chunks)
        )
    )
    await session.commit_async("write arrays")
    for _ in range(sizes.rewrites):
        fresh = await ic.Repository.open_async(storage)
        yield "rewrite", partial(fresh.rewrite_manifests_async, "rewrite", branch="main")
    session = await repo.readonly_session_async(branch="main")
    arr = await zarr_async.open_array(store=session.store, path=names[-1], mode="r")
    _check(
        await arr.getitem(slice(None)), [i % len(_ENCODED) + 1 for i in range(sizes.rewrite_chunks)]
    )


SCENARIOS: dict[str, tuple[Scenario, tuple[str, ...]]] = {
    "commits": (commits, ("commit",)),
    "refs": (refs, ("branch", "tag")),
    "maintenance": (maintenance, ("expire", "gc")),
    "rewrites": (rewrites, ("rewrite",)),
}

# -- what a pass records ----------------------------------------------------------------------


class RequestCounter(logging.Handler):
    """Counts the storage request records (one per request) by request and object kind."""

    def __init__(self) -> None:
        super().__init__(level=TRACE)
        self.counts: Counter[tuple[str, str]] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        request, _, rest = record.getMessage().partition(", ")
        # "key: snapshots/ABC..., size_bytes: 3" -> "snapshots"; "prefix: chunks/" -> "chunks"
        where = rest.partition(": ")[2].partition(",")[0]
        kind = where.partition("/")[0] if request != "delete_objects" else "batch"
        self.counts[request, kind] += 1


@contextmanager
def counting_requests() -> Iterator[RequestCounter]:
    logger = logging.getLogger(STORAGE_LOGGER)
    counter = RequestCounter()
    level, propagate = logger.level, logger.propagate
    logger.setLevel(TRACE)
    logger.propagate = False  # counted, not printed
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(level)
        logger.propagate = propagate


@dataclass
class OpResult:
    """Everything measured for one operation in one configuration."""

    wall: list[float] = field(default_factory=list)
    loop_cpu: list[float] = field(default_factory=list)
    other_cpu: list[float] = field(default_factory=list)
    counted_ops: int = 0
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    profiled_ops: int = 0
    profile: cProfile.Profile = field(default_factory=cProfile.Profile)


async def _timed(
    scenario: Scenario, storage: ic.Storage, spec: int, sizes: Sizes, results: dict[str, OpResult]
) -> None:
    async for name, thunk in scenario(storage, spec, sizes):
        result = results[name]
        c0, t0, w0 = time.process_time(), time.thread_time(), time.perf_counter()
        await thunk()
        w1, t1, c1 = time.perf_counter(), time.thread_time(), time.process_time()
        result.wall.append(w1 - w0)
        result.loop_cpu.append(t1 - t0)
        result.other_cpu.append(max(0.0, (c1 - c0) - (t1 - t0)))


async def _counted(
    scenario: Scenario, storage: ic.Storage, spec: int, sizes: Sizes, results: dict[str, OpResult]
) -> None:
    with counting_requests() as counter:
        async for name, thunk in scenario(storage, spec, sizes):
            counter.counts.clear()  # the set-up's requests before this step are not counted
            await thunk()
            results[name].requests.update(counter.counts)
            results[name].counted_ops += 1
            counter.counts.clear()


async def _profiled(
    scenario: Scenario, storage: ic.Storage, spec: int, sizes: Sizes, results: dict[str, OpResult]
) -> None:
    async for name, thunk in scenario(storage, spec, sizes):
        profile = results[name].profile
        profile.enable()
        await thunk()
        profile.disable()
        results[name].profiled_ops += 1


# -- storage locations ------------------------------------------------------------------------


@dataclass
class Locations:
    """Makes new, empty storage locations of one kind."""

    kind: str
    workdir: Path
    endpoint: str = ""

    def new(self) -> ic.Storage:
        name = f"repo-{uuid.uuid4().hex[:10]}"
        if self.kind == "local":
            return local_filesystem_storage(str(self.workdir / name))
        from bench_s3 import _kwargs

        return s3_storage(**_kwargs(self.endpoint, "profiles", name))


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto S3 server process on 127.0.0.1 with a bucket ``profiles``; yields its URL."""
    import boto3  # type: ignore[import-untyped]
    from bench_s3 import _start_moto

    proc, endpoint = _start_moto()
    try:
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        ).create_bucket(Bucket="profiles")
        yield endpoint
    finally:
        proc.terminate()
        proc.wait()


def measure(
    locations: Locations, spec: int, scenario_name: str, sizes: Sizes, repeat: int
) -> dict[str, OpResult]:
    scenario, names = SCENARIOS[scenario_name]
    results = {name: OpResult() for name in names}
    for run in [_timed] * repeat + [_counted, _profiled]:
        asyncio.run(run(scenario, locations.new(), spec, sizes, results))
    return results


# -- where the profiled time goes -------------------------------------------------------------

STORAGE_BUCKET = "storage layer (pyicechunk.storage, obstore)"
# Buckets of own time, first match wins: (label, substrings of "file:line(function)").
BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    (
        "waiting (loop idle: storage, worker threads)",
        ("select.epoll", "select.poll", "select.select", "_thread.lock", "time.sleep"),
    ),
    (
        "file I/O on the loop thread",
        ("posix.", "io.open", "_io.", "mmap"),
    ),
    # before encode/decode: zarr's own JSON and dtype parsing is zarr's
    ("zarr", ("zarr/", "numcodecs")),
    (
        "encode/decode (format, compression, JSON, hashing)",
        (
            "pyicechunk/format/",
            "zstd",
            "zstandard",
            "json/",
            "_json",
            "msgpack",
            "flatbuffers",
            "hashlib",
            "_blake2",
            "_sha2",
            "binascii",
            "base64",
            "crc32",
        ),
    ),
    ("numpy", ("numpy/", "numpy.")),
    (
        # handing file I/O to the worker threads and being woken when it is done
        "thread hand-offs (executor, wake-ups)",
        (
            "concurrent/futures",
            "threading.py",
            "_queue.",
            "_socket.socket",
            "call_soon_threadsafe",
            "_write_to_self",
            "_chain_future",
            "wrap_future",
            "_copy_future_state",
        ),
    ),
    ("asyncio machinery", ("asyncio/", "_asyncio", "selectors.py", "contextvars")),
    # GetResult: reading a response's body (part of the get request, not one of its own)
    (STORAGE_BUCKET, ("pyicechunk/storage/", "obstore", "GetResult")),
    ("pyicechunk (other)", ("pyicechunk/",)),
]
OTHER = "other (stdlib, typing, copies, ...)"


def _label(key: tuple[str, int, str]) -> str:
    filename, line, function = key
    if filename == "~":
        return function
    # site-packages/zarr/x.py -> zarr/x.py; .../lib/python3.11/asyncio/x.py -> asyncio/x.py
    filename = re.sub(r"^.*(site-packages/|/src/|/lib/python3\.\d+/)", "", filename)
    return f"{filename}:{line}({function})"


# obstore's request functions (Rust), as cProfile names them: one call is one S3 request (a
# list of keys given to delete_async is one bulk request per thousand keys; a listing is one
# collect_async, one request per thousand keys listed).
_OBSTORE_CALL = re.compile(r"<(\w+)_async>|<method '(collect)_async' of '\S*ListStream' objects>")


def bucket(label: str) -> str:
    if _OBSTORE_CALL.fullmatch(label):
        return STORAGE_BUCKET
    for name, needles in BUCKETS:
        if any(n in label for n in needles):
            return name
    return OTHER


@dataclass
class Breakdown:
    """A profile's own time: in total, per bucket, and its biggest functions."""

    total: float  # seconds
    buckets: list[tuple[str, float, list[str]]]  # name, seconds, its two biggest functions
    top: list[tuple[str, str, float, int]]  # label, bucket, own seconds, calls
    obstore_calls: Counter[str]  # request function -> calls: the S3 requests really made


def breakdown(profile: cProfile.Profile) -> Breakdown:
    stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    rows = sorted(
        ((_label(key), own, calls) for key, (_, calls, own, _, _) in stats.items()),
        key=lambda row: -row[1],
    )
    per_bucket: dict[str, float] = defaultdict(float)
    biggest: dict[str, list[str]] = defaultdict(list)
    obstore_calls: Counter[str] = Counter()
    for label, own, calls in rows:
        if found := _OBSTORE_CALL.fullmatch(label):
            obstore_calls[found.group(1) or "list"] += calls
        name = bucket(label)
        per_bucket[name] += own
        if len(biggest[name]) < 2:
            biggest[name].append(label)
    return Breakdown(
        sum(per_bucket.values()),
        sorted(((n, t, biggest[n]) for n, t in per_bucket.items()), key=lambda b: -b[1]),
        [(label, bucket(label), own, calls) for label, own, calls in rows[:TOP_FUNCTIONS]],
        obstore_calls,
    )


# -- the report -------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _obstore_calls(where: Breakdown, per_op: int) -> str:
    """The S3 requests obstore really made, nested ones included (the request log leaves out a
    request made inside another, such as the HEADs of a bulk delete); empty off S3."""
    return ", ".join(f"{name} {n / per_op:g}" for name, n in sorted(where.obstore_calls.items()))


def _obstore_line(where: Breakdown, per_op: int) -> list[str]:
    calls = _obstore_calls(where, per_op)
    return [f"obstore calls per operation (profiled pass): {calls}.", ""] if calls else []


def _short(bucket_name: str) -> str:
    return bucket_name.split(" (")[0]


def _requests_per_op(result: OpResult) -> tuple[str, str]:
    """(by request kind, by request and object kind), averaged over the counted operations."""
    n = max(result.counted_ops, 1)
    by_request: Counter[str] = Counter()
    for (request, _), count in result.requests.items():
        by_request[request] += count
    short = ", ".join(f"{r} {c / n:g}" for r, c in sorted(by_request.items())) or "none"
    detail = (
        ", ".join(f"{r} {k} {c / n:g}" for (r, k), c in sorted(result.requests.items())) or "none"
    )
    return short, detail


@dataclass(frozen=True)
class Config:
    op: str
    spec: int
    storage: str


def report(results: dict[Config, OpResult], sizes: Sizes, repeat: int, started: float) -> str:
    lines = [
        "# pyicechunk: where the time of small operations goes",
        "",
        f"pyicechunk {ic.__version__}, Python {sys.version.split()[0]}; {repeat} timed pass(es) "
        f"per configuration; sizes: {sizes}. Run took {time.monotonic() - started:.0f} s.",
        "",
        "Median wall time per operation over the timed passes; CPU = loop thread / other threads "
        "(process CPU minus the loop's); requests per operation as the request log counts them "
        "(counted pass), and on S3 the requests obstore made, nested ones included (profiled "
        "pass); the biggest buckets of the profiled pass's own time (share of profiled time).",
        "",
        "| operation | spec | storage | median | min | n | CPU loop / other | requests per op "
        "| S3 requests (obstore) | biggest buckets |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    sections = []
    for config, result in results.items():
        where = breakdown(result.profile)
        total = where.total or 1e-12
        short, detail = _requests_per_op(result)
        per_op = max(result.profiled_ops, 1)
        top_buckets = "; ".join(
            f"{_short(name)} {own / total:.0%}" for name, own, _ in where.buckets[:3]
        )
        lines.append(
            f"| {config.op} | {config.spec} | {config.storage} | "
            f"{_ms(median(result.wall))} | {_ms(min(result.wall))} | {len(result.wall)} | "
            f"{_ms(median(result.loop_cpu))} / {_ms(median(result.other_cpu))} | "
            f"{short} | {_obstore_calls(where, per_op) or '—'} | {top_buckets} |"
        )
        sections += [
            "",
            f"## {config.op} · spec {config.spec} · {config.storage}",
            "",
            f"Requests per operation: {detail}.",
            "",
            *_obstore_line(where, per_op),
            f"Profile: {result.profiled_ops} operation(s), {_ms(where.total / per_op)} of own time "
            "per operation on the loop thread (under cProfile, which inflates Python-heavy code).",
            "",
            "| bucket | per op | share | biggest in it |",
            "|---|---|---|---|",
            *(
                f"| {name} | {_ms(own / per_op)} | {own / total:.0%} | "
                + ", ".join(f"`{label}`" for label in labels)
                + " |"
                for name, own, labels in where.buckets
            ),
            "",
            "| function (top by own time) | bucket | own per op | calls per op |",
            "|---|---|---|---|",
            *(
                f"| `{label}` | {_short(name)} | {_ms(own / per_op)} | {calls / per_op:g} |"
                for label, name, own, calls in where.top
            ),
        ]
    return "\n".join(lines + sections) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed passes per configuration")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one timed pass")
    parser.add_argument("--storage", default="local,s3", help="comma-separated: local, s3")
    parser.add_argument("--spec", default="1,2", help="comma-separated spec versions")
    parser.add_argument("--ops", default=",".join(OPS), help=f"comma-separated, of {OPS}")
    parser.add_argument("--out", type=Path, help="also write the report here")
    parser.add_argument("--workdir", type=Path, help="local repositories go here (a temp dir)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    repeat = 1 if args.quick and args.repeat == 3 else args.repeat
    storages = args.storage.split(",")
    specs = [int(s) for s in args.spec.split(",")]
    wanted = args.ops.split(",")
    unknown = set(wanted) - set(OPS) or set(storages) - {"local", "s3"} or set(specs) - {1, 2}
    if unknown:
        parser.error(f"unknown operation, storage or spec: {sorted(map(str, unknown))}")
    started = time.monotonic()
    _ENCODED[:] = _encoded_chunks()[:16]
    workdir = Path(tempfile.mkdtemp(prefix="profile-ops-", dir=args.workdir))
    results: dict[Config, OpResult] = {}
    try:
        for kind in storages:
            with moto_server() if kind == "s3" else _nothing() as endpoint:
                locations = Locations(kind, workdir, endpoint or "")
                for spec in specs:
                    for scenario_name, (_, names) in SCENARIOS.items():
                        if not set(names) & set(wanted):
                            continue
                        print(f"{kind} spec {spec}: {scenario_name}", file=sys.stderr, flush=True)
                        measured = measure(locations, spec, scenario_name, sizes, repeat)
                        for name in names:
                            if name in wanted:
                                results[Config(name, spec, kind)] = measured[name]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = report(results, sizes, repeat, started)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


if __name__ == "__main__":
    sys.exit(main())
