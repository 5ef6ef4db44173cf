"""benchmarks/profile_ops.py runs end to end (quick sizes, local filesystem, both specs) and its
report has, for every operation, a time, the storage requests the log counted and a profile.

Nothing here is timed: the figures come only from running the script.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "profile_ops.py"
OPS = ("commit", "branch", "tag", "expire", "gc", "rewrite")


def test_quick_local_report(tmp_path: Path) -> None:
    out = tmp_path / "report" / "profiles.md"
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--quick",
            "--storage",
            "local",
            "--out",
            str(out),
            "--workdir",
            str(work),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = out.read_text()
    assert done.stdout.strip() == report.strip()
    rows = {
        (cells[0], cells[1]): cells
        for line in report.splitlines()
        if line.startswith("| ")
        and (cells := [c.strip() for c in line.strip("|").split("|")])
        and cells[0] in OPS
    }
    assert set(rows) == {(op, spec) for op in OPS for spec in ("1", "2")}
    for (op, spec), cells in rows.items():
        assert cells[2] == "local"
        assert re.fullmatch(r"\d+\.\d\d ms", cells[3]), cells
        assert cells[7] != "none", f"no storage request counted for {op} on spec {spec}"
    # Every mutation ends in a conditional write: the branch ref on spec 1, `repo` on spec 2.
    for spec in ("1", "2"):
        assert "put_object_conditional" in rows["commit", spec][7]
        assert "delete_objects" in rows["gc", spec][7]
    assert "put_object_conditional refs 1" in report  # spec 1 commit: its branch ref
    assert "put_object_conditional repo 1" in report  # spec 2: the repo object
    for op in OPS:
        for spec in ("1", "2"):
            section = report.split(f"## {op} · spec {spec} · local", 1)[1].split("\n## ", 1)[0]
            shares = [int(s) for s in re.findall(r"\| (\d+)% \|", section)]
            assert 95 <= sum(shares) <= 105, (op, spec, shares)  # the buckets cover the profile
            assert "| function (top by own time) |" in section
    assert not list(work.iterdir())  # repositories removed
