"""Manifest preloading: which manifests a session reads as it opens, for a given config.

A repository of six arrays (one split into three manifests), in spec 1 and in spec 2, is served
by a web server on 127.0.0.1 that records every GET; pyicechunk and icechunk 2.3.0 open it with
``http_storage`` and a preload config, open a read-only session, and the manifests fetched (in
the background) before anything is read are compared: the same manifests for every config, and
the ones the reference's rules pick (path order, ``max_arrays_to_scan`` arrays, greedy
``max_total_refs``, the ``preload_if`` condition on path and reference count).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import zarr
from oracle import InProcess, Oracle

import pyicechunk as ic
from pyicechunk.storage.byte_range import ByteRequest
from pyicechunk.storage.local import LocalFileSystemBackend


class _Recorder(BaseHTTPRequestHandler):
    """Static files under ``root`` with single byte ranges; each GET path is appended to
    ``gets`` (icechunk 2.3.0 needs ranges, which http.server's own handler ignores)."""

    root: Path
    gets: list[str]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, body: bool) -> None:
        path = (self.root / self.path.lstrip("/")).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        first = int(ranged[1]) if ranged else 0
        last = min(int(ranged[2]), len(data) - 1) if ranged and ranged[2] else len(data) - 1
        self.send_response(206 if ranged else 200)
        if ranged:
            self.send_header("Content-Range", f"bytes {first}-{last}/{len(data)}")
        self.send_header("Content-Length", str(last + 1 - first))
        self.end_headers()
        if body:
            self.wfile.write(data[first : last + 1])

    def do_GET(self) -> None:
        self.gets.append(self.path)
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)


# Arrays in the snapshot's path order, with their chunk counts; /temp is split in three
# manifests of 2 references, the others have one manifest each.
ARRAYS = {"/group/x": 2, "/lat": 3, "/lon": 4, "/temp": 6, "/time": 1001, "/w": 1}


def _publish(root: Path, spec: int) -> dict[str, str]:
    """Write the repository ``repo<spec>`` under ``root``; return manifest id -> array path."""
    split = ic.ManifestSplittingConfig.from_dict(
        {ic.ManifestSplitCondition.name_matches("^temp$"): {ic.ManifestSplitDimCondition.Any(): 2}}
    )
    config = ic.RepositoryConfig(manifest=ic.ManifestConfig(splitting=split))
    repo = ic.Repository.create(
        ic.local_filesystem_storage(str(root / f"repo{spec}")), config=config, spec_version=spec
    )
    session = repo.writable_session("main")
    for path, n in ARRAYS.items():
        arr = zarr.create_array(session.store, name=path[1:], shape=(n,), chunks=(1,), dtype="i2")
        arr[:] = np.arange(1, n + 1, dtype="i2")  # no chunk is all fill value
    doc = repo.inspect_snapshot(session.commit("arrays"))
    owner = {
        ref["id"]: node["path"]
        for node in doc["nodes"]
        if node["node_type"] == "array"
        for ref in node["manifest_refs"]
    }
    assert {p: list(owner.values()).count(p) for p in ARRAYS} == {
        **dict.fromkeys(ARRAYS, 1),
        "/temp": 3,
    }
    return owner


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, list[str], dict[int, dict[str, str]]]]:
    """The URL a loopback server serves ``repo1`` and ``repo2`` (spec 1 and 2) under, the
    server's GET log, and per spec version manifest id -> array path."""
    root = tmp_path_factory.mktemp("www").resolve()
    owners = {spec: _publish(root, spec) for spec in (1, 2)}
    gets: list[str] = []
    handler = type("Handler", (_Recorder,), {"root": root, "gets": gets})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", gets, owners
    server.shutdown()
    server.server_close()


OPEN = """
preload = icechunk.ManifestPreloadConfig(**{k: eval(v) for k, v in preload.items()})
repo = icechunk.Repository.open(
    icechunk.http_storage(url),
    config=icechunk.RepositoryConfig(manifest=icechunk.ManifestConfig(preload=preload)),
)
session = repo.readonly_session(branch="main")
"""

C = "icechunk.ManifestPreloadCondition"

