"""Real HTTP servers on 127.0.0.1 that record every request they receive.

:class:`RecordingServer` either serves a fixed set of objects itself (with ``Range`` support,
which is all a virtual chunk read needs) or forwards each request to an upstream server (the
moto S3 server), so a test can prove which requests reached the network and which never did.
"""

from __future__ import annotations

import http.client
import http.server
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


@dataclass(frozen=True)
class Request:
    """One request as the server saw it: method, raw target and headers."""

    method: str
    target: str
    headers: Mapping[str, str]


class RecordingServer:
    """A threaded HTTP/1.1 server on a free 127.0.0.1 port that records its requests.

    Parameters
    ----------
    objects
        Paths (as requested, e.g. ``/data/x.bin``) and their bytes, served with 200 or 206.
        Anything else is a 404.
    upstream_port
        When given, every request is forwarded to this 127.0.0.1 port instead and the upstream's
        answer relayed.
    """

    def __init__(
        self, objects: Mapping[str, bytes] | None = None, upstream_port: int | None = None
    ) -> None:
        self.objects = dict(objects or {})
        self.upstream_port = upstream_port
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def targets(self) -> list[str]:
        """The request targets seen so far, in arrival order."""
        with self._lock:
            return [r.target for r in self.requests]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def _record(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests.append(Request(handler.command, handler.path, dict(handler.headers)))

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self) -> None:
                server._record(self)
                body = self._body()
                if server.upstream_port is not None:
                    self._forward(body)
                else:
                    self._serve()

            def _serve(self) -> None:
                data = server.objects.get(self.path)
                if data is None:
                    self._reply(404, b"not found", {})
                    return
                headers = {"ETag": '"fixed-etag"', "Accept-Ranges": "bytes"}
                match = _RANGE.match(self.headers.get("Range") or "")
                if match is None:
                    self._reply(200, data, headers)
                    return
                start = int(match.group(1))
                end = int(match.group(2)) if match.group(2) else len(data) - 1
                end = min(end, len(data) - 1)
                headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                self._reply(206, data[start : end + 1], headers)

            def _forward(self, body: bytes) -> None:
                assert server.upstream_port is not None
                conn = http.client.HTTPConnection("127.0.0.1", server.upstream_port, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    response = conn.getresponse()
                    payload = response.read()
                    dropped = ("connection", "transfer-encoding", "content-length")
                    kept = {k: v for k, v in response.getheaders() if k.lower() not in dropped}
                    length = (
                        response.getheader("Content-Length") if self.command == "HEAD" else None
                    )
                    self._reply(response.status, payload, kept, length)
                finally:
                    conn.close()

            def _reply(
                self,
                status: int,
                payload: bytes,
                headers: Mapping[str, str],
                length: str | None = None,
            ) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", length or str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle

        return Handler
