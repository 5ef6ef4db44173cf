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


AZURITE_ACCOUNT = "devstoreaccount1"
# The Azure storage emulator's documented, public development key.
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
_AZURITE_DIR = Path.home() / ".cache" / "pyicechunk" / "azurite"


def _azurite_blob_executable() -> str:
    """azurite-blob from PATH, else from a cache directory, installed there with npm once."""
    import fcntl
    import shutil

    found = shutil.which("azurite-blob")
    if found:
        return found
    exe = _AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"
    _AZURITE_DIR.mkdir(parents=True, exist_ok=True)
    with open(_AZURITE_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # xdist workers install it once between them
        if not exe.exists():
            subprocess.run(
                [
                    "npm",
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--prefix",
                    str(_AZURITE_DIR),
                    "azurite",
                ],
                check=True,
                capture_output=True,
                timeout=600,
            )
    return str(exe)


@dataclass(frozen=True)
class AzuriteServer:
    """Where the Azure blob emulator listens (account devstoreaccount1, the public key)."""

    url: str

    def create_container(self, name: str) -> None:
        """Create a container with a Shared Key signed request (obstore cannot create one)."""
        import base64
        import hashlib
        import hmac
        from email.utils import formatdate

        date = formatdate(usegmt=True)
        version = "2021-08-06"
        headers = f"x-ms-date:{date}\nx-ms-version:{version}"
        resource = f"/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{name}\nrestype:container"
        to_sign = "\n".join(["PUT", *[""] * 11, headers, resource])
        key = base64.b64decode(AZURITE_KEY)
        signature = base64.b64encode(
            hmac.new(key, to_sign.encode(), hashlib.sha256).digest()
        ).decode()
        request = urllib.request.Request(
            f"{self.url}/{AZURITE_ACCOUNT}/{name}?restype=container",
            method="PUT",
            headers={
                "x-ms-date": date,
                "x-ms-version": version,
                "Authorization": f"SharedKey {AZURITE_ACCOUNT}:{signature}",
                "Content-Length": "0",
            },
        )
        urllib.request.urlopen(request, timeout=10).close()


@pytest.fixture(scope="session")
def azurite_server() -> Iterator[AzuriteServer]:
    """azurite's blob service on a free 127.0.0.1 port, in memory, for the whole session.

    obstore's emulator mode reads the endpoint from ``AZURITE_BLOB_STORAGE_URL`` when it builds
    a client, so the fixture sets it for this process.
    """
    import os

    port = _free_port()
    proc = subprocess.Popen(
        [
            _azurite_blob_executable(),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
            "--disableTelemetry",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"azurite did not start on port {port}") from None
            time.sleep(0.1)
    url = f"http://127.0.0.1:{port}"
    previous = os.environ.get("AZURITE_BLOB_STORAGE_URL")
    os.environ["AZURITE_BLOB_STORAGE_URL"] = url
    try:
        yield AzuriteServer(url)
    finally:
        if previous is None:
            os.environ.pop("AZURITE_BLOB_STORAGE_URL", None)
        else:
            os.environ["AZURITE_BLOB_STORAGE_URL"] = previous
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def azure_container(azurite_server: AzuriteServer) -> str:
    """A new, empty container on the azurite server."""
    name = f"test-{uuid.uuid4().hex[:20]}"
    azurite_server.create_container(name)
    return name


# icechunk 2.3.0 beside pyicechunk: ic2, pyic, impl, both, storage_spec (see tests/oracle/).
from oracle.fixtures import both, ic2, ic2_process, impl, pyic, storage_spec  # noqa: E402, F401
