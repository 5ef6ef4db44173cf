"""Run the benchmark cases for several implementations side by side and report medians.

Every measurement runs ``benchmarks/cases.py`` in a fresh Python process, so no cache survives
from one measurement to the next (the operating system's page cache does). Before each
measurement the harness flushes every dirty page to disk (``os.sync``), so no measurement pays
for writing back what an earlier one left in memory. Within each repetition the implementations
take turns case by case (a reading case right after its own producer), in an order that rotates
from one repetition to the next, so slow drift of the machine affects all of them alike.

Usage::

    python benchmarks/run.py              # every implementation and case, 5 repetitions
    python benchmarks/run.py --impl pyicechunk,icechunk --case tiny_commits --repeat 3
    python benchmarks/run.py --quick      # small sizes, 1 repetition
    python benchmarks/run.py --impl pyicechunk,pyicechunk-nosync,icechunk --case tiny_commits

The markdown table goes to stdout and to ``benchmarks/results/latest.md`` (raw timings and
counts to ``latest.json``). A measurement that fails is reported in the table and makes the
exit status 1 after the table is written; an optional implementation that cannot run here
(pyicechunk on spec 2, until it can create spec-2 repositories) is reported as n/a.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from cases import FULL, QUICK, Sizes
from reference2 import icechunk2_python

HERE = Path(__file__).resolve().parent
CASES_SCRIPT = HERE / "cases.py"
RESULTS = HERE / "results"


def _this_python() -> str:
    return sys.executable


@dataclass(frozen=True)
class Impl:
    """One column of the table: a variant of ``cases.py`` and the Python that runs it."""

    label: str
    python: Callable[[], str]
    # Reported as n/a when its probe fails, instead of stopping the run.
    optional: bool = False
    # Run when --impl is not given (the no-sync variants are asked for by name).
    default: bool = True


IMPLS: dict[str, Impl] = {
    "pyicechunk": Impl("pyicechunk (spec 1)", _this_python),
    "icechunk": Impl("icechunk 1.1.21", _this_python),
    "zarr": Impl("zarr LocalStore", _this_python),
    "icechunk2": Impl("icechunk 2.3.0 (spec 2)", icechunk2_python),
    "pyicechunk2": Impl("pyicechunk (spec 2)", _this_python, optional=True),
    "pyicechunk-nosync": Impl("pyicechunk (spec 1, no sync)", _this_python, default=False),
    "pyicechunk2-nosync": Impl(
        "pyicechunk (spec 2, no sync)", _this_python, optional=True, default=False
    ),
}
DEFAULT_IMPLS = [name for name, impl in IMPLS.items() if impl.default]
FLOOR = "zarr"
OURS = "pyicechunk"
# Ratio columns: (label, ours, reference), each ratio between repositories of one spec version.
PAIRS = (
    ("spec 1", "pyicechunk", "icechunk"),
    ("spec 2", "pyicechunk2", "icechunk2"),
    ("spec 1 no sync", "pyicechunk-nosync", "icechunk"),
    ("spec 2 no sync", "pyicechunk2-nosync", "icechunk2"),
)


@dataclass(frozen=True)
class Case:
    title: Callable[[Sizes], str]
    producer: str | None = None  # the worker case that writes what this one reads
    floor: bool = True  # whether zarr's LocalStore runs it (it has no refs or maintenance)


def _mib(s: Sizes) -> int:
    return s.big_shape[0] * s.big_shape[1] * 8 // 2**20


def _k(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"


CASES: dict[str, Case] = {
    "write_big": Case(lambda s: f"(a) write {_mib(s)} MiB float64, 1 MiB chunks, commit"),
    "read_big": Case(lambda s: "(b) cold open + read all of (a)", producer="write_big"),
    "write_many": Case(lambda s: f"(c) write {_k(s.many_chunks)} one-element chunks, commit"),
    "read_one": Case(lambda s: "(d) cold open + read one chunk of (c)", producer="write_many"),
    "small_commits": Case(lambda s: f"(e) {s.small_commits} small commits + full ancestry"),
    "tiny_commits": Case(lambda s: f"(f) {s.tiny_commits} one-chunk commits + ancestry"),
    "branch_tag": Case(
        lambda s: f"(g) {s.ref_pairs} branch + tag create/delete pairs", floor=False
    ),
    "expire_gc": Case(
        lambda s: f"(h) expire + GC, {s.expire_history}-commit history, keep {s.expire_keep}",
        floor=False,
    ),
    "rewrite_manifests": Case(
        lambda s: f"(i) rewrite_manifests, {s.rewrite_arrays} arrays x {s.rewrite_chunks} chunks",
        floor=False,
    ),
    "read_split": Case(
        lambda s: (
            f"(j) cold open + read one chunk, {_k(s.split_chunks)} chunks split into "
            f"{s.split_manifests} manifests"
        ),
        producer="build_split",
    ),
}
# Producers that are not cases of their own; their repository is built once per run and read
# in every repetition (a million chunks take minutes to write, and reading changes nothing).
SHARED_PRODUCERS = {"build_split"}

# Upper bounds for ours/reference, per (pair, case, phase), from the project's issues.
_BOTH_SPECS = {
    ("tiny_commits", "commits"): 1.3,  # with durability on; 1.0 is the target with it off
    ("tiny_commits", "ancestry"): 1.0,
    ("branch_tag", "branch"): 1.2,
    ("branch_tag", "tag"): 1.2,
    ("branch_tag", "total"): 1.2,
    ("expire_gc", "total"): 1.5,
    ("rewrite_manifests", "total"): 1.2,
}
TARGETS = {
    ("spec 1", "write_big", "total"): 1.2,
    ("spec 1", "read_big", "total"): 1.2,
    ("spec 1", "write_many", "total"): 1.5,
    ("spec 1", "write_many", "commit"): 3.0,
    ("spec 1", "read_one", "total"): 2.0,
    ("spec 1", "small_commits", "total"): 1.5,
    ("spec 2", "write_big", "total"): 1.1,
    ("spec 2", "read_big", "total"): 1.1,
    ("spec 2", "write_many", "total"): 1.0,
    ("spec 2", "read_one", "total"): 1.5,
    ("spec 2", "small_commits", "commits"): 1.5,
    ("spec 2", "small_commits", "ancestry"): 1.0,
    ("spec 2", "read_split", "total"): 1.2,
    **{(pair, c, p): t for pair in ("spec 1", "spec 2") for (c, p), t in _BOTH_SPECS.items()},
    # Without syncs pyicechunk does what the references do, so the small-operation targets
    # apply as they are, and (f) commits has the no-sync target.
    **{
        (pair, c, p): 1.0 if (c, p) == ("tiny_commits", "commits") else t
        for pair in ("spec 1 no sync", "spec 2 no sync")
        for (c, p), t in _BOTH_SPECS.items()
    },
}


@dataclass
class Options:
    impls: list[str]
    cases: list[str]
    repeat: int
    quick: bool
    workdir: Path | None
    results: Path


def _selection(
    parser: argparse.ArgumentParser, value: str, known: list[str], what: str
) -> list[str]:
    chosen = [c.strip() for c in value.split(",") if c.strip()]
    for name in chosen:
        if name not in known:
            parser.error(f"unknown {what} {name!r}; choose from {', '.join(known)}")
    return [name for name in known if name in chosen]


def parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--impl",
        default=",".join(DEFAULT_IMPLS),
        help=(
            f"comma-separated implementations to compare (default: {','.join(DEFAULT_IMPLS)}; "
            f"also: {','.join(i for i in IMPLS if i not in DEFAULT_IMPLS)})"
        ),
    )
    parser.add_argument(
        "--case",
        default=",".join(CASES),
        help=f"comma-separated cases to run (default: all of {','.join(CASES)})",
    )
    parser.add_argument("--repeat", type=int, help="repetitions (default 5, or 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument(
        "--workdir", type=Path, help="where repositories are written (default: a temp dir)"
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="where latest.md and latest.json go (default: benchmarks/results)",
    )
    ns = parser.parse_args(argv)
    impls = _selection(parser, ns.impl, list(IMPLS), "implementation")
    cases = _selection(parser, ns.case, list(CASES), "case")
    repeat = ns.repeat if ns.repeat is not None else (1 if ns.quick else 5)
    if repeat < 1:
        parser.error("--repeat must be at least 1")
    return Options(impls, cases, repeat, ns.quick, ns.workdir, ns.results)


class WorkerFailed(Exception):
    """A measurement process exited with an error; the message is its last stderr line."""


@dataclass
class Sample:
    phases: dict[str, float]
    counts: dict[str, int]


def settle() -> None:
    """Write back what earlier measurements left dirty, so none is charged for another's I/O.

    An implementation that never syncs leaves its data in the page cache; the kernel writes it
    back some seconds later, in the middle of whichever measurement runs next.
    """
    if hasattr(os, "sync"):
        os.sync()


def measure(
    python: str, impl: str, case: str, directory: Path, quick: bool, *, quiet: bool = False
) -> Sample:
    """Run one case of ``cases.py`` in a fresh process; ``quiet`` keeps a failure's traceback
    off stderr (the probe of an optional implementation)."""
    settle()
    cmd = [python, str(CASES_SCRIPT), impl, case, str(directory)]
    if quick:
        cmd.append("--quick")
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        if not quiet:
            print(
                f"{case} for {impl} failed (exit {done.returncode}):\n{done.stderr}",
                file=sys.stderr,
            )
        raise WorkerFailed(lines[-1])
    # icechunk's Rust logging also writes to stdout; the result is the last line.
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return Sample(result["phases"], result["counts"])


def probe(opts: Options, base: Path) -> tuple[dict[str, str], dict[str, str]]:
    """``(pythons, unavailable)``: the interpreter of each implementation that runs here, and
    the reason for each optional one that does not. Stops the run for a required one."""
    pythons: dict[str, str] = {}
    unavailable: dict[str, str] = {}
    for impl in opts.impls:
        try:
            python = IMPLS[impl].python()
            quiet = IMPLS[impl].optional
            measure(python, impl, "probe", base / "probe" / impl, opts.quick, quiet=quiet)
            pythons[impl] = python
        except (WorkerFailed, RuntimeError) as exc:
            if not IMPLS[impl].optional:
                sys.exit(
                    f"cannot benchmark {impl}: {exc}\ninstall it (icechunk 1.1.21: pip install "
                    "-e '.[bench]'; icechunk 2.3.0 needs a Python >= 3.12) or leave it out "
                    "with --impl"
                )
            unavailable[impl] = str(exc)
            print(f"{impl}: n/a (not supported yet: {exc})", file=sys.stderr)
    shutil.rmtree(base / "probe", ignore_errors=True)
    return pythons, unavailable


def _groups(names: list[str]) -> list[list[str]]:
    """Split ``names`` into runs of a producer followed by its readers."""
    groups: list[list[str]] = []
    for name in names:
        producer = CASES[name].producer if name in CASES else None
        if producer is not None and groups and groups[-1][0] == producer:
            groups[-1].append(name)
        else:
            groups.append([name])
    return groups


@dataclass
class Results:
    samples: dict[str, dict[str, list[Sample]]]  # case -> impl -> one per repetition
    failures: dict[str, dict[str, str]]  # case -> impl -> error
    unavailable: dict[str, str]  # impl -> reason


def run(opts: Options) -> Results:
    base = opts.workdir or Path(tempfile.mkdtemp(prefix="pyicechunk-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        pythons, unavailable = probe(opts, base)
        runner = _Runner(opts, Results({}, {}, unavailable), pythons, base)
        runnable = [i for i in opts.impls if i in pythons]
        # Producers run even when only their reader was asked for; their timings are dropped.
        needed: list[str] = []
        for case in opts.cases:
            producer = CASES[case].producer
            if producer is not None and producer not in needed:
                needed.append(producer)
            if case not in needed:
                needed.append(case)
        for rep in range(opts.repeat):
            shift = rep % max(len(runnable), 1)
            order = runnable[shift:] + runnable[:shift]
            for group in _groups(needed):
                # A reading case runs right after its own producer, for each implementation in
                # turn: every read then starts the same time after its data was written.
                # (Running all writers first made the first reader of each repetition the one
                # whose page cache had aged longest, and on a VM that pages out idle memory
                # that reader was often much slower, whichever implementation it was.)
                for impl in order:
                    runner.run_group(group, impl, rep)
            shutil.rmtree(base / f"rep{rep}", ignore_errors=True)
    finally:
        if opts.workdir is None:
            shutil.rmtree(base, ignore_errors=True)
        else:
            shutil.rmtree(base / "shared", ignore_errors=True)
    return runner.results


@dataclass
class _Runner:
    """Runs groups of cases and collects what they report."""

    opts: Options
    results: Results
    pythons: dict[str, str]
    base: Path
    # (impl, shared producer) -> its error: its readers fail in every repetition.
    broken: dict[tuple[str, str], str] = field(default_factory=dict)

    def run_group(self, group: list[str], impl: str, rep: int) -> None:
        """Run one producer and its readers (or one case) for one implementation."""
        producer_error: str | None = None
        for name in group:
            case = CASES.get(name)  # None for a producer that is not a case of its own
            if impl == FLOOR and case is not None and not case.floor:
                continue
            owner = case.producer if case is not None and case.producer else name
            if producer_error is not None:
                self._failed(name, impl, f"{owner} failed: {producer_error}")
                continue
            shared = owner in SHARED_PRODUCERS
            directory = (self.base / ("shared" if shared else f"rep{rep}")) / impl / owner
            if name in SHARED_PRODUCERS and ((impl, name) in self.broken or rep > 0):
                producer_error = self.broken.get((impl, name))
                continue
            try:
                sample = measure(self.pythons[impl], impl, name, directory, self.opts.quick)
            except WorkerFailed as exc:
                self._failed(name, impl, str(exc))
                if len(group) > 1 and name == group[0]:
                    producer_error = str(exc)
                    if shared:
                        self.broken[impl, name] = producer_error
                continue
            total = sample.phases.get("total", 0.0)
            print(
                f"[{rep + 1}/{self.opts.repeat}] {name:<18} {impl:<12} {fmt_seconds(total)}",
                file=sys.stderr,
            )
            if name in self.opts.cases:
                self.results.samples.setdefault(name, {}).setdefault(impl, []).append(sample)

    def _failed(self, name: str, impl: str, error: str) -> None:
        if name in self.opts.cases:
            self.results.failures.setdefault(name, {})[impl] = error


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


def _median_phases(samples: list[Sample]) -> dict[str, float]:
    phases = list(dict.fromkeys(p for s in samples for p in s.phases))  # in the order timed
    return {p: statistics.median(s.phases[p] for s in samples if p in s.phases) for p in phases}


def report(results: Results, opts: Options) -> str:
    impls = opts.impls
    sizes = QUICK if opts.quick else FULL
    pairs = [(label, o, r) for label, o, r in PAIRS if o in impls and r in impls]
    has_floor = OURS in impls and FLOOR in impls
    header = ["case", "phase", *(IMPLS[i].label for i in impls)]
    for label, _, _ in pairs:
        header += [f"{label} ours/ref", "target"]
    if has_floor:
        header.append("ours/zarr")
    lines = [
        f"# pyicechunk benchmarks ({'quick' if opts.quick else 'full'})",
        "",
        f"- date: {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}",
        f"- machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}",
        f"- versions: pyicechunk {version('pyicechunk')}, icechunk {version('icechunk')}, "
        f"zarr {version('zarr')}, numpy {version('numpy')}; icechunk 2.3.0 in its own "
        "Python 3.12 venv",
        f"- medians of {opts.repeat} repetition(s), each measurement in a fresh process, "
        "local filesystem, zarr default codecs",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for case in opts.cases:
        by_impl = results.samples.get(case, {})
        failed = results.failures.get(case, {})
        med = {impl: _median_phases(s) for impl, s in by_impl.items()}
        phases: list[str] = []
        for impl in impls:
            phases += [p for p in med.get(impl, {}) if p not in phases]
        # The total goes last, under the phases it sums; a single phase is its own total.
        phases.sort(key=lambda p: p == "total")
        if len(phases) <= 2:
            phases = ["total"]
        for phase in phases:
            row = [CASES[case].title(sizes) if phase == phases[0] else "", phase]
            for impl in impls:
                if impl in results.unavailable:
                    row.append("n/a")
                elif impl in failed:
                    row.append("failed")
                elif phase in med.get(impl, {}):
                    row.append(fmt_seconds(med[impl][phase]))
                else:
                    row.append("—")
            for label, ours, ref in pairs:
                target = TARGETS.get((label, case, phase))
                a, b = med.get(ours, {}).get(phase), med.get(ref, {}).get(phase)
                if a is not None and b is not None and b > 0:
                    ratio = a / b
                    verdict = "" if target is None else (" ✓" if ratio <= target else " ✗")
                    row.append(f"{ratio:.2f}")
                else:
                    verdict = ""
                    row.append("n/a" if ours in results.unavailable else "—")
                row.append("" if target is None else f"≤ {target}{verdict}")
            if has_floor:
                a, b = med.get(OURS, {}).get(phase), med.get(FLOOR, {}).get(phase)
                row.append(f"{a / b:.2f}" if a is not None and b else "—")
            lines.append("| " + " | ".join(row) + " |")
    lines += _counts_table(results, opts)
    lines += ["", "Notes:", ""]
    if FLOOR in impls:
        lines.append(
            "- zarr has no commits: its (a)/(c) rows are the writes alone, (e)/(f) the writes "
            "without commits or history; it has no refs or maintenance, so (g) to (i) are not "
            "run for it; for (j) it stores only the chunk that is read (a plain store reads one "
            "chunk the same way however many others exist)."
        )
    lines.append(
        "- targets (ours/ref, same spec version) from the project's issues: small operations "
        "(f) to (i) on both specs, spec 2 (a) to (e), manifest splitting (j); (f) commits ≤ 1.3 "
        "is with durability on (≤ 1.0 is the target with it off, in the no-sync columns)."
    )
    if any(i.endswith("-nosync") for i in impls):
        lines.append(
            "- no sync: pyicechunk with local_filesystem_storage(path, durable=False), which "
            "makes no fsync at all, as the references; a power loss may lose its recent commits."
        )
    for impl, reason in results.unavailable.items():
        lines.append(f"- {IMPLS[impl].label}: n/a (not supported yet: {reason})")
    for case, errors in results.failures.items():
        for impl, error in errors.items():
            lines.append(f"- {case} failed for {IMPLS[impl].label}: {error}")
    if opts.quick:
        lines.append("- quick sizes: a smoke run of the harness, not a measurement.")
    return "\n".join(lines) + "\n"


def _counts_table(results: Results, opts: Options) -> list[str]:
    """Counts the cases report (manifest reads, objects deleted...), one row per count."""
    rows: list[str] = []
    for case in opts.cases:
        by_impl = results.samples.get(case, {})
        names: list[str] = []
        for samples in by_impl.values():
            for s in samples:
                names += [n for n in s.counts if n not in names]
        for name in names:
            row = [case, name]
            for impl in opts.impls:
                values = sorted({s.counts[name] for s in by_impl.get(impl, []) if name in s.counts})
                if not values:
                    row.append("n/a" if impl in results.unavailable else "—")
                else:
                    row.append(str(values[0]) if len(values) == 1 else f"{values[0]}..{values[-1]}")
            rows.append("| " + " | ".join(row) + " |")
    if not rows:
        return []
    header = ["case", "count", *(IMPLS[i].label for i in opts.impls)]
    return [
        "",
        "Counts (per measurement; a range when repetitions differ):",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *rows,
    ]


def _to_json(results: Results) -> dict[str, object]:
    return {
        "samples": {
            case: {impl: [vars(s) for s in samples] for impl, samples in by_impl.items()}
            for case, by_impl in results.samples.items()
        },
        "failures": results.failures,
        "unavailable": results.unavailable,
    }


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    results = run(opts)
    table = report(results, opts)
    opts.results.mkdir(parents=True, exist_ok=True)
    (opts.results / "latest.md").write_text(table)
    (opts.results / "latest.json").write_text(json.dumps(_to_json(results), indent=1) + "\n")
    print(table)
    return 1 if results.failures else 0


if __name__ == "__main__":
    sys.exit(main())
