"""GCS over plain HTTP, and lost responses to conditional writes on GCS.

The reference reaches a plain-HTTP GCS endpoint (an emulator, a gateway) when the storage
config says ``allow_http``; pyicechunk must too. Over that endpoint, a proxy applies a
conditional write and loses its response, in the two shapes of test_s3_lost_responses.py: a
gateway's 503 after the server applied the write (obstore resends it, and the resent write fails
its generation precondition against itself), and a connection cut before the answer. The write
id stamped as custom metadata shows that the write landed, so the operation succeeds, once; a
genuine conflict still fails. The config's other HTTP client options (``proxy_url``,
``timeout``) are honoured too.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import icechunk
import numpy as np
import pytest
import zarr
from _failing_proxy import Action, FailingProxy, Rule

import pyicechunk
from pyicechunk.config import StorageRetriesSettings, StorageSettings
from pyicechunk.storage import Storage, gcs_storage

# (proxy action, tries): resent after a gateway's 503, or a broken connection and no resend
SHAPES = pytest.mark.parametrize(
    ("action", "tries"), [("lose", 3), ("drop", 1)], ids=["gateway-timeout", "connection-cut"]
)


def _in_url(key: str) -> str:
    """``key`` as obstore puts it in a GCS URL: one segment, every non-alphanumeric escaped."""
    return "".join(c if c.isascii() and c.isalnum() else f"%{ord(c):02X}" for c in key)


TAG = _in_url("r/refs/tag.v1/ref.json")
BRANCH = _in_url("r/refs/branch.main/ref.json")


def _gcs(server: Any, url: str, bucket: str) -> Storage:
    return gcs_storage(
        bucket=bucket,
        prefix="r",
        service_account_key=server.service_account_key(url),
        config={"allow_http": "true"},
    )


def test_proxy_url_in_the_config_like_the_reference(gcs_server: Any, gcs_bucket: str) -> None:
    """``proxy_url`` among the config's keys sends every request through that proxy."""
    proxy = FailingProxy(urlparse(gcs_server.http_url).port or 80)
    try:
        config = {"allow_http": "true", "proxy_url": f"http://127.0.0.1:{proxy.port}"}
        seen = [Rule(method, "", 0, "pass") for method in ("GET", "PUT")]
        proxy.rules.extend(seen)

        def storage(module: Any) -> Any:
            key = gcs_server.service_account_key(gcs_server.http_url)
            return module.gcs_storage(
                bucket=gcs_bucket, prefix="r", service_account_key=key, config=config
            )

        repo = pyicechunk.Repository.create(storage(pyicechunk), spec_version=1)
        session = repo.writable_session("main")
        zarr.create_array(session.store, name="a", shape=(4,), chunks=(2,), dtype="i8")[:] = 3
        sid = session.commit("through the proxy")
        assert [len(rule.seen) > 0 for rule in seen] == [True, True]
        gets = len(seen[0].seen)
        assert icechunk.Repository.open(storage(icechunk)).lookup_branch("main") == sid
        assert len(seen[0].seen) > gets  # the reference goes through it in the same way
    finally:
        proxy.close()


def test_timeout_in_the_config(gcs_server: Any, gcs_bucket: str) -> None:
    """``timeout`` among the config's keys bounds each request (the default is 30 s)."""
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        storage = gcs_storage(
            bucket=gcs_bucket,
            prefix="r",
            service_account_key=gcs_server.service_account_key(url),
            config={"allow_http": "true", "timeout": "300ms"},
        )
        retries = StorageRetriesSettings(max_tries=1)
        backend = storage.backend.with_settings(StorageSettings(retries=retries))
        started = time.monotonic()
        with pytest.raises(pyicechunk.IcechunkError, match="storage error"):
            asyncio.run(backend.get("refs/branch.main/ref.json"))
        assert time.monotonic() - started < 10


def test_allow_http_in_the_config_like_the_reference(gcs_server: Any, gcs_bucket: str) -> None:
    def reference_storage() -> Any:
        return icechunk.gcs_storage(
            bucket=gcs_bucket,
            prefix="r",
            service_account_key=gcs_server.service_account_key(gcs_server.http_url),
            config={"allow_http": "true"},
        )

    theirs = icechunk.Repository.create(reference_storage())
    session = theirs.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(4,), chunks=(2,), dtype="i8")[:] = 3
    base = session.commit("by the reference, over http")

    ours = pyicechunk.Repository.open(_gcs(gcs_server, gcs_server.http_url, gcs_bucket))
    assert ours.lookup_branch("main") == base
    session = ours.writable_session("main")
    arr = zarr.open_array(session.store, path="a", mode="r+")
    np.testing.assert_array_equal(arr[:], [3] * 4)
    arr[:2] = 4
    session.commit("by pyicechunk, over http")
    again = icechunk.Repository.open(reference_storage())
    view = zarr.open_array(again.readonly_session(branch="main").store, path="a", mode="r")
    np.testing.assert_array_equal(view[:], [4, 4, 3, 3])


