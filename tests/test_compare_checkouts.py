"""benchmarks/compare_checkouts.py: which cases run in which order, and the table it reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPT = BENCHMARKS / "compare_checkouts.py"


@pytest.fixture
def compare(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import compare_checkouts

    return compare_checkouts


def test_each_reader_runs_after_its_producer(compare: ModuleType) -> None:
    assert compare.groups(["read_one", "small_commits", "read_big", "write_big"]) == [
        ["write_many", "read_one"],
        ["small_commits"],
        ["write_big", "read_big"],
    ]


def test_report_of_a_saved_run(tmp_path: Path) -> None:
    # before: 1, 2, 3 s; after: 2, 4, 9 s -> medians 2 and 4, minimums 1 and 2.
    samples = {
        "small_commits": {
            "before": [{"commits": t, "ancestry": 0.5, "total": t + 0.5} for t in (1, 2, 3)],
            "after": [{"commits": t, "ancestry": 0.5, "total": t + 0.5} for t in (2, 4, 9)],
        }
    }
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps(samples))
    argv = ["before=x", "after=y", "--case", "small_commits", "--report", str(saved)]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *argv],
        capture_output=True,
        text=True,
        cwd=BENCHMARKS,
        check=True,
    )
    rows = {line.split("|")[2].strip(): line for line in done.stdout.splitlines() if "|" in line}
    commits = [cell.strip() for cell in rows["commits"].split("|")[1:-1]]
    # phase, before median, spread, min, after median, spread, min, ratio (ratio of minimums)
    assert commits[1:] == [
        "commits",
        "2.00 s",
        "100%",
        "1.00 s",
        "4.00 s",
        "175%",
        "2.00 s",
        "2.00 (2.00)",
    ]
    assert "medians of 3 repetitions" in done.stdout


def test_a_tree_must_be_a_checkout(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), f"old={tmp_path}"],
        capture_output=True,
        text=True,
        cwd=BENCHMARKS,
    )
    assert done.returncode == 2 and "a checkout" in done.stderr
