"""Front fake-gcs-server with the one XML-API call it lacks: a plain object upload.

obstore (the object_store crate) talks to Google Cloud Storage through the XML API. The
upstream fake-gcs-server serves that API for downloads, HEAD, deletes and listings, but answers
an XML ``PUT /{bucket}/{object}`` with ``400 invalid uploadType``: it only knows the JSON-API
uploads (fsouza/fake-gcs-server#1164). This process takes the clients' requests and relays each
one to the server unchanged, except such a PUT, which it sends as the equivalent JSON-API
multipart upload:

- ``x-goog-if-generation-match: N`` becomes ``ifGenerationMatch=N`` (``0``: the object must not
  exist), which the server checks and applies under one lock, so preconditions stay atomic;
- ``x-goog-meta-*`` headers become the object's custom metadata, ``Content-Type`` its type;
- the server's JSON answer becomes the XML API's: ``ETag`` and ``x-goog-generation`` headers;
  a failed precondition stays ``412``.

Everything that decides an outcome (generations, preconditions, metadata, ranges, listings) is
fake-gcs-server's; this only changes the envelope. XML multipart uploads and server-side copies
are refused with ``501``: pyicechunk does not send them below its multipart threshold.

It listens on two free 127.0.0.1 ports, one plain HTTP and one HTTPS with the given certificate
(clients that refuse plain HTTP), and prints ``HTTP_PORT HTTPS_PORT`` on one line when ready.
Forwarded requests carry ``Host: 127.0.0.1:SERVER_PORT``, the server's ``-public-host``, which
it needs to route XML-API paths.

Usage: ``python _fake_gcs_uploads.py SERVER_PORT CERT_PEM KEY_PEM``.
"""

from __future__ import annotations

import http.client
import json
import ssl
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote, urlsplit

# Hop-by-hop headers are the relay's own business on each side.
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
_META = "x-goog-meta-"


def _xml_error(code: str, message: str) -> bytes:
    return (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()


class _Relay(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep clients' connections alive between requests
    server_port = 0

    def setup(self) -> None:
        # The TLS handshake happens here, on the connection's own thread, not in accept().
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _exchange(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        # A new connection per request: a kept-alive one that the server closed meanwhile
        # would need a resend, and a resent write may already have been applied.
        conn = http.client.HTTPConnection("127.0.0.1", self.server_port, timeout=60)
        try:
            conn.request(method, target, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()

    def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes, length: int) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(length))
        if self.close_connection:  # the client asked for it: tell it not to reuse the socket
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _xml_reply(self, status: int, code: str, message: str) -> None:
        error = _xml_error(code, message)
        self._reply(status, [("Content-Type", "application/xml")], error, len(error))

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _relay(self) -> None:
        body = self._body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Host"] = f"127.0.0.1:{self.server_port}"
        status, reply_headers, data = self._exchange(self.command, self.path, headers, body)
        length = len(data)
        if self.command == "HEAD":  # no body came, so pass on the size the server announced
            length = int(dict((k.lower(), v) for k, v in reply_headers).get("content-length", 0))
        self._reply(status, reply_headers, data, length)

    do_GET = do_HEAD = do_DELETE = do_POST = do_PATCH = _relay

    def do_PUT(self) -> None:
        parts = urlsplit(self.path)
        if parts.path.startswith(("/storage/", "/upload/")):  # the JSON API
            self._relay()
            return
        bucket, _, name = parts.path.lstrip("/").partition("/")
        body = self._body()
        if parts.query or not name or "x-goog-copy-source" in self.headers:
            # a part of an XML multipart upload, a copy, or no object at all
            self._xml_reply(501, "NotImplemented", "only plain object uploads are translated")
            return
        self._upload(unquote(bucket), unquote(name), body)

    def _upload(self, bucket: str, name: str, content: bytes) -> None:
        content_type = self.headers.get("Content-Type") or "application/octet-stream"
        resource = {
            "name": name,
            "contentType": content_type,
            "metadata": {
                k.lower()[len(_META) :]: v
                for k, v in self.headers.items()
                if k.lower().startswith(_META)
            },
        }
        boundary = uuid.uuid4().hex
        body = b"".join(
            [
                f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode(),
                json.dumps(resource).encode(),
                f"\r\n--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode(),
                content,
                f"\r\n--{boundary}--\r\n".encode(),
            ]
        )
        query = f"uploadType=multipart&name={quote(name, safe='')}"
        generation = self.headers.get("x-goog-if-generation-match")
        if generation is not None:
            query += f"&ifGenerationMatch={quote(generation, safe='')}"
        target = f"/upload/storage/v1/b/{quote(bucket, safe='')}/o?{query}"
        headers = {"Content-Type": f"multipart/related; boundary={boundary}"}
        status, _, data = self._exchange("POST", target, headers, body)
        if status == 200:
            stored = json.loads(data)
            etag, generation = f'"{stored["etag"]}"', stored["generation"]
            self._reply(200, [("ETag", etag), ("x-goog-generation", generation)], b"", 0)
        elif status == 412:
            self._xml_reply(412, "PreconditionFailed", "At least one of the pre-conditions failed.")
        else:
            self._reply(status, [("Content-Type", "application/json")], data, len(data))


def main() -> None:
    server_port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    _Relay.server_port = server_port
    plain = ThreadingHTTPServer(("127.0.0.1", 0), _Relay)
    secure = ThreadingHTTPServer(("127.0.0.1", 0), _Relay)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    secure.socket = context.wrap_socket(
        secure.socket, server_side=True, do_handshake_on_connect=False
    )
    for server in (plain, secure):
        server.daemon_threads = True
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    print(plain.server_address[1], secure.server_address[1], flush=True)
    secure.serve_forever()


if __name__ == "__main__":
    main()