@pytest.fixture
def proxy(gcs_server: Any) -> Iterator[FailingProxy]:
    p = FailingProxy(urlparse(gcs_server.http_url).port or 80)
    yield p
    p.close()


class Setup:
    """A repository with one commit, opened directly and through the proxy."""

    def __init__(self, gcs_server: Any, bucket: str, proxy: FailingProxy, tries: int) -> None:
        self.direct_storage = _gcs(gcs_server, gcs_server.http_url, bucket)
        direct = pyicechunk.Repository.create(self.direct_storage, spec_version=1)
        session = direct.writable_session("main")
        zarr.create_array(session.store, name="a", shape=(4,), chunks=(2,), dtype="i8")
        self.base = session.commit("base")
        self.direct = direct
        retries = StorageRetriesSettings(max_tries=tries, initial_backoff_ms=10, max_backoff_ms=20)
        config = pyicechunk.RepositoryConfig(storage=StorageSettings(retries=retries))
        proxied = _gcs(gcs_server, f"http://127.0.0.1:{proxy.port}", bucket)
        self.repo = pyicechunk.Repository.open(proxied, config=config)
        self.proxy = proxy

    def fail(self, method: str, path: str, action: Action) -> Rule:
        rule = Rule(method, path, 1, action)
        self.proxy.rules.append(rule)
        return rule

    def reopen(self) -> Any:
        return pyicechunk.Repository.open(self.direct_storage)


@SHAPES
def test_tag_create(
    gcs_server: Any, gcs_bucket: str, proxy: FailingProxy, action: Action, tries: int
) -> None:
    setup = Setup(gcs_server, gcs_bucket, proxy, tries)
    rule = setup.fail("PUT", TAG, action)
    setup.repo.create_tag("v1", setup.base)
    assert rule.answers == [b"HTTP/1.1 200 OK"]  # the server applied it; we never heard
    assert len(rule.seen) == (2 if action == "lose" else 1)  # resent once, or not at all
    assert setup.reopen().lookup_tag("v1") == setup.base


@SHAPES
def test_commit(
    gcs_server: Any, gcs_bucket: str, proxy: FailingProxy, action: Action, tries: int
) -> None:
    setup = Setup(gcs_server, gcs_bucket, proxy, tries)
    rule = setup.fail("PUT", BRANCH, action)
    session = setup.repo.writable_session("main")
    zarr.open_array(session.store, path="a", mode="r+")[:] = 7
    sid = session.commit("through the proxy")
    assert rule.answers == [b"HTTP/1.1 200 OK"]
    again = setup.reopen()
    # exactly once: one new commit on top of the base
    assert [s.id for s in again.ancestry(branch="main")][:2] == [sid, setup.base]
    arr = zarr.open_array(again.readonly_session("main").store, path="a", mode="r")
    np.testing.assert_array_equal(arr[:], [7] * 4)


def test_genuine_conflicts_still_fail(
    gcs_server: Any, gcs_bucket: str, proxy: FailingProxy
) -> None:
    setup = Setup(gcs_server, gcs_bucket, proxy, 3)
    setup.direct.create_tag("v1", setup.base)
    rule = setup.fail("PUT", TAG, "lose")
    with pytest.raises(pyicechunk.IcechunkError, match="tag already exists"):
        setup.repo.create_tag("v1", setup.base)
    assert rule.answers[0].startswith(b"HTTP/1.1 412")  # the server refused it
    mine = setup.repo.writable_session("main")
    zarr.open_array(mine.store, path="a", mode="r+")[:] = 1
    theirs = setup.direct.writable_session("main")
    zarr.open_array(theirs.store, path="a", mode="r+")[:] = 2
    theirs_id = theirs.commit("theirs")
    with pytest.raises(pyicechunk.ConflictError):
        mine.commit("mine")
    assert setup.reopen().lookup_branch("main") == theirs_id
