"""StorageRetriesSettings on S3: obstore retries 503s as configured, with the configured backoff.

A proxy between pyicechunk and the S3 server answers 503 to the first N requests of one kind.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest
import zarr
from _failing_proxy import FailingProxy, Rule

import pyicechunk
from pyicechunk.config import StorageRetriesSettings, StorageSettings
from pyicechunk.storage import s3_storage

FAILURES = 3


@pytest.fixture
def proxy(s3_server: Any) -> Iterator[FailingProxy]:
    p = FailingProxy(urlparse(s3_server.endpoint_url).port or 80)
    yield p
    p.close()


def _storage(endpoint: str, bucket: str) -> Any:
    return s3_storage(
        bucket=bucket,
        prefix="r",
        endpoint_url=endpoint,
        allow_http=True,
        force_path_style=True,
        access_key_id="x",
        secret_access_key="x",
        region="us-east-1",
    )


def _commit_through_proxy(
    s3_server: Any, bucket: str, proxy: FailingProxy, retries: StorageRetriesSettings, rule: Rule
) -> str:
    direct = pyicechunk.Repository.create(_storage(s3_server.endpoint_url, bucket), spec_version=1)
    session = direct.writable_session("main")
    # 1 KiB uncompressed chunks: above the inline threshold, so they are objects of their own
    zarr.create_array(
        session.store, name="a", shape=(512,), chunks=(256,), dtype="i4", compressors=None
    )
    session.commit("setup")
    config = pyicechunk.RepositoryConfig(storage=StorageSettings(retries=retries))
    repo = pyicechunk.Repository.open(
        _storage(f"http://127.0.0.1:{proxy.port}", bucket), config=config
    )
    proxy.rules = [rule]
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a", mode="r+")[:] = np.arange(512)
    return str(session.commit("through the proxy"))


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", "/refs/branch.main/"), ("PUT", "/chunks/"), ("GET", "/refs/branch.main/")],
)
def test_enough_tries_survive_503s(
    s3_server: Any, s3_bucket: str, proxy: FailingProxy, method: str, path: str
) -> None:
    rule = Rule(method, path, FAILURES)
    retries = StorageRetriesSettings(
        max_tries=FAILURES + 1, initial_backoff_ms=10, max_backoff_ms=20
    )
    sid = _commit_through_proxy(s3_server, s3_bucket, proxy, retries, rule)
    assert len(rule.seen) >= FAILURES + 1  # every failure was retried, then it went through
    repo = pyicechunk.Repository.open(_storage(s3_server.endpoint_url, s3_bucket))
    assert repo.lookup_branch("main") == sid
    got = zarr.open_array(repo.readonly_session("main").store, path="a", mode="r")[:]
    np.testing.assert_array_equal(got, np.arange(512))


def test_one_try_fails_with_a_clear_error(
    s3_server: Any, s3_bucket: str, proxy: FailingProxy
) -> None:
    rule = Rule("PUT", "/refs/branch.main/", FAILURES)
    with pytest.raises(pyicechunk.IcechunkError) as info:
        _commit_through_proxy(
            s3_server, s3_bucket, proxy, StorageRetriesSettings(max_tries=1), rule
        )
    message = str(info.value)
    assert "storage error" in message
    assert "503" in message or "Service Unavailable" in message
    assert "refs/branch.main/ref.json" in message
    assert len(rule.seen) == 1  # no retry
    # the branch did not move
    repo = pyicechunk.Repository.open(_storage(s3_server.endpoint_url, s3_bucket))
    assert next(iter(repo.ancestry(branch="main"))).message == "setup"


@pytest.mark.parametrize(("initial_ms", "max_ms"), [(200, 400), (20, 40)])
def test_backoff_follows_settings(
    s3_server: Any, s3_bucket: str, proxy: FailingProxy, initial_ms: int, max_ms: int
) -> None:
    rule = Rule("PUT", "/refs/branch.main/", FAILURES)
    retries = StorageRetriesSettings(
        max_tries=FAILURES + 1, initial_backoff_ms=initial_ms, max_backoff_ms=max_ms
    )
    _commit_through_proxy(s3_server, s3_bucket, proxy, retries, rule)
    gaps = [b - a for a, b in zip(rule.seen, rule.seen[1:], strict=False)][:FAILURES]
    assert len(gaps) == FAILURES
    # obstore waits the initial backoff first, then random waits between initial and max
    assert all(g >= initial_ms / 1000 * 0.9 for g in gaps), gaps
    assert all(g <= max_ms / 1000 + 0.25 for g in gaps), gaps
    assert sum(gaps) >= FAILURES * initial_ms / 1000 * 0.9


class DeadEndpoint:
    """An S3 endpoint on 127.0.0.1 that answers every request with 503, counting them by path.

    The proxy's upstream is never reached: every request matches a refusing rule.
    """

    def __init__(self) -> None:
        self.proxy = FailingProxy(upstream_port=9)  # discard: nothing listens there
        self.rules = [Rule(method, "", 10_000) for method in ("GET", "HEAD", "PUT")]
        self.proxy.rules.extend(self.rules)
        self.storage = _storage(f"http://127.0.0.1:{self.proxy.port}", "dead")

    def attempts(self) -> Counter[str]:
        """How many times each request (method and target) arrived."""
        return Counter(f"{r.method} {t}" for r in self.rules for t in r.targets)

    def close(self) -> None:
        self.proxy.close()


@pytest.fixture
def dead() -> Iterator[DeadEndpoint]:
    endpoint = DeadEndpoint()
    yield endpoint
    endpoint.close()


def _fast(tries: int) -> pyicechunk.RepositoryConfig:
    retries = StorageRetriesSettings(max_tries=tries, initial_backoff_ms=1, max_backoff_ms=2)
    return pyicechunk.RepositoryConfig(storage=StorageSettings(retries=retries))


@pytest.mark.parametrize("tries", [1, 2])
@pytest.mark.parametrize("how", ["open", "open_or_create", "create"])
def test_the_first_requests_follow_the_configured_retries(
    dead: DeadEndpoint, how: str, tries: int
) -> None:
    """Opening (or creating) a repository finds out what is there with requests that already
    honour the config's storage settings: none is tried more than ``tries`` times (the
    default is ten)."""
    with pytest.raises(pyicechunk.IcechunkError, match="storage error"):
        if how == "create":
            pyicechunk.Repository.create(dead.storage, config=_fast(tries), spec_version=2)
        else:
            getattr(pyicechunk.Repository, how)(dead.storage, config=_fast(tries))
    attempts = dead.attempts()
    # requests sent together are abandoned when the first of them gives up, after `tries`
    assert attempts and max(attempts.values()) == tries, attempts


def test_without_settings_a_request_is_tried_ten_times(dead: DeadEndpoint) -> None:
    """The storage's default (as in the reference), so the test above tells them apart."""
    retries = StorageRetriesSettings(initial_backoff_ms=1, max_backoff_ms=2)
    backend = dead.storage.backend.with_settings(StorageSettings(retries=retries))
    with pytest.raises(pyicechunk.IcechunkError, match="storage error"):
        asyncio.run(backend.get("repo"))
    assert dead.attempts() == Counter({"GET /dead/r/repo": 10})
