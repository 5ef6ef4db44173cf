"""Lost responses to conditional writes on S3, through a proxy that applies a write and drops
its response.

Two shapes, both seen in practice: a gateway that times out and answers 503 after the server
applied the request (obstore resends it, and the resent write fails its precondition against
itself), and a connection that breaks before the answer (obstore gives up with a transport
error). Either way the write id stamped on the object (FORMAT-V2 §14) shows that the write
landed, so the operation succeeds, once. A genuine conflict still fails, a read-back that fails
is an error rather than a guess, and with ``unsafe_use_metadata`` off nothing is stamped and the
old behaviour remains, with a warning, as in the reference.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest
import zarr
from _failing_proxy import Action, FailingProxy, Rule

import pyicechunk
from pyicechunk.config import StorageRetriesSettings, StorageSettings
from pyicechunk.storage import Storage, object_store, s3_storage

# (proxy action, tries): resent after a gateway's 503, or a broken connection and no resend
SHAPES = pytest.mark.parametrize(
    ("action", "tries"), [("lose", 3), ("drop", 1)], ids=["gateway-timeout", "connection-cut"]
)
SPECS = pytest.mark.parametrize("spec", [1, 2], ids=["spec1", "spec2"])
TAG = "/refs/tag.v1/ref.json"
BRANCH = "/refs/branch.main/ref.json"
CONFIG = "/config.yaml"
REPO = "/r/repo"  # spec 2: every ref and the config live in this one object


def _path(spec: int, spec1_path: str) -> str:
    """The request path of a conditional write that spec 1 sends to ``spec1_path``."""
    return spec1_path if spec == 1 else REPO


@pytest.fixture
def proxy(s3_server: Any) -> Iterator[FailingProxy]:
    p = FailingProxy(urlparse(s3_server.endpoint_url).port or 80)
    yield p
    p.close()


def _storage(endpoint: str, bucket: str) -> Storage:
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


class Setup:
    """A repository with one commit, opened directly and through the proxy."""

    def __init__(
        self, s3_server: Any, bucket: str, proxy: FailingProxy, spec: int = 1, **settings: Any
    ) -> None:
        self.direct_storage = _storage(s3_server.endpoint_url, bucket)
        self.direct = pyicechunk.Repository.create(self.direct_storage, spec_version=spec)
        session = self.direct.writable_session("main")
        zarr.create_array(session.store, name="a", shape=(4,), chunks=(2,), dtype="i8")
        self.base = session.commit("base")
        self.proxied_storage = _storage(f"http://127.0.0.1:{proxy.port}", bucket)
        self.config = pyicechunk.RepositoryConfig(storage=StorageSettings(**settings))
        self.repo = pyicechunk.Repository.open(self.proxied_storage, config=self.config)
        self.proxy = proxy

    def fail(self, method: str, path: str, action: Action, count: int = 1) -> Rule:
        rule = Rule(method, path, count, action)
        self.proxy.rules.append(rule)
        return rule

    def reopen(self) -> Any:
        return pyicechunk.Repository.open(self.direct_storage)


def _retries(tries: int) -> StorageRetriesSettings:
    return StorageRetriesSettings(max_tries=tries, initial_backoff_ms=10, max_backoff_ms=20)


@SPECS
@SHAPES
def test_tag_create(
    s3_server: Any, s3_bucket: str, proxy: FailingProxy, action: Action, tries: int, spec: int
) -> None:
    setup = Setup(s3_server, s3_bucket, proxy, spec, retries=_retries(tries))
    rule = setup.fail("PUT", _path(spec, TAG), action)
    setup.repo.create_tag("v1", setup.base)
    assert rule.answers == [b"HTTP/1.1 200 OK"]  # the server applied it; we never heard
    assert len(rule.seen) == (2 if action == "lose" else 1)  # resent once, or not at all
    assert setup.reopen().lookup_tag("v1") == setup.base
    assert setup.reopen().list_tags() == {"v1"}


@SPECS
@SHAPES
def test_commit(
    s3_server: Any, s3_bucket: str, proxy: FailingProxy, action: Action, tries: int, spec: int
) -> None:
    setup = Setup(s3_server, s3_bucket, proxy, spec, retries=_retries(tries))
    rule = setup.fail("PUT", _path(spec, BRANCH), action)
    session = setup.repo.writable_session("main")
    zarr.open_array(session.store, path="a", mode="r+")[:] = 7
    sid = session.commit("through the proxy")
    assert rule.answers == [b"HTTP/1.1 200 OK"]
    again = setup.reopen()
    assert again.lookup_branch("main") == sid
    # exactly once: one new commit on top of the base
    assert [s.message for s in again.ancestry(branch="main")][:2] == ["through the proxy", "base"]
    arr = zarr.open_array(again.readonly_session("main").store, path="a", mode="r")
    np.testing.assert_array_equal(arr[:], [7] * 4)


@SPECS
@SHAPES
def test_config_save(
    s3_server: Any, s3_bucket: str, proxy: FailingProxy, action: Action, tries: int, spec: int
) -> None:
    setup = Setup(s3_server, s3_bucket, proxy, spec, retries=_retries(tries))
    repo = setup.repo
    # spec 1: the first save creates config.yaml, the second replaces it; spec 2 updates repo
    for threshold in (11, 22):
        rule = setup.fail("PUT", _path(spec, CONFIG), action)
        repo = repo.reopen(
            config=pyicechunk.RepositoryConfig(inline_chunk_threshold_bytes=threshold)
        )
        repo.save_config()
        assert rule.answers == [b"HTTP/1.1 200 OK"]
        saved = pyicechunk.Repository.fetch_config(setup.direct_storage)
        assert saved is not None and saved.inline_chunk_threshold_bytes == threshold


def test_genuine_conflicts_still_fail(s3_server: Any, s3_bucket: str, proxy: FailingProxy) -> None:
    setup = Setup(s3_server, s3_bucket, proxy, retries=_retries(3))
    setup.direct.create_tag("v1", setup.base)
    rule = setup.fail("PUT", TAG, "lose")
    with pytest.raises(pyicechunk.IcechunkError, match="tag already exists"):
        setup.repo.create_tag("v1", setup.base)
    assert rule.answers[0].startswith(b"HTTP/1.1 412")  # the server refused it
    # a branch that moved after the session read it: the server refuses the update
    mine = setup.repo.writable_session("main")
    zarr.open_array(mine.store, path="a", mode="r+")[:] = 1
    theirs = setup.direct.writable_session("main")
    zarr.open_array(theirs.store, path="a", mode="r+")[:] = 2
    theirs_id = theirs.commit("theirs")
    with pytest.raises(pyicechunk.ConflictError):
        mine.commit("mine")
    assert setup.reopen().lookup_branch("main") == theirs_id


@SPECS
def test_failed_read_back_is_an_error(
    s3_server: Any, s3_bucket: str, proxy: FailingProxy, spec: int
) -> None:
    setup = Setup(s3_server, s3_bucket, proxy, spec, retries=_retries(2))
    setup.fail("PUT", _path(spec, TAG), "lose")
    head = setup.fail("HEAD", _path(spec, TAG), "refuse", count=10)
    if spec == 2:
        # repo itself tells: it names the copy this update made of the state it replaced
        setup.repo.create_tag("v1", setup.base)
    else:
        with pytest.raises(pyicechunk.IcechunkError) as info:
            setup.repo.create_tag("v1", setup.base)
        message = info.value.message
        assert "reading the object back to see whether this write landed failed too" in message
        assert "tag already exists" not in message
    assert len(head.seen) == 2  # the HEAD was tried as often as the settings allow
    assert setup.reopen().lookup_tag("v1") == setup.base  # it had landed


def test_without_metadata_nothing_is_stamped(
    s3_server: Any,
    s3_bucket: str,
    proxy: FailingProxy,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(object_store, "_warned_unstamped", False)
    setup = Setup(s3_server, s3_bucket, proxy, retries=_retries(3), unsafe_use_metadata=False)
    setup.fail("PUT", TAG, "lose")
    with caplog.at_level(logging.WARNING, logger="pyicechunk.storage"):
        # As in the reference: no write id to recognise the write by, so the resent write's
        # failed precondition reads as a conflict although the tag is there.
        with pytest.raises(pyicechunk.IcechunkError, match="tag already exists"):
            setup.repo.create_tag("v1", setup.base)
        setup.repo.create_tag("v2", setup.base)
    warnings = [r.getMessage() for r in caplog.records if "unsafe_use_metadata" in r.getMessage()]
    assert len(warnings) == 1
    assert "carry no write id" in warnings[0]
    head = s3_server.client().head_object(Bucket=s3_bucket, Key="r/refs/tag.v2/ref.json")
    assert head["Metadata"] == {}


def test_stamps_in_the_reference_spelling_are_recognised(
    s3_server: Any, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write id stored by another client is read back as such.

    The object is written with boto3 the way icechunk 2.3.0 leaves it (``icechunkwriteid``);
    a conditional create that reuses its id (the way a resent write does) fails its
    precondition and recognises the write as its own. tests/cloud/test_write_id_interop.py does
    the same with objects 2.3.0 itself wrote.
    """
    stamp = str(uuid.uuid4())
    s3_server.client().put_object(
        Bucket=s3_bucket,
        Key="r/refs/tag.v1/ref.json",
        Body=b"x",
        Metadata={"icechunkwriteid": stamp},
    )
    backend = _storage(s3_server.endpoint_url, s3_bucket)._backend
    assert asyncio.run(backend._read_write_id("refs/tag.v1/ref.json")) == stamp
    assert not asyncio.run(backend.put_if_absent("refs/tag.v1/ref.json", b"y"))  # not ours
    monkeypatch.setattr("pyicechunk.storage._new_write_id", lambda: stamp)
    assert asyncio.run(backend.put_if_absent("refs/tag.v1/ref.json", b"y"))  # ours


def test_our_stamp_is_the_reference_key(s3_server: Any, s3_bucket: str) -> None:
    repo = pyicechunk.Repository.create(_storage(s3_server.endpoint_url, s3_bucket), spec_version=1)
    repo.create_tag("v1", repo.lookup_branch("main"))
    client = s3_server.client()
    for key in ("r/refs/branch.main/ref.json", "r/refs/tag.v1/ref.json"):
        metadata = client.head_object(Bucket=s3_bucket, Key=key)["Metadata"]
        assert list(metadata) == ["icechunkwriteid"]
        assert uuid.UUID(metadata["icechunkwriteid"]).version == 4
