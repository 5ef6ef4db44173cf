"""http_storage: repositories served by a plain web server on 127.0.0.1 (Python's http.server),
read by pyicechunk and by icechunk 2.3.0, and every write refused."""

from __future__ import annotations

import re
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from oracle import InProcess, Oracle, raises

import pyicechunk as ic


class _Files(BaseHTTPRequestHandler):
    """GET and HEAD of the files under ``root``, with single byte ranges (206), as static web
    servers answer; http.server's own handler ignores ranges, which icechunk 2.3.0 needs."""

    root: Path

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, body: bool) -> None:
        # /redirect/<n>/<target>: a redirect service, <n> more hops before Location <target>.
        found = re.fullmatch(r"/redirect/(\d+)/(.*)", self.path)
        if found:
            hops, target = int(found[1]), urllib.parse.unquote(found[2])
            self.send_response(302 if target != "none" else 200)
            if target != "none":
                next_hop = f"/redirect/{hops - 1}/{found[2]}" if hops else target
                self.send_header("Location", next_hop)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path = self.root / self.path.lstrip("/")
        if not path.resolve().is_relative_to(self.root) or not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        found = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        if found and (found[1] or found[2]):
            start = int(found[1]) if found[1] else max(0, len(data) - int(found[2]))
            end = int(found[2]) + 1 if found[1] and found[2] else len(data)
            part = data[start:end]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{start + len(part) - 1}/{len(data)}")
        else:
            part = data
            self.send_response(200)
        self.send_header("Content-Length", str(len(part)))
        self.send_header("ETag", f'"{len(data)}-{path.stat().st_mtime_ns}"')
        self.end_headers()
        if body:
            self.wfile.write(part)

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A directory and the URL a loopback web server serves it at."""
    root = tmp_path_factory.mktemp("www")
    handler = type("Handler", (_Files,), {"root": root.resolve()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _publish(root: Path, name: str, spec: int) -> np.ndarray:
    data = np.arange(20, dtype="i4").reshape(4, 5)
    repo = ic.Repository.create(ic.local_filesystem_storage(str(root / name)), spec_version=spec)
    session = repo.writable_session("main")
    import zarr

    zarr.create_array(session.store, name="x", shape=data.shape, chunks=(2, 2), dtype="i4")[:] = (
        data
    )
    repo.create_tag("v1", session.commit("published"))
    return data


READ = """
storage = icechunk.http_storage(url)
repo = icechunk.Repository.open(storage)
arr = zarr.open_array(repo.readonly_session(tag="v1").store, path="x", mode="r")
(arr[:], repo.lookup_branch("main") == repo.lookup_tag("v1"),
 [s.message for s in repo.ancestry(branch="main")],
 int(icechunk.Repository.fetch_spec_version(storage)), icechunk.Repository.exists(storage))
"""


@pytest.mark.parametrize("spec", [1, 2])
def test_a_published_repository_reads_and_refuses_writes(
    impl: InProcess | Oracle, served: tuple[Path, str], spec: int
) -> None:
    root, base = served
    name = f"repo-{spec}-{impl.name}"
    data = _publish(root, name, spec)
    url = f"{base}/{name}"
    # (Spec-1 listings need WebDAV, which a static server lacks: refs are looked up instead.)
    values, same, messages, version, exists = impl.run(READ, url=url)
    np.testing.assert_array_equal(values, data)
    assert (same, messages[0], version, exists) == (True, "published", spec, True)
    with raises("ReadOnlyError", kind="read-only-storage", match="Cannot create writable session"):
        impl.run("repo.writable_session('main')")
    with raises("ReadOnlyError", kind="read-only-storage"):
        impl.run("repo.create_tag('v2', repo.lookup_branch('main'))")
    with raises("ReadOnlyError", kind="read-only-storage"):
        impl.run("icechunk.Repository.create(icechunk.http_storage(url + '-new'))", url=url)
    assert impl.run("repo.lookup_tag('v1') == repo.lookup_branch('main')")  # nothing changed


def test_missing_repository_and_bad_urls(
    impl: InProcess | Oracle, served: tuple[Path, str]
) -> None:
    _, base = served
    assert (
        impl.run("icechunk.Repository.exists(icechunk.http_storage(url))", url=f"{base}/nope")
        is False
    )
    with raises("RepositoryNotFoundError", kind="repository-not-found"):
        impl.run("icechunk.Repository.open(icechunk.http_storage(url))", url=f"{base}/nope")


def _redirect(base: str, target: str, hops: int = 0) -> str:
    return f"{base}/redirect/{hops}/{urllib.parse.quote(target, safe='')}"


def test_redirect_storage(impl: InProcess | Oracle, served: tuple[Path, str]) -> None:
    root, base = served
    name = f"redirected-{impl.name}"
    data = _publish(root, name, 2)
    target = base.replace("http://", "http+icechunk://") + f"/{name}"
    got = impl.run(
        "repo = icechunk.Repository.open(icechunk.redirect_storage(url))\n"
        "zarr.open_array(repo.readonly_session('main').store, path='x', mode='r')[:]",
        url=_redirect(base, target, hops=2),
    )
    np.testing.assert_array_equal(got, data)
    with raises("ReadOnlyError", kind="read-only-storage"):
        impl.run("repo.writable_session('main')")
    with raises("StorageError", kind="bad-redirect", match="builder error for url"):
        impl.run(
            "icechunk.Repository.open(icechunk.redirect_storage(url))",
            url=_redirect(base, "ftp://x/y"),
        )
    with raises("StorageError", kind="bad-redirect", match="no location header detected"):
        impl.run(
            "icechunk.Repository.open(icechunk.redirect_storage(url))", url=_redirect(base, "none")
        )
