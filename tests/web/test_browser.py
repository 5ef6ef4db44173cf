"""The history browser end to end: a real server on 127.0.0.1, its JSON, and the page in headless
Chromium (loads, draws the commits, a click shows a snapshot's diff, a plot; screenshots)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _chromium import ink
from cli.repos import build_history

import pyicechunk
from pyicechunk.web import serve


@pytest.fixture(params=[1, 2], ids=["spec1", "spec2"])
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, dict[str, str]]]:
    """``(url, ids)``: the browser serving a history built here (a spec-1 and a spec-2
    repository), on a free loopback port."""
    path = tmp_path / "repo"
    ids = build_history(pyicechunk.local_filesystem_storage(str(path)), request.param)
    repo = pyicechunk.Repository.open(pyicechunk.local_filesystem_storage(str(path)))
    assert repo.spec_version == request.param
    stop = threading.Event()
    ready: list[str] = []
    started = threading.Event()

    def on_ready(url: str) -> None:
        ready.append(url)
        started.set()

    worker = threading.Thread(
        target=serve, args=(repo,), kwargs={"port": 0, "on_ready": on_ready, "stop": stop}
    )
    worker.start()
    try:
        assert started.wait(30), "the server did not start"
        yield ready[0], ids
    finally:
        stop.set()
        worker.join(30)


def fetch(url: str, **kwargs: Any) -> tuple[int, Any]:
    request = urllib.request.Request(url, **kwargs)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        return e.code, json.loads(body) if body.startswith(b"{") else body


def test_the_json_endpoints(served: tuple[str, dict[str, str]]) -> None:
    url, ids = served
    assert url.startswith("http://127.0.0.1:")
    status, graph = fetch(url + "api/graph")
    assert status == 200 and graph["svg"].startswith("<svg")
    assert [s["id"] for s in graph["snapshots"]] == [ids["d1"], ids["c2"], ids["c1"], ids["root"]]
    assert graph["svg"].count("data-snapshot=") == 2 * 4  # each circle and each label
    status, snap = fetch(url + f"api/snapshot/{ids['c2'][:5]}")
    assert status == 200 and snap["id"] == ids["c2"]
    assert snap["changes"]["updated_chunks"] == {"/data/line": [[0]]}
    assert "Chunks updated:" in snap["changes"]["text"]
    status, tree = fetch(url + "api/tree/v1")
    assert [n["path"] for n in tree["nodes"]] == ["/", "/data", "/data/line", "/data/plane"]
    status, array = fetch(url + "api/array/main?path=/data/plane")
    assert (array["shape"], array["chunks_total"], array["chunks_written"]) == ([6, 4], 4, 4)
    status, values = fetch(url + "api/values/main?path=/data/plane&slice=1:3,::2")
    assert values == {"selection": "1:3,::2", "shape": [2, 2], "values": [[4, 6], [8, 10]]}
    assert fetch(url + "api/values/main?path=/data/line")[1]["values"][:2] == [-1, -1]
    for bad in ("api/snapshot/nope", "api/array/main?path=/data", "api/tree/ZZZZZZZZ"):
        status, body = fetch(url + bad)
        assert status == 404 and body["error"], bad
    # Read-only: nothing but GET, and only requests addressed to this machine.
    assert fetch(url + "api/graph", method="POST")[0] == 405
    assert fetch(url + "api/graph", headers={"Host": "attacker.example"})[0] == 400


def test_the_page_in_headless_chromium(
    served: tuple[str, dict[str, str]], page: Any, tmp_path: Path
) -> None:
    url, ids = served
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("response", lambda r: problems.append(r.url) if r.status >= 400 else None)
    page.goto(url)
    page.wait_for_selector("#graph svg circle")
    # The graph shows the repository's commits, with their branches and tags.
    assert page.locator("#graph svg circle").count() == 4
    drawn = page.locator("#graph svg").text_content() or ""
    for name in ("c2", "c1", "d1", "root"):
        assert ids[name][:8] in drawn
    assert "(main) second: edit the line" in drawn and "(dev) dev: a note" in drawn
    assert "4 snapshots, 2 branches" in page.locator("#status").inner_text()
    # Clicking a snapshot shows its message, metadata and diff against its parent.
    page.locator(f"circle[data-snapshot='{ids['c2']}']").click()
    page.wait_for_function("document.getElementById('diff').textContent.includes('/data/line')")
    assert page.locator("#snapshot-title").inner_text() == f"snapshot {ids['c2'][:8]} (main)"
    assert "Chunks updated:" in page.locator("#diff").inner_text()
    assert ids["c1"] in page.locator("#snapshot-meta").inner_text()  # its parent
    page.wait_for_selector("#tree li.array")
    # An array: its metadata, chunk statistics and a heat map of a 2-d slice.
    page.locator("#tree li.array", has_text="plane").click()
    page.wait_for_selector("#plot canvas.heatmap")
    meta = page.locator("#array-meta").inner_text()
    assert re.search(r"chunks written\s+4 of 4", meta) and "[6,4]" in meta
    shot = tmp_path / "history-browser.png"
    page.screenshot(path=str(shot), full_page=True)
    assert ink(page, shot.read_bytes()) > 20_000, f"{shot} looks blank"
    # A 1-d array is a line plot; a selection typed in replots it.
    page.locator("#tree li.array", has_text="line").click()
    page.wait_for_selector("#plot svg.line-plot polyline")
    assert page.locator("#slice").input_value() == "0:50"
    page.locator("#slice").fill("10:20")
    page.locator("#slice-form button").click()
    page.wait_for_function(
        "document.querySelector('#plot polyline') && "
        "document.querySelector('#plot polyline').getAttribute('points').split(' ').length === 10"
    )
    # The first snapshot has no parent to compare with.
    page.locator(f"text[data-snapshot='{ids['root']}']").click()
    page.wait_for_function("document.getElementById('diff').textContent.includes('first')")
    page.wait_for_selector("#tree li:text('(empty: no groups or arrays yet)')")
    page.screenshot(path=str(tmp_path / "history-browser-root.png"), full_page=True)
    assert problems == []


def test_the_browser_leaves_this_thread_without_an_event_loop(page: Any) -> None:
    # Playwright's sync API keeps its loop marked as running in the thread that drives it; it
    # runs on a thread of its own, so the tests after this one can still use asyncio.run.
    page.set_content("<p>drawn</p>")
    assert page.locator("p").inner_text() == "drawn"
    with pytest.raises(RuntimeError, match="no running event loop"):
        asyncio.get_running_loop()
    assert asyncio.run(asyncio.sleep(0, "ran")) == "ran"


def test_serve_verb_starts_the_server(tmp_path: Path) -> None:
    path = tmp_path / "repo"
    ids = build_history(pyicechunk.local_filesystem_storage(str(path)), 2)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyicechunk", "serve", str(path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
        assert found, (line, proc.stderr.read() if proc.poll() is not None else "")
        status, graph = fetch(found.group(1) + "api/graph")
        assert status == 200 and graph["snapshots"][0]["id"] == ids["d1"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
