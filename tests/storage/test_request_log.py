"""One TRACE record per storage request, on every backend, through ``ICECHUNK_LOG``.

Each scenario runs in a fresh interpreter with ``ICECHUNK_LOG`` set, as a user would, and the
test counts the ``pyicechunk.storage`` records on its stderr: every request kind the backends
make (get, ranged get, versioned get, put, both conditional puts, head, exists, list, delete,
bulk delete) logs exactly one (a batch of puts: one per object), requests made inside another
are not logged twice, and no credential reaches the output. A repository served over HTTP
logs its reads the same way.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import pyicechunk as ic

SECRET = "s3cr3t-never-in-a-log-5d1e"

SCRIPT = r"""
import asyncio, json, sys
import numpy as np
import zarr
import pyicechunk as ic
from pyicechunk.storage.byte_range import RangeByteRequest

where = json.loads(sys.argv[1])
def storage(prefix):
    if where["kind"] == "local":
        return ic.local_filesystem_storage(where["path"] + "/" + prefix)
    if where["kind"] == "memory":
        return ic.in_memory_storage()
    return ic.s3_storage(prefix=prefix, **where["s3"])

async def requests(backend):
    await backend.put("a/one", b"abcdef")
    await backend.put_many([("a/m1", b"12"), ("a/m2", b"345")])
    await backend.get("a/one")
    await backend.get("a/one", RangeByteRequest(1, 3))
    _, version = await backend.get_versioned("a/one")
    await backend.head("a/one")
    await backend.exists("a/one")
    await backend.put_if_absent("a/two", b"xy")
    await backend.put_if_version("a/one", b"ghij", version)
    await backend.list("a/")
    await backend.delete("a/one")
    await backend.delete_many(["a/two", "a/three"])

print("=== requests", file=sys.stderr, flush=True)
asyncio.run(requests(storage("raw").backend))
print("=== repository", file=sys.stderr, flush=True)
repo = ic.Repository.create(storage("repo"))
session = repo.writable_session("main")
array = zarr.create_array(session.store, name="x", shape=(4096,), chunks=(1024,), dtype="f8")
array[:] = np.random.default_rng(0).random(4096)  # four chunks, too big to be inline
session.commit("first")
repo.create_tag("v1", repo.lookup_branch("main"))
read = repo.readonly_session("main")
assert zarr.open_array(read.store, path="x", mode="r")[9] == array[9]
"""

# The records the ``requests`` part must log, by the word their message starts with.
EXPECTED = {
    "put_object": 3,  # put, and put_many's two objects
    "get_object": 3,  # plain, ranged, versioned
    "head_object": 2,  # head, and exists (which object stores answer with a head)
    "put_object_conditional": 2,
    "list_objects": 1,
    "delete_object": 1,
    "delete_objects": 1,  # not the head requests an object store counts the keys with
}
_RECORD = re.compile(r"^  \S+ TRACE pyicechunk\.storage: (\w+), ")


def _run(where: dict[str, Any], log: str) -> str:
    env = {**os.environ, "ICECHUNK_LOG": log, "NO_COLOR": "1"}
    env.pop("ICECHUNK_LOG_TO_STDOUT", None)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(where)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert SECRET not in done.stderr + done.stdout
    return done.stderr


def _kinds(text: str) -> Counter[str]:
    return Counter(m.group(1) for line in text.splitlines() if (m := _RECORD.match(line)))


def _parts(stderr: str) -> tuple[str, str]:
    _, rest = stderr.split("=== requests\n", 1)
    requests, repository = rest.split("=== repository\n", 1)
    return requests, repository


def _where(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    if kind != "s3":
        return {"kind": kind, "path": str(tmp_path)}
    server = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    return {
        "kind": "s3",
        "s3": {
            "bucket": bucket,
            "endpoint_url": server.endpoint_url,
            "allow_http": True,
            "force_path_style": True,
            "region": server.region,
            "access_key_id": "AKIAREQUESTLOG",
            "secret_access_key": SECRET,
        },
    }


@pytest.mark.parametrize("kind", ["local", "memory", "s3"])
def test_one_trace_record_per_request(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    requests, repository = _parts(_run(_where(kind, tmp_path, request), "trace"))
    assert dict(_kinds(requests)) == EXPECTED
    # A real workflow: its reads, writes and ref updates all show.
    seen = _kinds(repository)
    assert seen["get_object"] >= 2 and seen["put_object_conditional"] >= 2, seen
    chunk_puts = re.findall(r"put_object, key: chunks/\w+, size_bytes: \d+", repository)
    assert len(chunk_puts) == 4 and seen["put_object"] >= 4 + 3, seen


def test_records_name_keys_sizes_and_ranges(tmp_path: Path) -> None:
    requests, _ = _parts(_run({"kind": "local", "path": str(tmp_path)}, "icechunk_storage=trace"))
    lines = [line.split(": ", 1)[1] for line in requests.splitlines() if _RECORD.match(line)]
    assert lines == [
        "put_object, key: a/one, size_bytes: 6",
        "put_object, key: a/m1, size_bytes: 2",
        "put_object, key: a/m2, size_bytes: 3",
        "get_object, key: a/one",
        "get_object, key: a/one, range: 1..3",
        "get_object, key: a/one",
        "head_object, key: a/one",
        "head_object, key: a/one",
        "put_object_conditional, key: a/two, size_bytes: 2, if: absent",
        "put_object_conditional, key: a/one, size_bytes: 4, if: version matches",
        "list_objects, prefix: a/",
        "delete_object, key: a/one",
        "delete_objects, count: 2",
    ]


def test_not_at_debug(tmp_path: Path) -> None:
    stderr = _run({"kind": "local", "path": str(tmp_path)}, "debug")
    assert not _kinds(stderr)
    assert "DEBUG pyicechunk.repository" in stderr


HTTP_SCRIPT = r"""
import sys
import pyicechunk as ic
repo = ic.Repository.open(ic.http_storage(sys.argv[1]))
assert repo.list_branches() == {"main"}
"""


def test_http_requests_are_logged_too(tmp_path: Path) -> None:
    ic.Repository.create(ic.local_filesystem_storage(str(tmp_path / "repo")))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/repo"
        env = {**os.environ, "ICECHUNK_LOG": "trace", "NO_COLOR": "1"}
        done = subprocess.run(
            [sys.executable, "-c", HTTP_SCRIPT, url],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert done.returncode == 0, done.stderr[-3000:]
    seen = _kinds(done.stderr)
    assert seen["get_object"] >= 1 and set(seen) <= {"get_object", "head_object"}, seen
    assert "get_object, key: repo" in done.stderr
