"""A tiny HTTP proxy that fails chosen requests and forwards the rest to a server.

It runs an ``asyncio.start_server`` on 127.0.0.1 in a background thread. Each request is read
whole (headers and a Content-Length body, which is how obstore sends them), then forwarded to
the upstream server on a new connection with ``Connection: close``; the upstream's response is
relayed and the client connection closed. A request that matches a rule fails instead, in one
of three ways: refused with ``503 Service Unavailable`` without reaching the server, or applied
by the server with its response lost, replaced by a 503 (a gateway that timed out) or by a
connection closed without an answer. Clients may also use it as their HTTP proxy (requests with
an absolute URL). Or it passes, recording the server's answer; any rule can
first run a callback (another client's write, say) before the request goes on.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Action = Literal["refuse", "lose", "drop", "pass"]


@dataclass
class Rule:
    """Fail the first ``count`` requests with this method whose path contains ``path``.

    ``action`` is ``'refuse'`` (503, not forwarded), ``'lose'`` (forwarded, then 503 instead of
    the server's answer), ``'drop'`` (forwarded, then the connection closes unanswered) or
    ``'pass'`` (forwarded and answered as usual). ``before``, if given, runs (in a thread of
    its own) before each of those requests is handled.
    """

    method: str
    path: str
    count: int
    action: Action = "refuse"
    before: Callable[[], object] | None = None
    seen: list[float] = field(default_factory=list)  # monotonic arrival times of matches
    targets: list[str] = field(default_factory=list)  # their request targets, in that order
    answers: list[bytes] = field(default_factory=list)  # status lines the server gave, if asked


_UNAVAILABLE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
)


class FailingProxy:
    """Forward to ``upstream_port`` on 127.0.0.1, failing requests that match :attr:`rules`."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.rules: list[Rule] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._started.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            self._server = server
            self._started.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()
        # obstore keeps idle connections open: end their handlers before closing the loop
        self._server.close()
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.run_until_complete(asyncio.sleep(0))  # let the closed transports finish
        self._loop.close()

    def close(self) -> None:
        """Stop serving and release the loop (connections in flight are dropped)."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = [line for line in lines[1:] if line]
                length = 0
                for line in headers:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                body = await reader.readexactly(length) if length else b""
                rule = self._match(method, target)
                if rule is None:
                    await self._forward(method, target, headers, body, writer)
                    return
                if rule.before is not None:
                    await asyncio.to_thread(rule.before)
                if rule.action == "refuse":
                    writer.write(_UNAVAILABLE)
                    await writer.drain()
                    continue
                response = await self._send_upstream(method, target, headers, body)
                rule.answers.append(response.split(b"\r\n", 1)[0])
                if rule.action == "pass":
                    writer.write(response)
                    await writer.drain()
                    return
                if rule.action == "drop":
                    return
                writer.write(_UNAVAILABLE)
                await writer.drain()
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, asyncio.CancelledError):
                pass

    def _match(self, method: str, target: str) -> Rule | None:
        """The first matching rule with failures left; every matching rule records the arrival."""
        now = time.monotonic()
        failing = None
        for rule in self.rules:
            if method == rule.method and rule.path in target:
                rule.seen.append(now)
                rule.targets.append(target)
                if failing is None and len(rule.seen) <= rule.count:
                    failing = rule
        return failing

    async def _forward(
        self,
        method: str,
        target: str,
        headers: list[str],
        body: bytes,
        writer: asyncio.StreamWriter,
    ) -> None:
        writer.write(await self._send_upstream(method, target, headers, body))
        await writer.drain()

    async def _send_upstream(
        self, method: str, target: str, headers: list[str], body: bytes
    ) -> bytes:
        """Send one request to the server and return its whole response."""
        if target.startswith("http://"):  # sent to us as an HTTP proxy: the server wants a path
            target = "/" + target.removeprefix("http://").partition("/")[2]
        kept = [h for h in headers if h.split(":", 1)[0].strip().lower() != "connection"]
        request = "\r\n".join([f"{method} {target} HTTP/1.1", *kept, "Connection: close", "", ""])
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        up_writer.write(request.encode("latin-1") + body)
        await up_writer.drain()
        response = await up_reader.read()
        up_writer.close()
        return response
