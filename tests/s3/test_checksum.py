"""Write checksums on S3 (``checksum_algorithm``): every PUT carries the payload's checksum.

The S3 client talks to the moto server through a recording proxy on 127.0.0.1, so the test
sees the headers each request really carried and checks the checksum against the body sent.
moto stores the objects (the repository opens and reads back through it).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import http.server
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import zarr
from oracle import Oracle
from s3_helpers import s3_kwargs

import pyicechunk as ic
from pyicechunk.exceptions import StorageError

_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding"}


@dataclass
class _Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class _Proxy:
    endpoint_url: str
    requests: list[_Recorded] = field(default_factory=list)


def _serve(target: str) -> tuple[http.server.ThreadingHTTPServer, _Proxy]:
    upstream = urllib.parse.urlsplit(target)

    class Forward(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
            proxy.requests.append(_Recorded(self.command, self.path, dict(headers), body))
            conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                payload = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in _HOP_HEADERS | {"content-length"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
            finally:
                conn.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    proxy = _Proxy(f"http://127.0.0.1:{server.server_address[1]}")
    return server, proxy


@pytest.fixture
def proxy(s3_server: Any) -> Iterator[_Proxy]:
    server, recorded = _serve(s3_server.endpoint_url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorded
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _write_repository(storage: ic.Storage) -> None:
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    array = zarr.create_array(session.store, name="a", shape=(8,), chunks=(2,), dtype="i4")
    array[:] = np.arange(8)
    session.commit("with checksums")
    reread = ic.Repository.open(storage).readonly_session("main")
    assert list(zarr.open_array(reread.store, path="a", mode="r")[:]) == list(range(8))


def _storage(proxy: _Proxy, server: Any, bucket: str, **more: Any) -> ic.Storage:
    kwargs = {**s3_kwargs(server, bucket, "repo"), "endpoint_url": proxy.endpoint_url}
    return ic.s3_storage(**kwargs, **more)


def _puts(proxy: _Proxy) -> list[_Recorded]:
    puts = [r for r in proxy.requests if r.method == "PUT"]
    assert len(puts) >= 8  # repo info, snapshots, manifest, transaction log, chunks
    return puts


def test_sha256_checksum_on_every_put(proxy: _Proxy, s3_server: Any, s3_bucket: str) -> None:
    _write_repository(
        _storage(proxy, s3_server, s3_bucket, checksum_algorithm=ic.ChecksumAlgorithm.Sha256)
    )
    for put in _puts(proxy):
        headers = {k.lower(): v for k, v in put.headers.items()}
        expected = base64.b64encode(hashlib.sha256(put.body).digest()).decode()
        assert headers.get("x-amz-checksum-sha256") == expected, put.path


def test_crc64nvme_checksum_on_every_put(proxy: _Proxy, s3_server: Any, s3_bucket: str) -> None:
    storage = _storage(
        proxy, s3_server, s3_bucket, checksum_algorithm=ic.ChecksumAlgorithm.Crc64Nvme
    )
    _write_repository(storage)
    sent = [{k.lower(): v for k, v in p.headers.items()} for p in _puts(proxy)]
    assert all(len(base64.b64decode(h["x-amz-checksum-crc64nvme"])) == 8 for h in sent)
    # the same payload gets the same checksum, different payloads (nearly always) differ
    assert len({h["x-amz-checksum-crc64nvme"] for h in sent}) > 1


def test_no_checksum_by_default(proxy: _Proxy, s3_server: Any, s3_bucket: str) -> None:
    _write_repository(_storage(proxy, s3_server, s3_bucket))
    for put in _puts(proxy):
        assert not any(k.lower().startswith("x-amz-checksum-") for k in put.headers), put.path


@pytest.mark.parametrize("name", ["Crc32", "Crc32c", "Sha1"])
def test_checksums_the_client_cannot_send_are_refused_at_construction(name: str) -> None:
    algorithm = getattr(ic.ChecksumAlgorithm, name)
    for build in (
        lambda: ic.s3_storage(bucket="b", prefix="p", checksum_algorithm=algorithm),
        lambda: ic.r2_storage(bucket="b", account_id="a", checksum_algorithm=algorithm),
        lambda: ic.tigris_storage(bucket="b", prefix="p", region="r", checksum_algorithm=algorithm),
    ):
        with pytest.raises(StorageError, match=f"cannot send ChecksumAlgorithm.{name}") as info:
            build()
        assert info.value.kind == "storage-config"
        assert "Sha256" in str(info.value) and "Crc64Nvme" in str(info.value)


def test_checksum_shows_in_the_storage_repr() -> None:
    storage = ic.s3_storage(
        bucket="b", prefix="p", region="r", checksum_algorithm=ic.ChecksumAlgorithm.Sha256
    )
    assert "checksum_algorithm: Sha256" in repr(storage)


def test_checksum_keyword_matches_the_reference(ic2: Oracle) -> None:
    names = ("s3_storage", "r2_storage", "tigris_storage")
    reference = ic2.run(
        "import inspect\n"
        "{n: [(p.name, repr(p.default), p.kind.name)\n"
        "     for p in inspect.signature(getattr(icechunk, n)).parameters.values()\n"
        "     if p.name == 'checksum_algorithm'] for n in names}",
        names=list(names),
    )
    import inspect

    ours = {
        n: [
            (p.name, repr(p.default), p.kind.name)
            for p in inspect.signature(getattr(ic, n)).parameters.values()
            if p.name == "checksum_algorithm"
        ]
        for n in names
    }
    assert ours == reference
    assert all(ours[n] for n in names)
