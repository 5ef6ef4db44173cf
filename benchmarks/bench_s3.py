"""S3 benchmarks on a local S3 server (moto): pyicechunk against icechunk 1.1.21, side by side.

Cases (each measurement a fresh process, timed after imports and data generation):

- ``write``: create a repository, write a 256 MiB float64 array in 1 MiB chunks with zarr
  (zarr's default codecs), commit;
- ``read``: open the repository ``write`` made and read the whole array (checked);
- ``open_one``: open a repository whose array has 100,000 chunks and read one chunk (checked).
  That repository is built once per implementation, untimed, with the implementation's own
  session through zarr; its chunks are small (4 int32 values), so both implementations store
  them inline in the manifest: what is measured is opening the repository, fetching and
  decoding a 100,000-ref manifest and finding one chunk.

The implementations alternate, in an order that flips from one repetition to the next; the
table gives medians and ratios pyicechunk / icechunk.

Usage::

    python benchmarks/bench_s3.py               # 3 repetitions
    python benchmarks/bench_s3.py --repeat 5 --mib 64
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from typing import Any

IMPLS = ("pyicechunk", "icechunk")
CASES = ("write", "read", "open_one")
TARGETS = {"write": 1.2, "read": 1.2, "open_one": 2.0}
CHUNK = 131072  # float64 values per 1 MiB chunk
N_SMALL = 100_000
SMALL_CHUNK = 4
SEED = 42


def _kwargs(endpoint: str, bucket: str, prefix: str) -> dict[str, Any]:
    return {
        "bucket": bucket,
        "prefix": prefix,
        "endpoint_url": endpoint,
        "allow_http": True,
        "force_path_style": True,
        "access_key_id": "x",
        "secret_access_key": "x",
        "region": "us-east-1",
    }


# -- worker side (one measurement per process) ------------------------------------------------


def _worker(impl: str, case: str, endpoint: str, bucket: str, prefix: str, mib: int) -> None:
    import importlib

    import numpy as np
    import zarr

    ic = importlib.import_module(impl)
    # pyicechunk exports its storage constructors from pyicechunk.storage
    constructors = importlib.import_module("pyicechunk.storage") if impl == "pyicechunk" else ic
    storage = constructors.s3_storage(**_kwargs(endpoint, bucket, prefix))
    n = mib * CHUNK
    out: dict[str, float] = {}
    if case == "write":
        data = np.random.default_rng(SEED).standard_normal(n)
        t0 = time.perf_counter()
        repo = ic.Repository.create(storage)
        session = repo.writable_session("main")
        arr = zarr.create_array(session.store, name="a", shape=(n,), chunks=(CHUNK,), dtype="f8")
        arr[:] = data
        session.commit("write")
        out["seconds"] = time.perf_counter() - t0
    elif case == "read":
        expected = np.random.default_rng(SEED).standard_normal(n)
        t0 = time.perf_counter()
        repo = ic.Repository.open(storage)
        got = zarr.open_array(repo.readonly_session("main").store, path="a", mode="r")[:]
        out["seconds"] = time.perf_counter() - t0
        assert np.array_equal(got, expected), "read back different data"
    elif case == "build_small":
        t0 = time.perf_counter()
        repo = ic.Repository.create(storage)
        session = repo.writable_session("main")
        arr = zarr.create_array(
            session.store,
            name="small",
            shape=(N_SMALL * SMALL_CHUNK,),
            chunks=(SMALL_CHUNK,),
            dtype="i4",
        )
        arr[:] = np.arange(1, N_SMALL * SMALL_CHUNK + 1, dtype="i4")
        session.commit("build")
        out["seconds"] = time.perf_counter() - t0
    elif case == "open_one":
        i = N_SMALL // 2 + 7
        t0 = time.perf_counter()
        repo = ic.Repository.open(storage)
        arr = zarr.open_array(repo.readonly_session("main").store, path="small", mode="r")
        got = arr[i * SMALL_CHUNK : (i + 1) * SMALL_CHUNK]
        out["seconds"] = time.perf_counter() - t0
        assert got.tolist() == list(range(i * SMALL_CHUNK + 1, (i + 1) * SMALL_CHUNK + 1))
    else:
        raise SystemExit(f"unknown case {case}")
    print(json.dumps(out))


# -- driver side ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).close()
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("moto did not start")


def _run(impl: str, case: str, endpoint: str, bucket: str, prefix: str, mib: int) -> float:
    cmd = [sys.executable, __file__, "--worker", impl, case, endpoint, bucket, prefix, str(mib)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{impl} {case} failed:\n{done.stderr[-3000:]}")
    seconds: float = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
    return seconds


def _drop_prefix(client: Any, bucket: str, prefix: str) -> None:
    """Free the server's memory between repetitions."""
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix + "/"):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mib", type=int, default=256)
    args = parser.parse_args()

    import boto3

    proc, endpoint = _start_moto()
    try:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        bucket = "bench"
        client.create_bucket(Bucket=bucket)
        for impl in IMPLS:
            built = _run(impl, "build_small", endpoint, bucket, f"small-{impl}", args.mib)
            print(f"built the {N_SMALL}-chunk array with {impl} in {built:.1f} s", flush=True)
        times: dict[tuple[str, str], list[float]] = {(i, c): [] for i in IMPLS for c in CASES}
        for rep in range(args.repeat):
            order = IMPLS if rep % 2 == 0 else IMPLS[::-1]
            for impl in order:
                prefix = f"big-{impl}-{uuid.uuid4().hex[:8]}"
                for case in ("write", "read"):
                    times[impl, case].append(_run(impl, case, endpoint, bucket, prefix, args.mib))
                _drop_prefix(client, bucket, prefix)
            for impl in order:
                times[impl, "open_one"].append(
                    _run(impl, "open_one", endpoint, bucket, f"small-{impl}", args.mib)
                )
            print(f"repetition {rep + 1}/{args.repeat} done", flush=True)
    finally:
        proc.terminate()
        proc.wait()

    labels = {
        "write": f"(a) write + commit {args.mib} MiB, 1 MiB chunks",
        "read": f"(b) cold read {args.mib} MiB",
        "open_one": f"(c) cold open + read 1 chunk of {N_SMALL} chunks",
    }
    print(f"\nS3 (moto on 127.0.0.1), medians of {args.repeat}, seconds\n")
    print("| case | pyicechunk | icechunk 1.1.21 | ratio | target |")
    print("|---|---|---|---|---|")
    for case in CASES:
        ours = statistics.median(times["pyicechunk", case])
        ref = statistics.median(times["icechunk", case])
        print(
            f"| {labels[case]} | {ours:.3f} | {ref:.3f} | {ours / ref:.2f} | <= {TARGETS[case]} |"
        )
    print("\nraw:", json.dumps({f"{i}/{c}": v for (i, c), v in times.items()}))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _impl, _case, _endpoint, _bucket, _prefix, _mib = sys.argv[2:8]
        _worker(_impl, _case, _endpoint, _bucket, _prefix, int(_mib))
    else:
        main()
