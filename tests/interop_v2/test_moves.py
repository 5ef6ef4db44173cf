"""Moves written by icechunk 2.3.0 (the only writer of them), in pyicechunk's diffs: the same
``moved_nodes`` and text, over one commit and over several (API-2 §7.3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from oracle import Both

WRITE = """
repo = icechunk.Repository.create(make_storage(where), spec_version=2)
s = repo.writable_session("main")
root = zarr.create_group(s.store)
root.create_group("grp").create_array("arr", shape=(4,), chunks=(2,), dtype="i4")[:] = 7
root.create_array("x", shape=(2,), chunks=(2,), dtype="u1")[:] = 1
base = s.commit("hierarchy")
s = repo.rearrange_session("main")
s.move("/grp", "/grp2")
once = s.commit("first move")
s = repo.rearrange_session("main")
s.move("/grp2", "/grp3")
s.move("/x", "/grp3/x")
twice = s.commit("second move")
s = repo.writable_session("main")
zarr.open_array(s.store, path="grp3/arr", mode="r+")[0] = 8
last = s.commit("write at the new path")
[base, once, twice, last]
"""

READ = """
repo = icechunk.Repository.open(make_storage(where))
diffs = [
    repo.diff(from_snapshot_id=a, to_snapshot_id=b)
    for a, b in [(ids[0], ids[1]), (ids[0], ids[2]), (ids[1], ids[3]), (ids[2], ids[3])]
]
[(sorted(d.moved_nodes), str(d), d.is_empty()) for d in diffs]
"""


def test_moves_show_in_diffs_as_the_reference_shows_them(
    both: Both, storage_spec: Callable[..., dict[str, Any]]
) -> None:
    where = storage_spec("local")
    ids = both.reference.run(WRITE, where=where)
    found = both.same(READ, where=where, ids=ids)
    # Over two commits, 2.3.0 lists each commit's moves, the newest commit's first, without
    # collapsing /grp -> /grp2 -> /grp3 into one move.
    assert found[1][0] == [
        ("/grp", "/grp2"),
        ("/grp/arr", "/grp2/arr"),
        ("/grp2", "/grp3"),
        ("/grp2/arr", "/grp3/arr"),
        ("/x", "/grp3/x"),
    ]
    assert found[1][1].index("/grp2 -> /grp3") < found[1][1].index("/grp -> /grp2")
    assert found[3][0] == [] and not found[3][2]
