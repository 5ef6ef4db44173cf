"""Spec-2 maintenance across implementations, both ways.

One implementation writes a history; the other expires and garbage-collects it; the writer then
opens the result, reads every ref and the data of every listed snapshot, diffs from the root,
and commits, amends and tags on top; the maintainer reads that in turn and commits too. Both
directions must leave the same repository (by :func:`ops_v2_support.describe`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ops_v2_support import PRELUDE, describe
from oracle import Both, equal

WRITE = """
repo = new_repo(path)
commit(repo, "c0", 0, create=True)
for i in range(1, 5):
    commit(repo, f"c{i}", i)
ids = {label: sid for sid, label in labels.items()}
repo.create_branch("dev", ids["c1"])
commit(repo, "d1", 6, branch="dev")
repo.create_tag("t2", ids["c2"])
s = repo.writable_session("main")
zarr.open_array(s.store, path="a", mode="r+")[7] = values(50)
commit(repo, "flushed", None, session=s, how="flush")
times = {label: written(repo, sid) for sid, label in labels.items()}
(labels, times)
"""

MAINTAIN = """
labels.update(known)
repo = open_repo(path)
expired = named(repo.expire_snapshots(cut))
gc = summary(repo.garbage_collect(utc_now()))
{"expired": expired, "gc": {k: v for k, v in gc.items() if k != "bytes_deleted"}}
"""

READ = """
labels.update(known)
repo = open_repo(path)
listed = {label: data(repo, snapshot_id=sid) for sid, label in labels.items()
          if sid in {s.id for b in repo.list_branches() for s in repo.ancestry(branch=b)}
          | {s.id for t in repo.list_tags() for s in repo.ancestry(tag=t)}
          and label != "init"}
diff = repo.diff(from_snapshot_id=INITIAL, to_branch="main")
{
    "refs": {b: ancestry(repo, branch=b) for b in sorted(repo.list_branches())}
            | {t: ancestry(repo, tag=t) for t in sorted(repo.list_tags())},
    "listed": listed,
    "chunks": {k: sorted(map(list, v)) for k, v in diff.updated_chunks.items()},
}
"""

ON_TOP = """
commit(repo, by + "_c", 5)
commit(repo, by + "_amended", 5, how="amend")
repo.create_tag(by + "_tag", repo.lookup_branch("main"))
commit(repo, by + "_dev", 7, branch="dev")
(labels, ancestry(repo, branch="main"), data(repo, branch="main"))
"""


def _direction(writer: Any, maintainer: Any, path: Path) -> dict[str, Any]:
    for impl in (writer, maintainer):
        impl.run(PRELUDE)
        impl.run("path = Path(where)", where=str(path))
    labels, times = writer.run(WRITE)
    out: dict[str, Any] = {"maintained": maintainer.run(MAINTAIN, known=labels, cut=times["c4"])}
    out["writer_reads"] = writer.run(READ, known=labels)
    labels, out["writer_main"], writer_data = writer.run(ON_TOP, by="w")
    out["maintainer_reads"] = maintainer.run(READ, known=labels)
    labels, out["maintainer_main"], maintainer_data = maintainer.run(ON_TOP, by="m")
    out["writer_again"] = writer.run(READ, known=labels)
    np.testing.assert_array_equal(writer_data[:5], maintainer_data[:5])
    out["files"] = describe(path, labels)
    return out


@pytest.mark.parametrize("direction", ["icechunk2 writes", "pyicechunk writes"])
def test_the_other_implementation_maintains_and_both_go_on(
    both: Both, tmp_path: Path, direction: str
) -> None:
    if direction == "pyicechunk writes":
        seen = _direction(both.ours, both.reference, tmp_path / "repo")
    else:
        seen = _direction(both.reference, both.ours, tmp_path / "repo")
    # FORMAT-V2 §12: c2 stays for its tag, the detached snapshot goes with GC (its log too,
    # as no pruned list names it), the expired snapshots' logs stay for the pruned lists.
    assert seen["maintained"]["expired"] == ["c0", "c1", "c3"]
    assert seen["maintained"]["gc"]["snapshots_deleted"] == 4
    assert seen["maintained"]["gc"]["transaction_logs_deleted"] == 1
    reads = seen["writer_reads"]
    assert reads["refs"] == {"main": ["c4", "init"], "dev": ["d1", "init"], "t2": ["c2", "init"]}
    assert sorted(reads["listed"]) == ["c2", "c4", "d1"]
    assert reads["chunks"] == {"/a": [[i, 0] for i in range(5)]}
    assert seen["writer_main"] == ["w_amended", "c4", "init"]
    assert seen["maintainer_main"] == ["m_amended", "w_amended", "c4", "init"]
    assert equal(seen["maintainer_reads"]["listed"]["c4"], reads["listed"]["c4"])
    assert seen["writer_again"]["refs"]["m_tag"] == seen["maintainer_main"]
    assert seen["writer_again"]["refs"]["dev"] == ["m_dev", "w_dev", "d1", "init"]
    files = seen["files"]
    assert files["snapshots"]["c4"] == ("init", ["c0", "c1", "c2", "c3"])
    assert files["snapshots"]["d1"] == ("init", ["c0", "c1"])
    assert files["snapshots"]["c2"] == ("init", ["c0", "c1"])
    assert files["snapshot_files"] == sorted(
        ["init", "c2", "c4", "d1", "w_c", "w_amended", "w_dev", "m_c", "m_amended", "m_dev"]
    )
