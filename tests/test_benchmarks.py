"""The benchmark harness works: every case runs and checks what it reads, manifest reads are
counted, the table says what it measured, and one small run goes end to end in fresh processes
(icechunk 2.3.0 under its own venv; pyicechunk on spec 2 measured or reported as n/a).

These tests time nothing: figures come only from running ``benchmarks/run.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """The ``cases`` and ``run`` modules of benchmarks/, importable as the scripts import them."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import cases
    import run

    return cases, run


def _tiny(cases: Any) -> Any:
    return cases.Sizes(
        big_shape=(256, 1024),
        big_chunks=(128, 1024),
        many_chunks=200,
        small_commits=3,
        tiny_commits=3,
        ref_pairs=2,
        expire_history=12,
        expire_keep=2,
        rewrite_arrays=3,
        rewrite_chunks=4,
        split_chunks=400,
        split_manifests=4,
    )


# The writing case each reading case reads from.
_PRODUCER = {"read_big": "write_big", "read_one": "write_many", "read_split": "build_split"}


@pytest.mark.parametrize("impl", ["pyicechunk", "zarr"])
def test_every_case_runs_and_sums_its_phases(
    bench: tuple[Any, Any], tmp_path: Path, impl: str
) -> None:
    cases, run = bench
    sizes = _tiny(cases)
    variant = cases.VARIANTS[impl]
    results = {}
    for name, case in cases.CASES.items():
        if impl == "zarr" and name in run.CASES and not run.CASES[name].floor:
            continue
        measurement = case(variant, tmp_path / _PRODUCER.get(name, name), sizes)
        phases = dict(measurement.phases)
        total = phases.pop("total", 0.0)
        assert total == pytest.approx(sum(phases.values()))
        assert all(seconds >= 0 for seconds in phases.values())
        results[name] = measurement
    if impl == "pyicechunk":
        # 12 steps, newest 2 kept: the other 10 and the array's creation expire.
        assert results["expire_gc"].counts["expired"] == 11
        assert results["expire_gc"].counts["snapshots deleted"] == 11
        assert results["rewrite_manifests"].counts["manifests written"] == 3
        split = results["read_split"].counts
        assert split["manifests on disk"] >= 1
        assert 1 <= split["manifests opened"] <= split["manifest opens"]
        assert results["probe"].counts["spec"] == 1


def test_open_counter_counts_files_opened_in_its_directory(
    bench: tuple[Any, Any], tmp_path: Path
) -> None:
    cases, _ = bench
    watched = tmp_path / "manifests"
    watched.mkdir()
    (watched / "a").write_bytes(b"1")
    (watched / "b").write_bytes(b"2")
    (tmp_path / "elsewhere").write_bytes(b"3")
    counter = cases.OpenCounter(watched)
    for name in ("a", "b", "a"):
        (watched / name).read_bytes()
    (tmp_path / "elsewhere").read_bytes()
    list(watched.iterdir())  # a directory listing is not a file read
    assert sorted(counter.opened()) == ["a", "a", "b"]


def test_report_gives_ratios_targets_and_missing_implementations(
    bench: tuple[Any, Any], tmp_path: Path
) -> None:
    _, run = bench
    sample = run.Sample
    results = run.Results(
        samples={
            "tiny_commits": {
                "pyicechunk": [sample({"commits": 2.0, "ancestry": 0.1, "total": 2.1}, {})],
                "icechunk": [sample({"commits": 1.0, "ancestry": 0.1, "total": 1.1}, {})],
                "icechunk2": [sample({"commits": 1.0, "ancestry": 0.2, "total": 1.2}, {})],
            },
            "read_split": {
                "icechunk2": [sample({"open": 0.1, "read": 0.1, "total": 0.2}, {"m": 3})],
            },
        },
        failures={"read_split": {"pyicechunk": "AssertionError: read back different values"}},
        unavailable={"pyicechunk2": "NotImplementedError: no spec 2"},
    )
    opts = run.Options(
        ["pyicechunk", "icechunk", "icechunk2", "pyicechunk2"],
        ["tiny_commits", "read_split"],
        1,
        False,
        None,
        tmp_path,
    )
    table = run.report(results, opts)
    cells = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in table.splitlines()
        if line.startswith("| ")
    ]
    rows = {row[1]: row for row in cells}
    # spec 1: 2.0 / 1.0 against the target 1.3; spec 2: pyicechunk on spec 2 is n/a.
    assert rows["commits"][2:] == [
        "2.00 s",
        "1.00 s",
        "1.00 s",
        "n/a",
        "2.00",
        "≤ 1.3 ✗",
        "n/a",
        "≤ 1.3",
    ]
    assert rows["ancestry"][6:8] == ["1.00", "≤ 1.0 ✓"]
    assert rows["open"][2] == "failed"
    assert "read_split | m | — | — | 3 | n/a |" in table
    assert "pyicechunk (spec 2): n/a (not supported yet: NotImplementedError: no spec 2)" in table
    assert "read_split failed for pyicechunk (spec 1): AssertionError" in table


def test_quick_run_end_to_end_with_both_references(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "run.py"),
            "--quick",
            "--impl",
            "pyicechunk,icechunk2,pyicechunk2",
            "--case",
            "branch_tag",
            "--workdir",
            str(tmp_path / "work"),
            "--results",
            str(tmp_path / "results"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = (tmp_path / "results" / "latest.md").read_text()
    assert "| (g) 5 branch + tag create/delete pairs | branch |" in table
    raw = json.loads((tmp_path / "results" / "latest.json").read_text())
    measured = raw["samples"]["branch_tag"]
    assert {"pyicechunk", "icechunk2"} <= set(measured)
    # pyicechunk on spec 2 is measured once it can create spec-2 repositories, n/a until then.
    assert ("pyicechunk2" in measured) != ("pyicechunk2" in raw["unavailable"])
    assert not list((tmp_path / "work").iterdir())  # repositories cleaned up
