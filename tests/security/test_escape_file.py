"""Virtual chunk locations that try to leave a ``file://`` container, for both implementations.

The authorized container is ``file://<root>/data/``. ``<root>/secret`` is a named pipe that
records every open, so a test proves not only that the read failed but that nothing outside the
container was even opened (:class:`security_helpers.FifoWatch`).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from security_helpers import Case, FifoWatch, crafted_repo, one_line, read_chunk

import pyicechunk

OK = b"OKOKOKOK"


@dataclass(frozen=True)
class Site:
    root: Path
    data: Path
    repo: Path
    repo_v2: Path  # the same chunks in a spec-2 repository (pyicechunk reads it)
    secret: FifoWatch
    probe: FifoWatch  # a pipe inside the container: proves the watcher sees real reads

    @property
    def prefix(self) -> str:
        return f"file://{self.data}/"


def _cases(root: Path, data: Path) -> list[Case]:
    d, r = str(data), str(root)
    quoted = urllib.parse.quote(d + "/", safe="")
    return [
        # hostile: each would read <root>/secret (or a file beside the container) if the
        # check and the fetch disagreed
        Case("encoded-host", f"file://{quoted}{r}/secret", fragment="invalid domain character"),
        Case("etc-passwd", f"file://{quoted}/etc/passwd", fragment="invalid domain character"),
        Case("dotdot", f"file://{d}/../secret", fragment="resolves to"),
        Case("pct-dotdot", f"file://{d}/%2e%2e/secret", fragment="resolves to"),
        Case("pct-dotdot-upper", f"file://{d}/%2E%2E/secret", fragment="resolves to"),
        Case("half-encoded-dotdot", f"file://{d}/.%2e/secret", fragment="resolves to"),
        Case("encoded-slash", f"file://{d}/..%2Fsecret", fragment="holds '/'"),
        Case("encoded-slashes", f"file://{d}/sub%2F..%2F..%2Fsecret", fragment="holds '/'"),
        Case("backslash", f"file://{d}/..\\secret", fragment="resolves to"),
        Case("encoded-backslash", f"file://{d}/%5C..%5Csecret", fragment="holds '\\\\'"),
        Case("mixed-case-scheme", f"FiLe://{d}/../secret", fragment="resolves to"),
        Case("host", f"file://evil{r}/secret", fragment="cannot name a host"),
        Case("ip-host", f"file://127.0.0.1{r}/secret", fragment="cannot name a host"),
        Case("idna-host", f"file://\uff45vil{r}/secret", fragment="not ASCII"),
        Case("localhost-dotdot", f"file://localhost{d}/../secret", fragment="resolves to"),
        Case("pct-localhost-dotdot", f"file://%6cocalhost{d}/../secret", fragment="resolves"),
        Case("userinfo", f"file://user:pw@{d}/ok.bin", fragment="user info"),
        Case("port", f"file://localhost:99{d}/ok.bin", fragment="port"),
        Case("nul", f"file://{d}/%00/../../secret", fragment="control character"),
        Case("raw-control", f"file://{d}/\t../../secret", fragment="control character"),
        Case("above-root", f"file:///../../..{r}/secret", fragment="above the root"),
        Case("no-authority", f"file:{d}/../secret", fragment="does not start with file://"),
        # the reference decodes the %2F and reads data/ok.bin; an encoded separator is refused
        Case(
            "encoded-slash-in-dir", f"file://{d}%2Fok.bin", reference="ok.bin", fragment="holds '/'"
        ),
        Case("directory-itself", f"file://{d}/ok.bin/..", fragment="resolves to"),
        # legitimate: these resolve inside the container and must keep working
        Case("plain", f"file://{d}/ok.bin", ours="ok.bin", reference="ok.bin"),
        Case("localhost", f"file://localhost{d}/ok.bin", ours="ok.bin", reference="ok.bin"),
        Case("empty-segments", f"file://{d}//ok.bin", ours="ok.bin", reference="ok.bin"),
        Case("dot", f"file://{d}/./ok.bin", ours="ok.bin", reference="ok.bin"),
        Case("dotdot-inside", f"file://{d}/sub/../ok.bin", ours="ok.bin", reference="ok.bin"),
        Case(
            "query-fragment",
            f"file://{d}/ok.bin?/../../secret#x",
            ours="ok.bin",
            reference="ok.bin",
        ),
        Case("encoded-letter", f"file://{d}/o%6B.bin", ours="ok.bin", reference="ok.bin"),
        Case("space", f"file://{d}/a%20b.bin", ours="a b.bin", reference="a b.bin"),
        Case("literal-percent", f"file://{d}/100%25.bin", ours="100%.bin", reference="100%.bin"),
        Case("bare-percent", f"file://{d}/100%.bin", ours="100%.bin", reference="100%.bin"),
        # double encoding decodes once: a literal name inside the container, not a '..'
        Case(
            "double-encoded-slashes",
            f"file://{d}/a%252F..%252F..%252Fsecret",
            ours="a%2F..%2F..%2Fsecret",
            reference="a%2F..%2F..%2Fsecret",
        ),
    ]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("file-escapes")
    data = root / "data"
    (data / "sub").mkdir(parents=True)
    for name in ("ok.bin", "a b.bin", "100%.bin", "a%2F..%2F..%2Fsecret"):
        (data / name).write_bytes(OK if name == "ok.bin" else name.encode()[:8].ljust(8, b"."))
    secret = FifoWatch(root / "secret")
    probe = FifoWatch(data / "probe")
    repo = root / "repo"
    cases = _cases(root, data)
    locations = [c.location for c in cases] + [f"file://{data}/probe"]
    store = pyicechunk.local_filesystem_store(str(data))
    crafted_repo(repo, f"file://{data}/", store, locations)
    crafted_repo(root / "repo-v2", f"file://{data}/", store, locations, spec_version=2)
    try:
        yield Site(root, data, repo, root / "repo-v2", secret, probe)
    finally:
        secret.close()
        probe.close()


CASE_NAMES = [c.name for c in _cases(Path("/r"), Path("/r/data"))]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_file_location(ic: ModuleType, site: Site, name: str) -> None:
    cases = _cases(site.root, site.data)
    index = CASE_NAMES.index(name)
    case = cases[index]
    expected = case.ours if ic.__name__ == "pyicechunk" else case.reference
    opened = site.secret.opens()
    if expected == "refused":
        with pytest.raises(ic.IcechunkError) as info:
            read_chunk(ic, site.repo, index, {site.prefix: None})
        if ic.__name__ == "pyicechunk":
            assert case.fragment in str(info.value)
            assert "Nothing was fetched" in str(info.value) or "no virtual chunk container" in str(
                info.value
            )
        assert b"SECRET" not in one_line(info.value).encode()
    else:
        assert (
            read_chunk(ic, site.repo, index, {site.prefix: None})
            == ((site.data / expected).read_bytes()[:8])
        )
    assert site.secret.opens() == opened, "the file outside the container was opened"


def test_spec_2_manifests_are_guarded_the_same_way(site: Site) -> None:
    """The same locations in a spec-2 manifest (stored verbatim there, as icechunk 2.x stores
    them): pyicechunk answers every one as it does on spec 1 and opens nothing outside."""
    storage = pyicechunk.local_filesystem_storage(str(site.repo_v2))
    assert pyicechunk.Repository.fetch_spec_version(storage) == 2
    for index, case in enumerate(_cases(site.root, site.data)):
        opened = site.secret.opens()
        if case.ours == "refused":
            with pytest.raises(pyicechunk.IcechunkError) as info:
                read_chunk(pyicechunk, site.repo_v2, index, {site.prefix: None})
            assert case.fragment in str(info.value), case.name
        else:
            got = read_chunk(pyicechunk, site.repo_v2, index, {site.prefix: None})
            assert got == (site.data / case.ours).read_bytes()[:8], case.name
        assert site.secret.opens() == opened, f"{case.name}: the file outside was opened"


def test_watcher_sees_reads_inside_the_container(ic: ModuleType, site: Site) -> None:
    """Control: a pipe inside the container is opened by a read (so the watcher works)."""
    before = site.probe.opens()
    probe_index = len(CASE_NAMES)
    try:
        read_chunk(ic, site.repo, probe_index, {site.prefix: None})
    except ic.IcechunkError:
        pass  # a pipe has no size, so the byte range fails after the open
    assert site.probe.opens() > before


def test_unauthorized_container_fetches_nothing(ic: ModuleType, site: Site) -> None:
    before = site.probe.opens()
    with pytest.raises(ic.IcechunkError, match="authorize"):
        read_chunk(ic, site.repo, len(CASE_NAMES), {})
    assert site.probe.opens() == before
