"""Headless Chromium for the tests that look at pages: Debian's ``chromium``, driven by Playwright.

Playwright never downloads a browser here: it launches the system's Chromium
(``PYICECHUNK_CHROMIUM`` names another executable). Without one the tests fail with a message
that says how to install it; they are not skipped.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A Playwright ``Browser`` on the system's headless Chromium, for the whole session."""
    from playwright.sync_api import sync_playwright

    executable = chromium_executable()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=list(FLAGS), headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


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
