"""benchmarks/sync_floor.py runs end to end (small sizes) and counts the syncs durability makes.

Nothing here is timed: the figures come only from running the script.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "sync_floor.py"


def test_small_run_counts_syncs_per_operation(tmp_path: Path) -> None:
    args = ["--commits", "4", "--ref-pairs", "2", "--repeat", "1", "--dir", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {
        (cells[0], cells[1]): cells
        for line in done.stdout.splitlines()
        if line.startswith("| ")
        and not line.startswith("| operation")
        and (cells := [c.strip() for c in line.strip("|").split("|")])
    }
    assert set(rows) == {(op, spec) for op in ("commit", "branch/tag") for spec in ("1", "2")}
    for cells in rows.values():
        syncs, rounds = float(cells[2]), float(cells[3])
        # Durable by default: every operation waits for at least one sync, in one or more
        # rounds, and never for more rounds than calls.
        assert syncs >= 1 and 1 <= rounds <= syncs
        durable, nosync, floor = float(cells[5]), float(cells[6]), float(cells[7])
        assert durable > 0 and nosync > 0 and floor >= nosync
    assert list(tmp_path.iterdir()) == []  # its repositories are removed
