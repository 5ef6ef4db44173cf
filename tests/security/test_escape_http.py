"""Virtual chunk locations that try to leave an ``http://`` container, for both implementations.

Two real HTTP servers on 127.0.0.1 record every request: ``authorized`` (the container is
``http://127.0.0.1:<its port>/data/``) and ``other`` (another port, never authorized). A hostile
location must be refused with nothing sent to either; a legitimate one reaches ``authorized``
under ``/data/`` only.

icechunk 1.1.21 drops the port when it reads a location back (its stored form is
``scheme://host/path``), so no location with a port ever matches a container there: it refuses
every case below, the legitimate ones included.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from security_helpers import Case, crafted_repo, one_line, read_chunk
from security_servers import RecordingServer

import pyicechunk

OK = b"OKOKOKOK"
OTHER = b"OTHER!!!"
SECRET = b"SECRET!!"


@dataclass(frozen=True)
class Site:
    authorized: RecordingServer
    other: RecordingServer
    repo: Path

    @property
    def prefix(self) -> str:
        return f"http://127.0.0.1:{self.authorized.port}/data/"


def _cases(p1: int, p2: int) -> list[Case]:
    a = f"127.0.0.1:{p1}"
    return [
        # hostile
        Case(
            "userinfo-port-smuggle",
            f"http://127.0.0.1:{p1}%2F@127.0.0.1:{p2}/data/ok.bin",
            fragment="user info",
        ),
        Case(
            "userinfo-prefix-smuggle",
            f"http://127.0.0.1:{p1}%2Fdata%2F@127.0.0.1:{p2}/data/ok.bin",
            fragment="user info",
        ),
        Case("userinfo-other-host", f"http://{a}@127.0.0.1:{p2}/data/ok.bin", fragment="user info"),
        Case("userinfo", f"http://user:pw@{a}/data/ok.bin", fragment="user info"),
        Case("other-port", f"http://127.0.0.1:{p2}/data/ok.bin", fragment="no virtual chunk"),
        Case("no-port", "http://127.0.0.1/data/ok.bin", fragment="no virtual chunk"),
        Case("port-wraps", f"http://127.0.0.1:{p1 + 65536}/data/ok.bin", fragment="port"),
        Case("encoded-colon", f"http://127.0.0.1%3A{p2}/data/ok.bin", fragment="domain character"),
        Case(
            "pct-host-other-port",
            f"http://%31%32%37.0.0.1:{p2}/data/ok.bin",
            fragment="resolves to http://127.0.0.1",
        ),
        Case(
            "numeric-host-other-port",
            f"http://2130706433:{p2}/data/ok.bin",
            fragment="resolves to http://127.0.0.1",
        ),
        Case(
            "idna-digits", f"http://\uff11\uff12\uff17.0.0.1:{p2}/data/ok.bin", fragment="not ASCII"
        ),
        Case("ipv6-zone", f"http://[::1%25lo]:{p1}/data/ok.bin", fragment="IPv6"),
        Case("dotdot", f"http://{a}/data/../secret", fragment="resolves to"),
        Case("pct-dotdot", f"http://{a}/data/%2e%2e/secret", fragment="resolves to"),
        Case("encoded-slash", f"http://{a}/data/..%2Fsecret", fragment="holds '/'"),
        Case("backslash", f"http://{a}/data\\..\\secret", fragment="resolves to"),
        Case("encoded-backslash", f"http://{a}/data/%5C..%5Csecret", fragment="holds '\\\\'"),
        Case("mixed-case-scheme", f"HtTp://{a}/data/../secret", fragment="resolves to"),
        Case("nul", f"http://{a}/data/%00/../../secret", fragment="control character"),
        Case("header-injection", f"http://{a}/data/ok.bin\r\nHost: evil", fragment="control"),
        Case("above-root", f"http://{a}/../../data/ok.bin", fragment="above the root"),
        Case("no-slashes", f"http:{a}/data/ok.bin", fragment="does not start with http://"),
        # legitimate (under pyicechunk)
        Case("plain", f"http://{a}/data/ok.bin", ours="/data/ok.bin"),
        Case("upper-case", f"HTTP://{a}/data/ok.bin", ours="/data/ok.bin"),
        Case("empty-segments", f"http://{a}/data//ok.bin", ours="/data/ok.bin"),
        Case("dot-segments", f"http://{a}/data/./x/../ok.bin", ours="/data/ok.bin"),
        Case("fragment-dotdot", f"http://{a}/data/ok.bin#/../../secret", ours="/data/ok.bin"),
        Case("encoded-letter", f"http://{a}/data/o%6B.bin", ours="/data/ok.bin"),
        Case("hex-ipv4", f"http://0x7f.1:{p1}/data/ok.bin", ours="/data/ok.bin"),
        Case("pct-host", f"http://%31%32%37.0.0.1:{p1}/data/ok.bin", ours="/data/ok.bin"),
        Case("zero-padded-port", f"http://127.0.0.1:0{p1}/data/ok.bin", ours="/data/ok.bin"),
        # double encoding decodes once: a literal name under /data/, sent escaped
        Case(
            "double-encoded", f"http://{a}/data/%252e%252e/secret", ours="/data/%252e%252e/secret"
        ),
    ]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    authorized = RecordingServer(
        {"/data/ok.bin": OK, "/secret": SECRET, "/data/%252e%252e/secret": b"LITERAL!"}
    )
    other = RecordingServer({"/data/ok.bin": OTHER, "/secret": SECRET})
    repo = tmp_path_factory.mktemp("http-escapes") / "repo"
    prefix = f"http://127.0.0.1:{authorized.port}/data/"
    store = pyicechunk.http_store({"allow_http": "true"})
    crafted_repo(repo, prefix, store, [c.location for c in _cases(authorized.port, other.port)])
    try:
        yield Site(authorized, other, repo)
    finally:
        authorized.close()
        other.close()


CASE_NAMES = [c.name for c in _cases(1, 2)]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_http_location(ic: ModuleType, site: Site, name: str) -> None:
    index = CASE_NAMES.index(name)
    case = _cases(site.authorized.port, site.other.port)[index]
    expected = case.ours if ic.__name__ == "pyicechunk" else case.reference
    site.authorized.clear()
    site.other.clear()
    if expected == "refused":
        with pytest.raises(ic.IcechunkError) as info:
            read_chunk(ic, site.repo, index, {site.prefix: None})
        if ic.__name__ == "pyicechunk":
            assert case.fragment in one_line(info.value)
        assert site.authorized.targets() == []
    else:
        data = site.authorized.objects[expected]
        assert read_chunk(ic, site.repo, index, {site.prefix: None}) == data
        assert site.authorized.targets() == [expected]
    assert site.other.targets() == [], "a request went to a server outside the container"
