"""The corruption fuzz (``corruption_fuzz.py``), bounded for every test run.

The campaign runs in its own process: a case that hangs ends that process (its watchdog names
the case) and cannot take the test session down with it. The default run damages 240 copies
of a spec-1 repository (40 per damage class) and 120 of a spec-2 one with a fixed seed;
``PYICECHUNK_FUZZ_ITERATIONS`` and ``PYICECHUNK_FUZZ_SEED`` change that, and the ``slow``
variant runs 3000 iterations of each on another seed. The counts per damage class and per
object kind are printed (``pytest -s``). Damage that no reader can notice without a content
checksum (``silent``, see the fuzz module) fails the test too, since objects carry one;
``PYICECHUNK_FUZZ_STRICT=0`` tolerates it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

FUZZ = Path(__file__).with_name("corruption_fuzz.py")
ITERATIONS = int(os.environ.get("PYICECHUNK_FUZZ_ITERATIONS", "240"))
# Spec-2 cases cost more (the ops log is a chain of files): half as many by default.
ITERATIONS_V2 = int(os.environ.get("PYICECHUNK_FUZZ_ITERATIONS", "120"))
SPECS = pytest.mark.parametrize("spec", [1, 2], ids=["spec1", "spec2"])
SEED = int(os.environ.get("PYICECHUNK_FUZZ_SEED", "20261201"))


def workdir(tmp_path: Path) -> Path:
    # A memory filesystem when there is one: every case commits, and fsync on a disk would
    # dominate the run. It is still the local filesystem backend on a real filesystem.
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(dir=shm, prefix="pyicechunk-fuzz-"))
    return tmp_path


def campaign(tmp_path: Path, iterations: int, seed: int, timeout: float, spec: int) -> dict:
    where = workdir(tmp_path)
    args = ["--iterations", str(iterations), "--seed", str(seed), "--workdir", str(where)]
    args += ["--spec", str(spec)]
    try:
        proc = subprocess.run(
            [sys.executable, str(FUZZ), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
    finally:
        if where != tmp_path:
            shutil.rmtree(where, ignore_errors=True)
    assert proc.returncode in (0, 1), (
        f"the fuzz process failed (exit {proc.returncode}; 3 means a case hung):\n"
        f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    report: dict = json.loads(proc.stdout[proc.stdout.index("{") :])
    print(
        f"\ncorruption fuzz, spec {spec}, seed",
        seed,
        "\n",
        json.dumps({k: report[k] for k in ("by_damage", "by_object")}, indent=1),
    )
    return report


def check(report: dict, iterations: int) -> None:
    counted = sum(sum(c.values()) for c in report["by_damage"].values())
    assert counted == iterations
    assert not report["bugs"], json.dumps(report["bugs"], indent=1)[:20000]
    if os.environ.get("PYICECHUNK_FUZZ_STRICT", "1") == "1":
        assert not report["silent"], json.dumps(report["silent"], indent=1)[:20000]
    # Sanity: the damage is mostly noticed, and some of it is harmless.
    detected = sum(c.get("detected", 0) for c in report["by_damage"].values())
    assert detected > iterations // 2


@SPECS
def test_corruption_fuzz(tmp_path: Path, spec: int) -> None:
    iterations = ITERATIONS if spec == 1 else ITERATIONS_V2
    check(campaign(tmp_path, iterations, SEED, timeout=600, spec=spec), iterations)


@pytest.mark.slow
@SPECS
def test_corruption_fuzz_long(tmp_path: Path, spec: int) -> None:
    check(campaign(tmp_path, 3000, SEED + 1, timeout=3600, spec=spec), 3000)
