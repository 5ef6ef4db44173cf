"""Shared fixtures: an S3 server (moto) in a separate process, and a fresh bucket per test."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class S3Server:
    """Where the test S3 server listens; any access key is accepted."""

    endpoint_url: str
    region: str = "us-east-1"
    access_key_id: str = "x"
    secret_access_key: str = "x"

    def client(self) -> Any:
        """A boto3 client for inspecting the server directly."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A moto S3 server in its own process, on a free 127.0.0.1 port, for the whole session."""
    port = _free_port()
    proc = subprocess.Popen(
        # moto.server with atomic conditional writes (see _moto_server.py)
        [
            sys.executable,
            str(Path(__file__).with_name("_moto_server.py")),
            "-H",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).close()
            break
        except (urllib.error.URLError, OSError):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"moto server did not start on {url}") from None
            time.sleep(0.1)
    try:
        yield S3Server(url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A new, empty bucket on the test S3 server."""
    name = f"test-{uuid.uuid4().hex[:20]}"
    s3_server.client().create_bucket(Bucket=name)
    return name


STORAGE_KINDS = ("memory", "local", "s3")


@pytest.fixture
def new_storage(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    """Factory ``kind -> Storage``: a new, empty pyicechunk storage location of that kind.

    ``kind`` is ``'memory'``, ``'local'`` or ``'s3'``; the S3 server starts only when an S3
    location is asked for, so memory and local tests do not pay for it.
    """
    from pyicechunk.storage import in_memory_storage, local_filesystem_storage, s3_storage

    def make(kind: str) -> Any:
        if kind == "memory":
            return in_memory_storage()
        if kind == "local":
            return local_filesystem_storage(str(tmp_path / f"repo-{uuid.uuid4().hex[:8]}"))
        if kind == "s3":
            server: S3Server = request.getfixturevalue("s3_server")
            bucket: str = request.getfixturevalue("s3_bucket")
            return s3_storage(
                bucket=bucket,
                prefix=f"repo-{uuid.uuid4().hex[:8]}",
                endpoint_url=server.endpoint_url,
                allow_http=True,
                force_path_style=True,
                access_key_id=server.access_key_id,
                secret_access_key=server.secret_access_key,
                region=server.region,
            )
        raise ValueError(f"unknown storage kind {kind!r}; use one of {STORAGE_KINDS}")

    return make
