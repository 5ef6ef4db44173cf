"""Fixtures for the security suite: the implementation switch and recording servers."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from security_helpers import IMPLEMENTATIONS, implementation
from security_servers import RecordingServer


@pytest.fixture(params=IMPLEMENTATIONS)
def ic(request: pytest.FixtureRequest) -> ModuleType:
    """The implementation under test: ``pyicechunk`` or ``icechunk`` (1.1.21)."""
    return implementation(request.param)


@pytest.fixture(scope="module")
def recording_proxy(s3_server: Any) -> Iterator[RecordingServer]:
    """A recording HTTP proxy in front of the moto S3 server."""
    port = int(s3_server.endpoint_url.rsplit(":", 1)[1])
    proxy = RecordingServer(upstream_port=port)
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, s3_server: Any) -> None:
    """Credentials from the environment, as an authorization without credentials implies."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_access_key)
    monkeypatch.setenv("AWS_REGION", s3_server.region)
