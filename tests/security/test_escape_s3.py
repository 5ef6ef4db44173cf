"""Virtual chunk locations that try to leave an ``s3://`` container, for both implementations.

The container is ``s3://<bucket>/data/`` on the moto server, reached through a recording proxy,
so the test sees every request a read sends. ``<bucket>/secret`` and ``<other>/secret`` are
outside the container. A hostile location must be refused with no request sent; a legitimate
one sends requests under ``/<bucket>/data/`` only.

icechunk 1.1.21 refuses every hostile case too, but some only after sending a request: it
decodes ``%2F`` into the key it asks for (``GET /<bucket>/data/../secret``) and puts a decoded
host into the request path; moto answers those with errors. pyicechunk sends nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from security_helpers import Case, crafted_repo, one_line, read_chunk
from security_servers import RecordingServer

import pyicechunk

OK = b"OKOKOKOK"


@dataclass(frozen=True)
class Site:
    bucket: str
    other: str
    repo: Path

    @property
    def prefix(self) -> str:
        return f"s3://{self.bucket}/data/"


def _cases(b: str, o: str) -> list[Case]:
    inside = "data/ok.bin"
    return [
        # hostile
        Case("dotdot", f"s3://{b}/data/../secret", fragment="resolves to"),
        Case("pct-dotdot", f"s3://{b}/data/%2e%2e/secret", fragment="resolves to"),
        Case("encoded-slash", f"s3://{b}/data/..%2Fsecret", fragment="holds '/'"),
        Case("encoded-dotdot-slash", f"s3://{b}/data/%2E%2E%2Fsecret", fragment="holds '/'"),
        Case("encoded-slashes", f"s3://{b}/data/x%2F..%2F..%2Fsecret", fragment="holds '/'"),
        Case("host-smuggle", f"s3://{b}%2Fdata%2F..%2F..%2F{o}/secret", fragment="not a bucket"),
        Case("host-with-path", f"s3://{b}%2Fdata%2F/../secret", fragment="not a bucket"),
        Case("backslash", f"s3://{b}/data/..\\secret", fragment="holds '\\\\'"),
        Case("encoded-backslash", f"s3://{b}/data/%5C..%5Csecret", fragment="holds '\\\\'"),
        Case("mixed-case-scheme", f"S3://{b}/data/../secret", fragment="resolves to"),
        Case("userinfo", f"s3://user:pw@{b}/data/ok.bin", reference=inside, fragment="user info"),
        Case("userinfo-bucket", f"s3://{o}@{b}/data/ok.bin", reference=inside, fragment="user"),
        Case("port", f"s3://{b}:99/data/ok.bin", reference=inside, fragment="port"),
        Case("nul", f"s3://{b}/data/%00/../secret", fragment="control character"),
        Case("upper-case-bucket", f"s3://{b.upper()}/data/ok.bin", fragment="no virtual chunk"),
        Case("other-bucket", f"s3://{o}/secret", fragment="no virtual chunk"),
        Case("pct-other-bucket", f"s3://%{ord(o[0]):02x}{o[1:]}/secret", fragment="no virtual"),
        Case("idna-bucket", f"s3://\uff42{b[1:]}/data/ok.bin", fragment="not a bucket"),
        Case("ipv6-bucket", "s3://[::1]/data/ok.bin", fragment="not a bucket"),
        Case("above-root", f"s3://{b}/../{b}/data/ok.bin", fragment="above the root"),
        # legitimate
        Case("plain", f"s3://{b}/data/ok.bin", ours=inside, reference=inside),
        Case("empty-segments", f"s3://{b}/data//ok.bin", ours=inside, reference=inside),
        Case("dotdot-inside", f"s3://{b}/data/x/../ok.bin", ours=inside, reference=inside),
        Case(
            "pct-bucket", f"s3://%{ord(b[0]):02x}{b[1:]}/data/ok.bin", ours=inside, reference=inside
        ),
        Case(
            "query-fragment", f"s3://{b}/data/ok.bin?versionId=1#x", ours=inside, reference=inside
        ),
        # double encoding decodes once: the literal key "data/a%2F..%2Fsecret"
        Case(
            "double-encoded",
            f"s3://{b}/data/a%252F..%252Fsecret",
            ours="data/a%2F..%2Fsecret",
            reference="data/a%2F..%2Fsecret",
        ),
    ]


@pytest.fixture(scope="module")
def site(
    s3_server: Any, recording_proxy: RecordingServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    client = s3_server.client()
    tag = uuid.uuid4().hex[:12]
    bucket, other = f"sec-{tag}", f"other-{tag}"
    for name in (bucket, other):
        client.create_bucket(Bucket=name)
        client.put_object(Bucket=name, Key="secret", Body=b"SECRET!!")
    client.put_object(Bucket=bucket, Key="data/ok.bin", Body=OK)
    client.put_object(Bucket=bucket, Key="data/a%2F..%2Fsecret", Body=b"LITERAL!")
    repo = tmp_path_factory.mktemp("s3-escapes") / "repo"
    store = pyicechunk.s3_store(
        region=s3_server.region,
        endpoint_url=recording_proxy.url,
        allow_http=True,
        force_path_style=True,
        s3_compatible=True,
    )
    crafted_repo(repo, f"s3://{bucket}/data/", store, [c.location for c in _cases(bucket, other)])
    yield Site(bucket, other, repo)


CASE_NAMES = [c.name for c in _cases("b", "o")]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_s3_location(
    ic: ModuleType,
    site: Site,
    recording_proxy: RecordingServer,
    s3_server: Any,
    s3_env: None,
    name: str,
) -> None:
    index = CASE_NAMES.index(name)
    case = _cases(site.bucket, site.other)[index]
    ours = ic.__name__ == "pyicechunk"
    expected = case.ours if ours else case.reference
    recording_proxy.clear()
    if expected == "refused":
        with pytest.raises(ic.IcechunkError) as info:
            read_chunk(ic, site.repo, index, {site.prefix: None})
        if ours:
            assert case.fragment in one_line(info.value)
            assert recording_proxy.targets() == [], "a request was sent for a refused location"
    else:
        body = s3_server.client().get_object(Bucket=site.bucket, Key=expected)["Body"].read()
        assert read_chunk(ic, site.repo, index, {site.prefix: None}) == body[:8]
        sent = recording_proxy.targets()
        assert sent and all(t.startswith(f"/{site.bucket}/data/") for t in sent), sent
