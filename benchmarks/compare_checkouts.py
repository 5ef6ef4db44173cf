"""Compare pyicechunk source trees (two commits, say) on the same benchmark cases, in one run.

Each tree is a checkout of this repository (``git worktree add /tmp/before <commit>``); its
``src/`` goes first on ``PYTHONPATH`` of every measurement, so the worker imports pyicechunk
from that tree while the harness (``cases.py`` of this checkout) stays the same for all of them.
Every measurement is a fresh process, as in ``run.py``, with ``os.sync()`` before it. Within a
repetition the trees take turns group by group (a producer and its readers), in an order that
rotates from one repetition to the next, so load from other work on the machine falls on all
of them alike.

Usage::

    git worktree add /tmp/pyic-before <commit>
    python benchmarks/compare_checkouts.py before=/tmp/pyic-before after=. --repeat 5
    git worktree remove /tmp/pyic-before

The table gives, per case and phase, each tree's median, its spread ((max - min) / median over
the repetitions, the noise of that column) and the ratio of each tree's median to the first
tree's (and, in parentheses, the ratio of the minimums: on a loaded machine the least
disturbed run is the steadier estimate). ``--json FILE`` also writes every sample;
``--report FILE`` tabulates such a file again without running anything.
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
from dataclasses import dataclass
from pathlib import Path

from cases import FULL, QUICK
from run import CASES, fmt_seconds, settle

HERE = Path(__file__).resolve().parent
CASES_SCRIPT = HERE / "cases.py"
DEFAULT_CASES = ["write_big", "read_big", "write_many", "read_one", "small_commits"]


@dataclass(frozen=True)
class Tree:
    label: str
    root: Path

    def env(self) -> dict[str, str]:
        path = [str(self.root / "src"), os.environ.get("PYTHONPATH", "")]
        return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="+", metavar="LABEL=DIR", help="checkouts to compare")
    parser.add_argument("--case", default=",".join(DEFAULT_CASES), help="comma-separated cases")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--json", type=Path, help="write every sample to this file")
    parser.add_argument(
        "--report", type=Path, metavar="JSON", help="tabulate a run saved with --json, run nothing"
    )
    args = parser.parse_args(argv)
    trees = []
    for spec in args.trees:
        label, sep, directory = spec.partition("=")
        root = Path(directory).resolve()
        checkout = (root / "src" / "pyicechunk").is_dir() or args.report is not None
        if not sep or not label or not checkout:
            parser.error(f"{spec!r}: expected LABEL=DIR with DIR a checkout (DIR/src/pyicechunk)")
        trees.append(Tree(label, root))
    args.trees = trees
    args.case = [c.strip() for c in args.case.split(",") if c.strip()]
    unknown = [c for c in args.case if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; known: {', '.join(CASES)}")
    return args


def check_import(tree: Tree) -> str:
    """The pyicechunk the workers of ``tree`` import; stops the run if it is not the tree's."""
    code = "import pyicechunk; print(pyicechunk.__file__)"
    done = subprocess.run(
        [sys.executable, "-c", code], env=tree.env(), capture_output=True, text=True
    )
    found = done.stdout.strip()
    if done.returncode != 0 or not Path(found).resolve().is_relative_to(tree.root):
        sys.exit(
            f"{tree.label}: pyicechunk does not import from {tree.root}: {found or done.stderr}"
        )
    return found


def measure(tree: Tree, case: str, directory: Path, quick: bool) -> dict[str, float]:
    settle()
    cmd = [sys.executable, str(CASES_SCRIPT), "pyicechunk", case, str(directory)]
    if quick:
        cmd.append("--quick")
    done = subprocess.run(cmd, env=tree.env(), capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{case} failed for {tree.label}:\n{done.stderr}")
    phases: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])["phases"]
    return phases


def groups(cases: list[str]) -> list[list[str]]:
    """Each case after its producer (run untimed if not asked for), producers first in a group."""
    out: list[list[str]] = []
    for case in cases:
        producer = CASES[case].producer
        if producer is None:
            if not any(g[0] == case for g in out):
                out.append([case])
            continue
        group = next((g for g in out if g[0] == producer), None)
        if group is None:
            group = [producer]
            out.append(group)
        group.append(case)
    return out


Samples = dict[str, dict[str, list[dict[str, float]]]]  # case -> tree label -> per repetition


def run(args: argparse.Namespace) -> Samples:
    samples: Samples = {}
    trees: list[Tree] = args.trees
    with tempfile.TemporaryDirectory(prefix="pyicechunk-compare-") as base:
        for rep in range(args.repeat):
            shift = rep % len(trees)
            order = trees[shift:] + trees[:shift]
            for group in groups(args.case):
                for tree in order:
                    directory = Path(base) / f"rep{rep}" / tree.label / group[0]
                    for case in group:
                        phases = measure(tree, case, directory, args.quick)
                        total = phases.get("total", 0.0)
                        print(
                            f"[{rep + 1}/{args.repeat}] {case:<14} {tree.label:<10} "
                            f"{fmt_seconds(total)}",
                            file=sys.stderr,
                        )
                        if case in args.case:
                            samples.setdefault(case, {}).setdefault(tree.label, []).append(phases)
                    shutil.rmtree(directory, ignore_errors=True)
    return samples


def report(samples: Samples, args: argparse.Namespace) -> str:
    trees: list[Tree] = args.trees
    sizes = QUICK if args.quick else FULL
    first = trees[0].label
    header = ["case", "phase"]
    for tree in trees:
        header += [f"{tree.label} median", "spread", "min"]
    header += [f"{tree.label}/{first} (min)" for tree in trees[1:]]
    repeat = max(len(v) for by_tree in samples.values() for v in by_tree.values())
    lines = [
        f"medians of {repeat} repetitions; spread = (max - min) / median of a column; the ratio "
        "of minimums in parentheses (the least disturbed run of each: on a loaded machine the "
        "steadier estimate)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for case in args.case:
        by_tree = samples.get(case, {})
        phases = list(dict.fromkeys(p for s in by_tree.get(first, []) for p in s))
        phases.sort(key=lambda p: p == "total")
        if len(phases) <= 2:
            phases = ["total"]
        for phase in phases:
            row = [CASES[case].title(sizes) if phase == phases[0] else "", phase]
            medians, mins = {}, {}
            for tree in trees:
                values = [s[phase] for s in by_tree.get(tree.label, []) if phase in s]
                med = statistics.median(values)
                medians[tree.label], mins[tree.label] = med, min(values)
                spread = (max(values) - min(values)) / med if med > 0 else 0.0
                row += [fmt_seconds(med), f"{spread:.0%}", fmt_seconds(min(values))]
            for t in trees[1:]:
                if medians[first] > 0 and mins[first] > 0:
                    ratio = medians[t.label] / medians[first]
                    row.append(f"{ratio:.2f} ({mins[t.label] / mins[first]:.2f})")
                else:
                    row.append("—")
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.report is not None:
        print(report(json.loads(args.report.read_text()), args))
        return 0
    for tree in args.trees:
        print(f"{tree.label}: {check_import(tree)}", file=sys.stderr)
    samples = run(args)
    if args.json is not None:
        args.json.write_text(json.dumps(samples, indent=1) + "\n")
    print(report(samples, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
