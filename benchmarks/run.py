"""Run the benchmark cases for several implementations side by side and report medians.

Every measurement runs ``benchmarks/cases.py`` in a fresh Python process, so no cache survives
from one measurement to the next (the operating system's page cache does). Before each
measurement the harness flushes every dirty page to disk (``os.sync``), so no measurement pays
for writing back what an earlier one left in memory. Within each
repetition the implementations take turns case by case (a reading case right after its own
producer), in an order that rotates from one repetition to the next, so slow drift of the
machine affects all of them alike.

Usage::

    python benchmarks/run.py              # pyicechunk, icechunk 1.1.21 and zarr, 5 repetitions
    python benchmarks/run.py --impl icechunk,zarr --repeat 3
    python benchmarks/run.py --quick      # small sizes, 1 repetition

The markdown table goes to stdout and to ``benchmarks/results/latest.md`` (raw timings to
``latest.json``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES_SCRIPT = HERE / "cases.py"
RESULTS = HERE / "results"

IMPLS = ("pyicechunk", "icechunk", "zarr")
OURS, REFERENCE, FLOOR = IMPLS

CASE_ORDER = ("write_big", "read_big", "write_many", "read_one", "small_commits")
# Reading cases read what the matching writing case left in the same directory.
PRODUCER = {"read_big": "write_big", "read_one": "write_many"}

TITLES = {
    "write_big": "(a) write 256 MiB float64, 1 MiB chunks, commit",
    "read_big": "(b) cold open + read all of (a)",
    "write_many": "(c) write 100k one-element chunks, commit",
    "read_one": "(d) cold open + read one chunk of (c)",
    "small_commits": "(e) 200 small commits + full ancestry",
}
QUICK_TITLES = {
    "write_big": "(a) write 16 MiB float64, 1 MiB chunks, commit",
    "read_big": "(b) cold open + read all of (a)",
    "write_many": "(c) write 5k one-element chunks, commit",
    "read_one": "(d) cold open + read one chunk of (c)",
    "small_commits": "(e) 20 small commits + full ancestry",
}

# Upper bounds for ours/reference, per (case, phase).
TARGETS = {
    ("write_big", "total"): 1.2,
    ("read_big", "total"): 1.2,
    ("write_many", "total"): 1.5,
    ("write_many", "commit"): 3.0,
    ("read_one", "total"): 2.0,
    ("small_commits", "total"): 1.5,
}


@dataclass
class Options:
    impls: list[str]
    cases: list[str]
    repeat: int
    quick: bool
    workdir: Path | None


def parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--impl",
        default=",".join(IMPLS),
        help=f"comma-separated implementations to compare (default: {','.join(IMPLS)})",
    )
    parser.add_argument(
        "--case",
        default=",".join(CASE_ORDER),
        help=f"comma-separated cases to run (default: all of {','.join(CASE_ORDER)})",
    )
    parser.add_argument("--repeat", type=int, help="repetitions (default 5, or 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument(
        "--workdir", type=Path, help="where repositories are written (default: a temp dir)"
    )
    ns = parser.parse_args(argv)
    impls = [i.strip() for i in ns.impl.split(",") if i.strip()]
    cases = [c.strip() for c in ns.case.split(",") if c.strip()]
    for impl in impls:
        if impl not in IMPLS:
            parser.error(f"unknown implementation {impl!r}; choose from {', '.join(IMPLS)}")
    for case in cases:
        if case not in CASE_ORDER:
            parser.error(f"unknown case {case!r}; choose from {', '.join(CASE_ORDER)}")
    repeat = ns.repeat if ns.repeat is not None else (1 if ns.quick else 5)
    if repeat < 1:
        parser.error("--repeat must be at least 1")
    return Options(impls, [c for c in CASE_ORDER if c in cases], repeat, ns.quick, ns.workdir)


def check_available(impls: list[str]) -> None:
    """Fail early, with a hint, when an implementation cannot run."""
    probes = {OURS: "import pyicechunk; pyicechunk.Repository", REFERENCE: "import icechunk"}
    for impl in impls:
        if impl in probes:
            done = subprocess.run(
                [sys.executable, "-c", probes[impl]], capture_output=True, text=True
            )
            if done.returncode != 0:
                sys.exit(
                    f"cannot benchmark {impl}: {done.stderr.strip().splitlines()[-1]}\n"
                    "install it (icechunk: pip install -e '.[bench]') or leave it out with --impl"
                )


def settle() -> None:
    """Write back what earlier measurements left dirty, so none is charged for another's I/O.

    An implementation that never syncs leaves its data in the page cache; the kernel writes it
    back some seconds later, in the middle of whichever measurement runs next.
    """
    if hasattr(os, "sync"):
        os.sync()


def measure(impl: str, case: str, directory: Path, quick: bool) -> dict[str, float]:
    settle()
    cmd = [sys.executable, str(CASES_SCRIPT), impl, case, str(directory)]
    if quick:
        cmd.append("--quick")
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"benchmark {case} for {impl} failed (exit {done.returncode}):\n{done.stderr}")
    timings: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return timings


def _groups(cases: list[str]) -> list[list[str]]:
    """Split ``cases`` (in CASE_ORDER) into runs of a producer followed by its readers."""
    groups: list[list[str]] = []
    for case in cases:
        if case in PRODUCER and groups and groups[-1][0] == PRODUCER[case]:
            groups[-1].append(case)
        else:
            groups.append([case])
    return groups


def run(opts: Options) -> dict[str, dict[str, dict[str, list[float]]]]:
    """Run everything; returns ``samples[case][impl][phase] -> [seconds per repetition]``."""
    samples: dict[str, dict[str, dict[str, list[float]]]] = {}
    # Producers run even when only their reader was asked for; their timings are then dropped.
    needed = [
        c for c in CASE_ORDER if c in opts.cases or any(PRODUCER.get(r) == c for r in opts.cases)
    ]
    base = opts.workdir or Path(tempfile.mkdtemp(prefix="pyicechunk-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        for rep in range(opts.repeat):
            shift = rep % len(opts.impls)
            order = opts.impls[shift:] + opts.impls[:shift]
            rep_dir = base / f"rep{rep}"
            for group in _groups(needed):
                # A reading case runs right after its own producer, for each implementation in
                # turn: every read then starts the same time after its data was written.
                # (Running all writers first made the first reader of each repetition the one
                # whose page cache had aged longest, and on a VM that pages out idle memory
                # that reader was often much slower, whichever implementation it was.)
                for impl, case in ((i, c) for i in order for c in group):
                    directory = rep_dir / impl / PRODUCER.get(case, case)
                    timings = measure(impl, case, directory, opts.quick)
                    print(
                        f"[{rep + 1}/{opts.repeat}] {case:<14} {impl:<10} "
                        f"{fmt_seconds(timings['total'])}",
                        file=sys.stderr,
                    )
                    if case in opts.cases:
                        by_phase = samples.setdefault(case, {}).setdefault(impl, {})
                        for phase, seconds in timings.items():
                            by_phase.setdefault(phase, []).append(seconds)
            shutil.rmtree(rep_dir)
    finally:
        if opts.workdir is None:
            shutil.rmtree(base, ignore_errors=True)
    return samples


def fmt_seconds(seconds: float) -> str:
    if seconds >= 10:
        return f"{seconds:.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.1f} ms"


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def report(samples: dict[str, dict[str, dict[str, list[float]]]], opts: Options) -> str:
    impls = opts.impls
    titles = QUICK_TITLES if opts.quick else TITLES
    has_ref_ratio = OURS in impls and REFERENCE in impls
    has_floor_ratio = OURS in impls and FLOOR in impls
    header = ["case", "phase", *impls]
    if has_ref_ratio:
        header += ["ours/ref", "target"]
    if has_floor_ratio:
        header.append("ours/zarr")
    if not has_ref_ratio and REFERENCE in impls and FLOOR in impls:
        header.append("ref/zarr")
    lines = [
        f"# pyicechunk benchmarks ({'quick' if opts.quick else 'full'})",
        "",
        f"- date: {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}",
        f"- machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}",
        f"- versions: pyicechunk {version('pyicechunk')}, icechunk {version('icechunk')}, "
        f"zarr {version('zarr')}, numpy {version('numpy')}",
        f"- medians of {opts.repeat} repetition(s), each measurement in a fresh process, "
        "local filesystem, zarr default codecs",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for case in opts.cases:
        by_impl = samples.get(case, {})
        phases: list[str] = []
        for impl in impls:
            for phase in by_impl.get(impl, {}):
                if phase not in phases:
                    phases.append(phase)
        # The total goes last, under the phases it sums.
        phases.sort(key=lambda p: p == "total")
        for phase in phases:
            med = {
                impl: statistics.median(by_impl[impl][phase])
                for impl in impls
                if phase in by_impl.get(impl, {})
            }
            row = [titles[case] if phase == phases[0] else "", phase]
            row += [fmt_seconds(med[i]) if i in med else "—" for i in impls]
            if has_ref_ratio:
                target = TARGETS.get((case, phase))
                if OURS in med and REFERENCE in med:
                    ratio = med[OURS] / med[REFERENCE]
                    row.append(f"{ratio:.2f}")
                    verdict = "" if target is None else (" ✓" if ratio <= target else " ✗")
                else:
                    row.append("—")
                    verdict = ""
                row.append("" if target is None else f"≤ {target}{verdict}")
            if has_floor_ratio:
                ok = OURS in med and FLOOR in med
                row.append(f"{med[OURS] / med[FLOOR]:.2f}" if ok else "—")
            if not has_ref_ratio and REFERENCE in impls and FLOOR in impls:
                ok = REFERENCE in med and FLOOR in med
                row.append(f"{med[REFERENCE] / med[FLOOR]:.2f}" if ok else "—")
            lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "zarr has no commits: its (a)/(c) rows are the writes alone, and (e) is the writes "
        "without commits or history.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    check_available(opts.impls)
    samples = run(opts)
    table = report(samples, opts)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.md").write_text(table)
    (RESULTS / "latest.json").write_text(json.dumps(samples, indent=1) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
