"""A program that used S3 storage exits cleanly, even with obstore's runtime threads in Python.

obstore's tokio threads enter Python to hand results to the awaiting event loop and to call
credential getters. On Python 3.11 to 3.13 one of them taking the GIL while the interpreter
finalizes aborts the process (SIGABRT, exit status -6, no message). The first two tests force
that window open: a loop whose wake-up write (the GIL-free step of ``call_soon_threadsafe``)
takes 0.5 s on a runtime thread, and a credentials getter that takes 0.5 s while its request is
abandoned. An object freed during finalization keeps the interpreter finalizing for 1.5 s, so a
runtime thread still in Python when the program ends wakes up during finalization. Without the
exit hook of ``pyicechunk.storage.obstore_exit`` both scripts abort every time. The last test
runs the plain script that first showed the crash (once in about 50 runs on a loaded machine)
a few times, as a guard.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

_PRELUDE = """
import asyncio, sys, threading, time, types
import pyicechunk as ic

ENDPOINT, BUCKET, PREFIX = sys.argv[1:4]


class SlowTeardown:
    # Bound now: module globals are gone when this runs, during finalization.
    def __del__(self, sleep=time.sleep):
        sleep(1.5)


def keep_finalizing_a_while():
    # Held by a module of its own: a runtime thread's frame keeps __main__'s globals alive.
    holder = types.ModuleType("slow_teardown_holder")
    holder.slow = SlowTeardown()
    sys.modules[holder.__name__] = holder


def storage(**credentials):
    if not credentials:
        credentials = {"access_key_id": "x", "secret_access_key": "x"}
    return ic.s3_storage(
        bucket=BUCKET, prefix=PREFIX, endpoint_url=ENDPOINT, allow_http=True,
        force_path_style=True, region="us-east-1", **credentials,
    )
"""

_SLOW_WAKE = """
MAIN = threading.get_ident()


class SlowWakeLoop(asyncio.SelectorEventLoop):
    def _write_to_self(self):
        if threading.get_ident() != MAIN:  # a runtime thread handing over a result
            time.sleep(0.5)
        super()._write_to_self()


async def main():
    done = False

    async def tick():  # keeps the loop polling, so it finds results before their wake-up
        while not done:
            await asyncio.sleep(0.001)

    ticker = asyncio.ensure_future(tick())
    print(await ic.Repository.exists_async(storage()))
    done = True
    await ticker


with asyncio.Runner(loop_factory=SlowWakeLoop) as runner:
    runner.run(main())
keep_finalizing_a_while()
"""

_SLOW_CREDENTIALS = """
def slow_credentials():
    time.sleep(0.5)
    return ic.S3StaticCredentials(access_key_id="x", secret_access_key="x")


async def main():
    st = storage(get_credentials=slow_credentials)
    try:
        await asyncio.wait_for(ic.Repository.exists_async(st), 0.1)
    except TimeoutError:
        print("abandoned")


asyncio.run(main())
keep_finalizing_a_while()
"""

_COMMIT = """
import zarr

repo = ic.Repository.create(storage())
session = repo.writable_session("main")
zarr.open_group(session.store, mode="w")
session.commit("root")
"""


def _start(tmp_path: Path, server: Any, bucket: str, body: str) -> subprocess.Popen[str]:
    script = tmp_path / f"exit_{uuid.uuid4().hex[:8]}.py"
    script.write_text(_PRELUDE + body)
    prefix = f"exit-{uuid.uuid4().hex[:8]}"
    return subprocess.Popen(
        [sys.executable, str(script), server.endpoint_url, bucket, prefix],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def _assert_clean_exit(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, f"exit status {proc.returncode}; stderr:\n{err}"
    assert "Fatal Python error" not in err and "panicked" not in err, err
    return out


@pytest.mark.parametrize(
    ("body", "printed"),
    [(_SLOW_WAKE, "False"), (_SLOW_CREDENTIALS, "abandoned")],
    ids=["result-handover", "credentials-getter"],
)
def test_exit_waits_for_runtime_threads_in_python(
    tmp_path: Path, s3_server: Any, s3_bucket: str, body: str, printed: str
) -> None:
    out = _assert_clean_exit(_start(tmp_path, s3_server, s3_bucket, body))
    assert out.strip() == printed


def test_committing_scripts_exit_cleanly(tmp_path: Path, s3_server: Any, s3_bucket: str) -> None:
    # Two at a time, to load the machine a little (the crash needs a runtime thread held off
    # the CPU while the program ends). Too few runs to catch the race reliably: a guard only.
    for _ in range(4):
        pair = [_start(tmp_path, s3_server, s3_bucket, _COMMIT) for _ in range(2)]
        for proc in pair:
            _assert_clean_exit(proc)
