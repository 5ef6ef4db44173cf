"""Writers of a spec-2 repository killed with SIGKILL at random moments (``test_crash``'s loop).

A kill can fall between any two steps of an update of ``repo``: after the copy to
``overwritten/`` and before the swap, inside the swap (a rename under a lock on the local
filesystem), after it and before the acknowledgement. After every kill the repository opens,
every acknowledged commit, tag and branch is there, everything a ref reaches reads (the checks
of ``test_crash``), and ``repo`` holds together: each acknowledged operation is in the ops log
exactly once, every copy the log names is the state its entry produced, and a copy left by a
killed update is unused but whole.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

from _spec2_checks import check_repo
from test_crash import ForkServer, crash_many, server  # noqa: F401 (the fixture)

import pyicechunk as icechunk
from pyicechunk.format.ids import encode_id
from pyicechunk.format.repo_info import BranchCreated, NewCommit, TagCreated


def test_killed_spec2_writers(tmp_path: Path, server: ForkServer) -> None:  # noqa: F811
    stats = crash_many(tmp_path, server, 25, seed=3, spec_version=2)
    assert stats["commits"] > 0
    path = tmp_path / "repo"
    assert icechunk.Repository.open(icechunk.local_filesystem_storage(str(path))).spec_version == 2
    report = asyncio.run(check_repo(icechunk.local_filesystem_storage(str(path)).backend))
    print(
        f"spec-2 crash test: {stats}, copies left by killed updates: {len(report.unused_backups)}"
    )
    records = [json.loads(line) for line in (tmp_path / "acks.jsonl").read_text().splitlines()]
    commits = Counter(
        encode_id(e.action.new_snap_id) for e in report.ops_log if isinstance(e.action, NewCommit)
    )
    assert max(commits.values()) == 1
    assert {r["snapshot"] for r in records if r["kind"] == "commit"} <= set(commits)
    for kind, action in (("tag", TagCreated), ("branch", BranchCreated)):
        logged = Counter(e.action.name for e in report.ops_log if isinstance(e.action, action))
        assert max(logged.values(), default=1) == 1
        assert {r["name"] for r in records if r["kind"] == kind} <= set(logged)
