"""What pyicechunk's durability rule costs in case (a), measured against icechunk 1.1.21.

pyicechunk makes every object a commit references durable before the branch moves: chunk files
start writing back to disk as they are written (``sync_file_range``) and the commit waits for
them (``syncfs``/``fdatasync``). icechunk 1.1.21 never syncs, so its data is still only in the
page cache when its commit returns. This diagnostic runs case (a) of ``run.py`` three ways, in
fresh processes, alternating, after ``os.sync()``:

- ``pyicechunk``: as shipped;
- ``pyicechunk-no-sync``: the same code with the write-back and the barrier switched off (a
  monkeypatch in the child process: NOT a supported mode, and not durable);
- ``icechunk``: the reference.

The gap between the first two is the price of durability on this machine; the gap between the
last two is everything else.

Usage::

    python benchmarks/bench_durability.py --repeat 9
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VARIANTS = ("pyicechunk", "pyicechunk-no-sync", "icechunk")


def _child(variant: str, directory: str) -> dict[str, float]:
    sys.path.insert(0, str(HERE))
    if variant == "pyicechunk-no-sync":
        import pyicechunk.storage.local as local

        async def no_barrier(self: Any, keys: Any) -> None:
            return None

        local._start_writeback = None
        local.LocalFileSystemBackend.make_durable = no_barrier  # type: ignore[method-assign]
    import cases

    worker = cases.VARIANTS["icechunk" if variant == "icechunk" else "pyicechunk"]
    cases._module(worker)
    return cases.write_big(worker, Path(directory), cases.FULL).phases


def main(argv: list[str]) -> None:
    if argv[:1] == ["--one"]:
        print(json.dumps(_child(argv[1], argv[2])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args(argv)
    samples: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="bench-durability-") as tmp:
        for rep in range(args.repeat):
            shift = rep % len(VARIANTS)
            for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                directory = Path(tmp) / variant
                shutil.rmtree(directory, ignore_errors=True)
                os.sync()
                done = subprocess.run(
                    [sys.executable, __file__, "--one", variant, str(directory)],
                    capture_output=True,
                    text=True,
                )
                if done.returncode != 0:
                    raise SystemExit(f"{variant} failed:\n{done.stderr[-4000:]}")
                timing = json.loads(done.stdout.strip().splitlines()[-1])
                samples[variant].append(timing)
                total = timing["total"]
                print(f"[{rep + 1}/{args.repeat}] {variant:<19} {total:.3f} s", flush=True)
    ref = {p: statistics.median(s[p] for s in samples["icechunk"]) for p in ("write", "commit")}
    ref_total = statistics.median(s["total"] for s in samples["icechunk"])
    print()
    print(f"Case (a), 256 MiB in 1 MiB chunks + commit; medians of {args.repeat}; seconds")
    print()
    print("| variant | write | commit | total | total / icechunk |")
    print("|---|---|---|---|---|")
    for variant in VARIANTS:
        med = {p: statistics.median(s[p] for s in samples[variant]) for p in ref}
        total = statistics.median(s["total"] for s in samples[variant])
        print(
            f"| {variant} | {med['write']:.3f} | {med['commit']:.3f} | {total:.3f} "
            f"| {total / ref_total:.2f} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
