"""Dask writes of an xarray Dataset: pyicechunk against icechunk 1.1.21, side by side.

Writes a 256 MiB float64 variable in 1 MiB chunks (a (4096, 8192) array in (128, 1024) chunks,
256 chunks) to a fresh local-filesystem repository and commits it, with two schedulers:

- ``threads``: dask's threaded scheduler; the data is an in-memory numpy array wrapped with
  ``dask.array.from_array`` (generated before the clock starts);
- ``cluster``: a ``distributed.LocalCluster`` of 2 worker processes, 1 thread each, started
  before the clock starts; the data is generated on the workers by ``dask.array.random``
  (the generation is timed, equally for both implementations).

How each implementation writes:

- pyicechunk: ``pyicechunk.xarray.to_icechunk(ds, session)`` then ``session.commit``.
- icechunk 1.1.21: its ``to_icechunk`` fails on the installed xarray (2026.9:
  "ZarrStore.open_group() got an unexpected keyword argument 'synchronizer'"), so the same steps
  are spelled out with its public API: ``fork = session.fork()``,
  ``ds.to_zarr(fork.store, compute=False)`` for the metadata, ``icechunk.dask.store_dask`` for
  the chunks, ``session.merge`` and ``commit``.

Every measurement is a fresh process, started after ``os.sync()`` so that none pays for the
write-back of another's data; the implementations alternate, in an order that flips
from one repetition to the next; medians of the repetitions are reported with ratios.

Usage::

    python benchmarks/bench_dask.py               # 256 MiB, 3 repetitions
    python benchmarks/bench_dask.py --repeat 5 --mib 64
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

IMPLS = ("pyicechunk", "icechunk")
MODES = ("threads", "cluster")
CHUNK_ROWS, COLS = 128, 1024 * 8  # a chunk is (128, 1024) float64 = 1 MiB
CHUNK_COLS = 1024
TARGET = 1.2
SEED = 42


def _source(mode: str, mib: int) -> Any:
    import dask.array as da
    import numpy as np

    rows = mib * 1024 * 1024 // (8 * COLS)
    chunks = (CHUNK_ROWS, CHUNK_COLS)
    if mode == "threads":
        values = np.random.default_rng(SEED).standard_normal((rows, COLS))
        return da.from_array(values, chunks=chunks)
    return da.random.default_rng(SEED).standard_normal((rows, COLS), chunks=chunks)


def _write_ours(ds: Any, path: str) -> tuple[float, float]:
    import pyicechunk as ic
    from pyicechunk.xarray import to_icechunk

    repo = ic.Repository.create(ic.local_filesystem_storage(path))
    session = repo.writable_session("main")
    start = time.perf_counter()
    to_icechunk(ds, session, encoding={"v": {"chunks": (CHUNK_ROWS, CHUNK_COLS)}})
    written = time.perf_counter()
    session.commit("write")
    return written - start, time.perf_counter() - written


def _write_reference(ds: Any, path: str) -> tuple[float, float]:
    import icechunk
    import zarr
    from icechunk.dask import store_dask

    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(path))
    session = repo.writable_session("main")
    start = time.perf_counter()
    fork = session.fork()
    ds.to_zarr(
        fork.store,
        mode="w-",
        consolidated=False,
        zarr_format=3,
        compute=False,
        encoding={"v": {"chunks": (CHUNK_ROWS, CHUNK_COLS)}},
    )
    target = zarr.open_array(fork.store, path="v")
    merged = store_dask(sources=[ds["v"].data], targets=[target])
    session.merge(merged)
    written = time.perf_counter()
    session.commit("write")
    return written - start, time.perf_counter() - written


def _check(impl: str, path: str, ds: Any) -> None:
    import numpy as np

    if impl == "pyicechunk":
        import pyicechunk as lib
    else:
        import icechunk as lib  # type: ignore[no-redef]
    import zarr

    repo = lib.Repository.open(lib.local_filesystem_storage(path))
    arr = zarr.open_array(repo.readonly_session("main").store, path="v", mode="r")
    last = tuple(slice(n - c, n) for n, c in zip(arr.shape, (CHUNK_ROWS, CHUNK_COLS), strict=True))
    for block in ((slice(0, CHUNK_ROWS), slice(0, CHUNK_COLS)), last):
        if not np.array_equal(arr[block], ds["v"].data[block].compute()):
            raise SystemExit(f"{impl}: data read back differs from the source at {block}")


def measure_one(impl: str, mode: str, mib: int, path: str) -> dict[str, float]:
    """Run one measurement in this (fresh) process and return its phase timings."""
    import dask
    import xarray as xr

    cluster = client = None
    if mode == "cluster":
        from distributed import Client, LocalCluster

        cluster = LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            scheduler_kwargs={"dashboard": False},
        )
        client = Client(cluster)
    else:
        dask.config.set(scheduler="threads")
    try:
        ds = xr.Dataset({"v": (("y", "x"), _source(mode, mib))})
        write = _write_ours if impl == "pyicechunk" else _write_reference
        write_s, commit_s = write(ds, path)
        _check(impl, path, ds)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    return {"write": write_s, "commit": commit_s, "total": write_s + commit_s}


def _run_child(impl: str, mode: str, mib: int, workdir: Path) -> dict[str, float]:
    path = workdir / f"{impl}-{mode}"
    shutil.rmtree(path, ignore_errors=True)
    # Write back what the previous measurement left dirty (icechunk never syncs), so that
    # measurement's I/O is not charged to this one.
    os.sync()
    cmd = [sys.executable, __file__, "--one", impl, mode, str(mib), str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    shutil.rmtree(path, ignore_errors=True)
    if done.returncode != 0:
        raise SystemExit(f"{impl}/{mode} failed:\n{done.stderr[-4000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _table(
    results: dict[tuple[str, str], list[dict[str, float]]], modes: list[str], mib: int, repeat: int
) -> str:
    lines = [
        f"Dask write of a {mib} MiB float64 Dataset variable, 1 MiB chunks, + commit "
        f"(local filesystem; medians of {repeat}; seconds)",
        "",
        "| scheduler | phase | pyicechunk | icechunk 1.1.21 | ratio ours/ref | target |",
        "|---|---|---|---|---|---|",
    ]
    for mode in modes:
        for phase in ("write", "commit", "total"):
            ours = statistics.median(r[phase] for r in results[("pyicechunk", mode)])
            ref = statistics.median(r[phase] for r in results[("icechunk", mode)])
            target = f"<= {TARGET}" if phase == "total" else ""
            ok = "" if phase != "total" else (" ok" if ours / ref <= TARGET else " MISSED")
            lines.append(
                f"| {mode} | {phase} | {ours:.3f} | {ref:.3f} | {ours / ref:.2f}{ok} | {target} |"
            )
    lines += [
        "",
        "pyicechunk: `pyicechunk.xarray.to_icechunk` + commit. icechunk 1.1.21: its `to_icechunk`",
        "fails on xarray 2026.9 (`ZarrStore.open_group()` got an unexpected keyword argument",
        "'synchronizer'), so it runs the equivalent steps: fork, `ds.to_zarr(fork.store,",
        "compute=False)`, `icechunk.dask.store_dask`, `session.merge`, commit.",
        "threads: in-memory numpy source (`from_array`); cluster: LocalCluster, 2 processes x 1",
        "thread, data generated on the workers (`dask.array.random`), cluster start-up untimed.",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    if argv[:1] == ["--one"]:
        impl, mode, mib, path = argv[1], argv[2], int(argv[3]), argv[4]
        print(json.dumps(measure_one(impl, mode, mib, path)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--mode", default=",".join(MODES))
    args = parser.parse_args(argv)
    modes = [m for m in args.mode.split(",") if m]
    results: dict[tuple[str, str], list[dict[str, float]]] = {
        (impl, mode): [] for impl in IMPLS for mode in MODES
    }
    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        for rep in range(args.repeat):
            order = IMPLS if rep % 2 == 0 else IMPLS[::-1]
            for mode in modes:
                for impl in order:
                    timing = _run_child(impl, mode, args.mib, Path(tmp))
                    results[(impl, mode)].append(timing)
                    print(f"rep {rep + 1} {mode:8s} {impl:10s} {timing['total']:.3f} s", flush=True)
    print()
    print(_table(results, modes, args.mib, args.repeat))


if __name__ == "__main__":
    main(sys.argv[1:])
