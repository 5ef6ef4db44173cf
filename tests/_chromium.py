"""Headless Chromium for the tests that look at pages: Debian's ``chromium``, driven by Playwright.

Playwright never downloads a browser here: it launches the system's Chromium
(``PYICECHUNK_CHROMIUM`` names another executable). Without one the tests fail with a message
that says how to install it; they are not skipped.

Playwright's sync API runs an asyncio event loop in the thread that starts it and leaves that
loop marked as running between calls, so in the test thread every later ``asyncio.run`` (ours,
zarr's, a reference's) would fail. Here Playwright lives in a thread of its own: the fixtures
hand out :class:`Remote` objects whose attribute reads and method calls run on that thread, so
no test thread ever holds a Playwright loop. Event handlers (``page.on(...)``) run on the
Playwright thread, with its own objects.
"""

from __future__ import annotations

import base64
import os
import queue
import shutil
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest

CHROMIUM_ENV = "PYICECHUNK_CHROMIUM"
# No GPU, no sandbox (root in a container), nothing that would reach the network.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
# Launching Chromium and closing it take a few seconds; allow for a busy machine.
START_STOP_SECONDS = 120


def chromium_executable() -> str:
    """The Chromium to launch, or a test failure saying how to get one."""
    configured = os.environ.get(CHROMIUM_ENV)
    found = configured or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found or not os.access(found, os.X_OK):
        pytest.fail(
            f"headless Chromium is needed for this test and was not found "
            f"({CHROMIUM_ENV}={configured!r}, no chromium on PATH): install Debian's package "
            "with `apt-get install -y chromium`, or point "
            f"{CHROMIUM_ENV} at a Chromium executable",
            pytrace=False,
        )
    return found


class PlaywrightThread:
    """Playwright and one launched Chromium, owned by a thread that runs every call on them."""

    def __init__(self, executable: str) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        launched: Future[Any] = Future()
        self._thread = threading.Thread(
            target=self._serve, args=(executable, launched), name="playwright", daemon=True
        )
        self._thread.start()
        self.browser = Remote(launched.result(timeout=START_STOP_SECONDS), self)

    def _serve(self, executable: str, launched: Future[Any]) -> None:
        from playwright.sync_api import sync_playwright

        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=executable, args=list(FLAGS), headless=True
                )
                launched.set_result(browser)
                try:
                    while (call := self._calls.get()) is not None:
                        function, result = call
                        try:
                            result.set_result(function())
                        except BaseException as exc:  # the caller re-raises it
                            result.set_exception(exc)
                finally:
                    browser.close()
        except BaseException as exc:
            if launched.done():
                raise
            launched.set_exception(exc)

    def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``function(*args, **kwargs)`` on the Playwright thread; Remote arguments are passed
        as the objects they stand for and Playwright results come back as Remotes."""
        args = tuple(_local(a) for a in args)
        kwargs = {k: _local(v) for k, v in kwargs.items()}
        if threading.current_thread() is self._thread:  # from an event handler
            return self._wrap(function(*args, **kwargs))
        result: Future[Any] = Future()
        self._calls.put((lambda: function(*args, **kwargs), result))
        return self._wrap(result.result())

    def _wrap(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self._wrap(v) for v in value]
        if type(value).__module__.startswith("playwright."):
            return Remote(value, self)
        return value

    def close(self) -> None:
        """Close the browser and Playwright, and wait for the thread to end."""
        self._calls.put(None)
        self._thread.join(START_STOP_SECONDS)
        assert not self._thread.is_alive(), "Playwright did not shut down"


class Remote:
    """A Playwright object that lives on the Playwright thread, used as if it were here."""

    def __init__(self, target: Any, owner: PlaywrightThread) -> None:
        self._target = target
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        # Properties of Playwright objects may talk to the browser: read them there too.
        value = self._owner.call(getattr, self._target, name)
        if callable(value) and not isinstance(value, Remote):
            return lambda *args, **kwargs: self._owner.call(value, *args, **kwargs)
        return value

    def __repr__(self) -> str:
        return f"Remote({self._target!r})"


def _local(value: Any) -> Any:
    return value._target if isinstance(value, Remote) else value


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A Playwright ``Browser`` on the system's headless Chromium, for the whole session."""
    owner = PlaywrightThread(chromium_executable())
    try:
        yield owner.browser
    finally:
        owner.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A new page in its own browser context (no state shared between tests)."""
    context = chromium.new_context(viewport={"width": 1200, "height": 800})
    try:
        yield context.new_page()
    finally:
        context.close()


def ink(page: Any, png: bytes, background: tuple[int, int, int] = (255, 255, 255)) -> int:
    """How many pixels of the PNG ``png`` differ from ``background`` (decoded by Chromium)."""
    source = "data:image/png;base64," + base64.b64encode(png).decode()
    count: int = page.evaluate(
        """async ([source, bg]) => {
            const img = new Image();
            img.src = source;
            await img.decode();
            const canvas = document.createElement("canvas");
            canvas.width = img.naturalWidth;
            canvas.height = img.naturalHeight;
            const ctx = canvas.getContext("2d");
            ctx.drawImage(img, 0, 0);
            const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
            let n = 0;
            for (let i = 0; i < data.length; i += 4) {
                if (Math.abs(data[i] - bg[0]) + Math.abs(data[i + 1] - bg[1])
                    + Math.abs(data[i + 2] - bg[2]) > 30) n++;
            }
            return n;
        }""",
        [source, list(background)],
    )
    return count