# config (as the ManifestPreloadConfig keywords, in Python source) -> arrays whose manifests
# the reference preloads (an array split in n manifests appears n times).
CASES = {
    # Coordinate-like names with at most 1000 references: /time has 1001.
    "default": ({}, ["/group/x", "/lat", "/lon"]),
    "false": ({"preload_if": f"{C}.false()"}, []),
    "no-refs": ({"max_total_refs": "0"}, []),
    # Greedy in path order: 2+3+4+2 = 11; the next /temp parts and /time do not fit, /w does.
    "budget": (
        {"preload_if": f"{C}.true()", "max_total_refs": "12"},
        ["/group/x", "/lat", "/lon", "/temp", "/w"],
    ),
    "two-arrays": ({"preload_if": f"{C}.true()", "max_arrays_to_scan": "2"}, ["/group/x", "/lat"]),
    "conditions": (
        {
            "preload_if": f"{C}.name_matches('^t') & {C}.num_refs(2, 3)"
            f" | {C}.path_matches('^/group/')"
        },
        ["/group/x", "/temp", "/temp", "/temp"],
    ),
    # num_refs's upper bound is exclusive: /lon's 4 references are out.
    "bounds": ({"preload_if": f"{C}.num_refs(3, 4)"}, ["/lat"]),
}


def _manifest_gets(gets: list[str], since: int) -> list[str]:
    """The manifest ids fetched after ``gets[since]``, once the background reads are done."""
    seen, quiet_since = -1, time.monotonic()
    deadline = quiet_since + 10
    while time.monotonic() < deadline:
        if len(gets) != seen:
            seen, quiet_since = len(gets), time.monotonic()
        elif time.monotonic() - quiet_since > 0.3:
            break
        time.sleep(0.02)
    return [g.rsplit("/", 1)[-1] for g in gets[since:] if "/manifests/" in g]


# Every config on spec 2; on spec 1 (whose snapshots list the manifests' sizes the same way),
# the default, the budget and the conditions.
SPEC_CASES = [(case, 2) for case in CASES] + [(c, 1) for c in ("default", "budget", "conditions")]


@pytest.mark.parametrize(("case", "spec"), SPEC_CASES, ids=[f"{c}-spec{v}" for c, v in SPEC_CASES])
def test_the_manifests_read_at_session_open(
    served: tuple[str, list[str], dict[int, dict[str, str]]],
    pyic: InProcess,
    ic2: Oracle,
    case: str,
    spec: int,
) -> None:
    base, gets, owners = served
    url, owner = f"{base}/repo{spec}", owners[spec]
    preload, expected = CASES[case]
    read = {}
    for impl in (pyic, ic2):
        start = len(gets)
        impl.run(OPEN, url=url, preload=preload)
        read[impl.name] = _manifest_gets(gets, start)
    assert sorted(read["pyicechunk"]) == sorted(read["icechunk2"])
    # Each manifest once, and exactly those of the expected arrays.
    assert len(set(read["pyicechunk"])) == len(read["pyicechunk"])
    assert sorted(owner[m] for m in read["pyicechunk"]) == expected
    # The preloaded manifests serve the session's reads: reading the arrays fetches the others.
    start = len(gets)
    code = "{p: zarr.open_array(session.store, path=p[1:], mode='r')[:].tolist() for p in paths}"
    values = pyic.run(code, paths=list(ARRAYS))
    assert values == {p: list(range(1, n + 1)) for p, n in ARRAYS.items()}
    again = _manifest_gets(gets, start)
    assert sorted(again) == sorted(set(owner) - set(read["pyicechunk"]))


class _CountingBackend(LocalFileSystemBackend):
    """The local filesystem, recording the manifests read from it."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.manifest_reads: list[str] = []

    async def get(self, key: str, byte_range: ByteRequest | None = None) -> bytes:
        if key.startswith("manifests/"):
            self.manifest_reads.append(key)
        return await super().get(key, byte_range)


@pytest.mark.parametrize("kind", ["writable", "rearrange"])
def test_writable_and_rearrange_sessions_preload_too(tmp_path: Path, kind: str) -> None:
    path = str(tmp_path / "repo")
    repo = ic.Repository.create(ic.local_filesystem_storage(path), spec_version=2)
    session = repo.writable_session("main")
    for name in ("lat", "temp"):
        zarr.create_array(session.store, name=name, shape=(4,), chunks=(2,), dtype="i2")[:] = 1
    session.commit("two arrays")
    backend = _CountingBackend(path)
    reopened = ic.Repository.open(ic.Storage.from_backend(backend))
    opened = getattr(reopened, f"{kind}_session")("main")
    deadline = time.monotonic() + 10
    while not backend.manifest_reads and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # nothing else arrives
    # The default condition picks the coordinate-like /lat only.
    assert len(backend.manifest_reads) == 1
    if kind == "writable":
        lat = zarr.open_array(opened.store, path="lat", mode="r")
        assert lat[:].tolist() == [1, 1, 1, 1]
        assert len(backend.manifest_reads) == 1  # served by the preloaded manifest
