"""Custom HTTP headers on object-store requests (``headers``, ``read_headers``,
``write_headers``), beside icechunk 2.3.0.

Both implementations write and read a repository on the moto S3 server through a recording
proxy on 127.0.0.1, so the test sees every request's method and headers as they reached the
network: reads (GET, HEAD) carry ``headers`` merged with ``read_headers``, writes (PUT, POST,
DELETE) ``headers`` merged with ``write_headers``, the role's own map winning a shared name.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from oracle import InProcess, Oracle, raises
from security_servers import RecordingServer

HEADERS = {"x-both": "b", "x-shared": "everywhere"}
READ = {"x-read": "r"}
WRITE = {"x-write": "w", "x-shared": "writes"}

SCENARIO = """
storage = icechunk.s3_storage(
    bucket=bucket, prefix=prefix, endpoint_url=url, region="us-east-1", allow_http=True,
    force_path_style=True, access_key_id="x", secret_access_key="x",
    headers=headers, read_headers=read, write_headers=write,
)
repo = icechunk.Repository.create(storage)
session = repo.writable_session("main")
arr = zarr.create_array(session.store, name="a", shape=(4,), chunks=(2,), dtype="i4")
arr[:] = [1, 2, 3, 4]
session.commit("headers")
reopened = icechunk.Repository.open(storage)
zarr.open_array(reopened.readonly_session(branch="main").store, path="a", mode="r")[:].tolist()
"""


def _by_method(proxy: RecordingServer, prefix: str) -> dict[str, set[tuple[str, str]]]:
    """Method -> the distinct sets of custom (``x-``) headers the repository's requests had."""
    found: dict[str, set[tuple[str, str]]] = {}
    for request in proxy.requests:
        if prefix not in request.target:
            continue
        ours = {(k.lower(), v) for k, v in request.headers.items() if k.lower().startswith("x-")}
        ours = {(k, v) for k, v in ours if k in {*HEADERS, *READ, *WRITE}}
        found.setdefault(request.method, set()).add(tuple(sorted(ours)))  # type: ignore[arg-type]
    return found


def test_reads_and_writes_carry_their_headers(
    pyic: InProcess, ic2: Oracle, s3_bucket: str, recording_proxy: RecordingServer
) -> None:
    seen: dict[str, Any] = {}
    for impl in (pyic, ic2):
        prefix = f"headers-{impl.name}-{uuid.uuid4().hex[:8]}"
        values = impl.run(
            SCENARIO,
            bucket=s3_bucket,
            prefix=prefix,
            url=recording_proxy.url,
            headers=HEADERS,
            read=READ,
            write=WRITE,
        )
        assert values == [1, 2, 3, 4]
        seen[impl.name] = _by_method(recording_proxy, prefix)
    reads = tuple(sorted({**HEADERS, **READ}.items()))
    writes = tuple(sorted({**HEADERS, **WRITE}.items()))
    # Every read of the reference carries the read headers, every write the write headers.
    expected = {"GET": {reads}, "HEAD": {reads}, "PUT": {writes}, "POST": {writes}}
    theirs = seen["icechunk2"]
    assert theirs == {method: expected[method] for method in theirs}
    assert {"GET", "PUT"} <= theirs.keys()
    ours = seen["pyicechunk"]
    assert ours == {method: expected[method] for method in ours}
    assert {"GET", "PUT"} <= ours.keys()


@pytest.mark.parametrize(
    "given",
    [
        {"headers": {"bad name": "v"}},
        {"read_headers": {"": "v"}},
        {"write_headers": {"x-ok": "line\nbreak"}},
    ],
    ids=["space-in-name", "empty-name", "newline-in-value"],
)
def test_invalid_headers_are_refused_at_construction(
    impl: InProcess | Oracle, given: dict[str, Any]
) -> None:
    code = "icechunk.{ctor}(bucket='b', prefix='p', anonymous=True, **given)"
    for ctor in ("s3_storage", "gcs_storage"):
        with raises("ValueError", match="storage error: invalid HTTP header"):
            impl.run(code.format(ctor=ctor), given=given)
