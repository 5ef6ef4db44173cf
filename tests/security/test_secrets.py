"""Credentials never show up in reprs, strings, error messages (with their causes) or logs.

Static S3 credentials are used against the moto server, including requests that fail (a bucket
that does not exist, an endpoint that answers 404 to everything, an endpoint nobody listens on,
a virtual chunk that is missing), with pyicechunk's logs at debug level.
"""

from __future__ import annotations

import logging
import socket
import traceback
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import zarr
from security_servers import RecordingServer

import pyicechunk as ic

KEY_ID = "AKIASECURITYSUITE42X"
SECRET = "sEcReT/security+suite=KEY"
TOKEN = "ToKeN-security-suite-SESSION"
BEARER = "bEaReR-security-suite-TOKEN"
# The key id's first four characters are shown (as icechunk 2 does); the rest never is.
HIDDEN = (KEY_ID[4:], SECRET, TOKEN, BEARER)


def _assert_clean(text: str) -> None:
    for secret in HIDDEN:
        assert secret not in text, f"a credential leaked: {text[:500]}"


def _describe(value: object) -> str:
    return f"{value!r}\n{value}"


def _failure_text(action: Callable[[], Any]) -> str:
    """The message, repr and whole traceback (causes included) of the error ``action`` raises."""
    with pytest.raises(ic.IcechunkError) as info:
        action()
    error = info.value
    return "\n".join([str(error), repr(error), *traceback.format_exception(error)])


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    ic.set_logs_filter("debug")
    caplog.set_level(logging.DEBUG)
    try:
        yield caplog
    finally:
        ic.set_logs_filter(None)


def _s3(server: Any, bucket: str, endpoint: str | None = None) -> Any:
    return ic.s3_storage(
        bucket=bucket,
        prefix="repo",
        endpoint_url=endpoint or server.endpoint_url,
        allow_http=True,
        force_path_style=True,
        access_key_id=KEY_ID,
        secret_access_key=SECRET,
        session_token=TOKEN,
        region=server.region,
    )


def test_credential_objects_hide_secrets() -> None:
    static = ic.S3StaticCredentials(KEY_ID, SECRET, TOKEN)
    objects = [
        static,
        ic.s3_credentials(access_key_id=KEY_ID, secret_access_key=SECRET, session_token=TOKEN),
        ic.s3_static_credentials(
            access_key_id=KEY_ID, secret_access_key=SECRET, session_token=TOKEN
        ),
        ic.containers_credentials(
            {"s3://b/": ic.s3_credentials(access_key_id=KEY_ID, secret_access_key=SECRET)}
        ),
        ic.gcs_credentials(bearer_token=BEARER),
        ic.gcs_credentials(service_account_key=SECRET),
        ic.azure_credentials(access_key=SECRET),
        ic.azure_credentials(sas_token=TOKEN),
        ic.azure_credentials(bearer_token=BEARER),
        ic.gcs_storage(bucket="b", prefix="p", bearer_token=BEARER),
        ic.gcs_storage(bucket="b", prefix="p", service_account_key=SECRET),
        ic.azure_storage(account="acct", container="c", prefix="p", access_key=SECRET),
        ic.azure_storage(account="acct", container="c", prefix="p", sas_token=TOKEN),
    ]
    for value in objects:
        _assert_clean(_describe(value))
    assert KEY_ID[:4] in repr(static)


def test_s3_repository_with_static_credentials(
    s3_server: Any, s3_bucket: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    storage = _s3(s3_server, s3_bucket)
    _assert_clean(_describe(storage))
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(4,), chunks=(2,), dtype="i4")[:] = 1
    session.commit("one")
    reopened = ic.Repository.open(_s3(s3_server, s3_bucket))
    for value in (repo, reopened, repo.config, session, session.store, reopened.storage):
        _assert_clean(_describe(value))
    # failing requests: a missing object, a bucket that does not exist
    _assert_clean(_failure_text(lambda: reopened.readonly_session(snapshot_id="0" * 20)))
    missing = _s3(s3_server, f"missing-{uuid.uuid4().hex[:12]}")
    _assert_clean(_failure_text(lambda: ic.Repository.open(missing)))
    _assert_clean(_failure_text(lambda: ic.Repository.create(missing)))
    _assert_clean(debug_logs.text)


def test_failing_endpoints(s3_server: Any, debug_logs: pytest.LogCaptureFixture) -> None:
    answers_404 = RecordingServer()
    try:
        storage = _s3(s3_server, "b", endpoint=answers_404.url)
        _assert_clean(_failure_text(lambda: ic.Repository.open(storage)))
        _assert_clean(_failure_text(lambda: ic.Repository.create(storage)))
        assert answers_404.requests  # the requests did go out (signed), and failed
    finally:
        answers_404.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{s.getsockname()[1]}"
    storage = _s3(s3_server, "b", endpoint=nobody)
    settings = ic.StorageSettings(
        retries=ic.StorageRetriesSettings(max_tries=1, initial_backoff_ms=1, max_backoff_ms=1)
    )
    config = ic.RepositoryConfig(storage=settings)
    _assert_clean(_failure_text(lambda: ic.Repository.open(storage, config)))
    _assert_clean(debug_logs.text)


def test_virtual_chunks_with_static_credentials(
    s3_server: Any, s3_bucket: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="v/data.bin", Body=np.arange(4, dtype="<i4").tobytes())
    prefix = f"s3://{s3_bucket}/v/"
    config = ic.RepositoryConfig.default()
    store = ic.s3_store(
        region=s3_server.region,
        endpoint_url=s3_server.endpoint_url,
        allow_http=True,
        force_path_style=True,
        s3_compatible=True,
    )
    config.set_virtual_chunk_container(ic.VirtualChunkContainer(prefix, store))
    access = ic.containers_credentials(
        {prefix: ic.s3_credentials(access_key_id=KEY_ID, secret_access_key=SECRET)}
    )
    repo = ic.Repository.create(ic.in_memory_storage(), config, access)
    session = repo.writable_session("main")
    arr = zarr.create_array(
        session.store, name="a", shape=(8,), chunks=(4,), dtype="<i4", compressors=None
    )
    session.store.set_virtual_ref("a/c/0", f"{prefix}data.bin", offset=0, length=16)
    session.store.set_virtual_ref("a/c/1", f"{prefix}missing.bin", offset=0, length=16)
    np.testing.assert_array_equal(arr[:4], np.arange(4))
    _assert_clean(_failure_text(lambda: arr[4:]))
    for value in (repo, config, session, repo.authorized_virtual_container_prefixes):
        _assert_clean(_describe(value))
    _assert_clean(debug_logs.text)
