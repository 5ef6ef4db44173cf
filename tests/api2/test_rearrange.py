"""Rearrange sessions on pyicechunk and icechunk 2.3.0: ``Session.move`` of groups and arrays
(metadata only, node ids and manifests kept), ``Session.mode``, ``get_node_id``, the moves in
status, diffs and transaction logs, the errors of each refused move, the ``move_node`` feature
flag, rebases over moves, amend and flush, and moves written by one implementation read by the
other (API-2 §7.1-§7.3).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from oracle import Both, InProcess, Oracle, raises

HIERARCHY = """
repo = icechunk.Repository.create(make_storage(where), spec_version=2)
s = repo.writable_session("main")
root = zarr.create_group(s.store)
grp = root.create_group("grp", attributes={"kept": [1, 2]})
grp.create_array("arr", shape=(4,), chunks=(2,), dtype="i4")[:] = [0, 1, 2, 3]
root.create_array("x", shape=(2,), chunks=(2,), dtype="u1")[:] = 5
base = s.commit("hierarchy")
"""

# What a reader sees of the tip: every node, the data, the group's attributes, node ids of the
# moved nodes, and the latest commit's log and diff.
READ = """
repo = icechunk.Repository.open(make_storage(where))
r = repo.readonly_session("main")
root = zarr.open_group(r.store, mode="r")
tip = repo.lookup_branch("main")
parent = repo.lookup_snapshot(tip).parent_id
tx = repo.inspect_transaction_log(tip)
d = repo.diff(from_snapshot_id=parent, to_snapshot_id=tip)
{
    "paths": sorted(p for p, _ in root.members(max_depth=None)),
    "arr": zarr.open_array(r.store, path="grp3/arr", mode="r")[:].tolist(),
    "x": zarr.open_array(r.store, path="grp3/x", mode="r")[:].tolist(),
    "attrs": dict(zarr.open_group(r.store, path="grp3", mode="r").attrs),
    "ids": [r.get_node_id(p) for p in ("/grp3", "/grp3/arr", "/grp3/x")],
    "moved": tx["moved_nodes"],
    "others": [tx[k] for k in ("new_groups", "new_arrays", "deleted_groups", "deleted_arrays",
                               "updated_groups", "updated_arrays", "updated_chunks")],
    "diff": (d.moved_nodes, str(d), d.is_empty()),
    "manifests": sorted(m.id for m in repo.list_manifest_files(tip)),
}
"""

MOVES = """
s = repo.rearrange_session("main")
before = [s.get_node_id(p) for p in ("/grp", "/grp/arr", "/x")]
modes = [repr(s.mode), int(s.mode), s.has_uncommitted_changes]
s.move("/grp", "/grp2")
s.move("/grp2", "/grp3")
s.move("/x", "/grp3/x")
inside = {
    "status": (s.status().moved_nodes, str(s.status())),
    "arr": zarr.open_array(s.store, path="grp3/arr", mode="r")[:].tolist(),
    "old": "grp" in zarr.open_group(s.store, mode="r"),
    "ids": [s.get_node_id(p) for p in ("/grp3", "/grp3/arr", "/grp3/x")] == before,
    "changed": s.has_uncommitted_changes,
}
moved = s.commit("moves")
modes += [repr(s.mode), s.read_only]
"""


def test_moves_keep_node_ids_data_and_manifests(
    both: Both, storage_spec: Callable[..., Any]
) -> None:
    modes, inside = both.same(HIERARCHY + MOVES + "[modes, inside]", where=storage_spec("memory"))
    assert modes == ["SessionMode.rearrange", 2, False, "SessionMode.readonly", True]
    # Chained moves collapse: /grp -> /grp2 -> /grp3 is one move.
    assert inside["status"][0] == [
        ("/grp", "/grp3"),
        ("/grp/arr", "/grp3/arr"),
        ("/x", "/grp3/x"),
    ]
    assert inside["ids"] and inside["changed"] and not inside["old"]
    for impl in (both.ours, both.reference):
        where = storage_spec("local")
        before, manifests = impl.run(
            HIERARCHY + MOVES + "(before, [m.id for m in repo.list_manifest_files(base)])",
            where=where,
        )
        seen = impl.run(READ, where=where)
        # Node ids survive the moves, and the move commit lists the same manifests as the
        # commit before it: nothing was copied or rewritten.
        assert seen["ids"] == before
        assert seen["manifests"] == sorted(manifests)


@pytest.mark.parametrize("writer", ["pyicechunk", "icechunk2"])
def test_a_move_written_by_one_is_read_by_the_other(
    both: Both, storage_spec: Callable[..., Any], writer: str
) -> None:
    where = storage_spec("local")
    (both.ours if writer == "pyicechunk" else both.reference).run(HIERARCHY + MOVES, where=where)
    seen = both.same(READ, where=where)
    assert seen["paths"] == ["grp3", "grp3/arr", "grp3/x"]
    assert seen["arr"] == [0, 1, 2, 3] and seen["x"] == [5, 5]
    assert seen["attrs"] == {"kept": [1, 2]}
    assert [(m["from"], m["to"]) for m in seen["moved"]] == [
        ("/grp", "/grp3"),
        ("/grp/arr", "/grp3/arr"),
        ("/x", "/grp3/x"),
    ]
    assert seen["others"] == [[], [], [], [], [], [], []]
    assert seen["diff"][0] == [(m["from"], m["to"]) for m in seen["moved"]]
    assert not seen["diff"][2]
    # The reader keeps writing at the new paths, and the writer reads that.
    reader = both.reference if writer == "pyicechunk" else both.ours
    reader.run(
        "s = repo.writable_session('main')\n"
        "zarr.open_array(s.store, path='grp3/arr', mode='r+')[0] = 9\n"
        "s.commit('a write after the move')"
    )
    assert both.same(READ, where=where)["arr"] == [9, 1, 2, 3]


MOVE_ERRORS = [
    ("/grp", "/grp/sub", "SessionStateError", "move-into-self-or-descendant"),
    ("/grp", "/grp", "SessionStateError", "move-into-self-or-descendant"),
    ("/", "/z", "SessionStateError", "move-into-self-or-descendant"),
    ("/grp", "/nope/grp", "SessionStateError", "move-destination-parent-missing"),
    ("/grp", "/x/grp", "SessionStateError", "move-destination-parent-not-group"),
    ("/grp", "/x", "AlreadyExistsError", "move-wont-overwrite"),
    ("/x", "/", "AlreadyExistsError", "move-wont-overwrite"),
    ("/nope", "/y", "NodeNotFoundError", "node-not-found"),
    ("/nope", "/nope/a", "NodeNotFoundError", "node-not-found"),
    ("grp", "/y", "InvalidInputError", "invalid-path"),
    ("/grp", "y", "InvalidInputError", "invalid-path"),
]


def test_refused_moves_raise_the_reference_errors_and_move_nothing(
    both: Both, storage_spec: Callable[..., Any]
) -> None:
    both.same(HIERARCHY + "s = repo.rearrange_session('main')", where=storage_spec("memory"))
    for source, target, cls, kind in MOVE_ERRORS:
        with raises(cls, kind=kind):
            both.same(f"s.move({source!r}, {target!r})", messages=True)
    assert both.same("[s.status().moved_nodes, s.has_uncommitted_changes]") == [[], False]
    with raises("SessionStateError", kind="no-changes-to-commit"):
        both.same("s.commit('nothing')")


def test_only_rearrange_sessions_move_and_they_only_move(
    impl: InProcess | Oracle, storage_spec: Callable[..., Any]
) -> None:
    impl.run(HIERARCHY, where=storage_spec("memory"))
    with raises("SessionStateError", kind="non-rearrange-session", match="rearrange session"):
        impl.run("repo.writable_session('main').move('/x', '/y')")
    with raises("ReadOnlyError", kind="read-only-session"):
        impl.run("repo.readonly_session('main').move('/x', '/y')")
    impl.run("s = repo.rearrange_session('main')")
    writes = [
        "zarr.open_array(s.store, path='x', mode='r+')[:] = 1",
        "zarr.open_group(s.store, mode='r+').create_group('new')",
        "del zarr.open_group(s.store, mode='r+')['x']",
        "zarr.open_group(s.store, path='grp', mode='r+').attrs['k'] = 1",
    ]
    for write in writes:
        with raises("SessionStateError", kind="rearrange-session-only", match="rearrange the"):
            impl.run(write)
    assert impl.run("s.has_uncommitted_changes") is False
    assert impl.run("repr(repo.writable_session('main').mode)") == "SessionMode.writable"
    assert impl.run("repr(repo.readonly_session('main').mode)") == "SessionMode.readonly"
    # A move back where a node was is no move, but the session still commits.
    impl.run("s.move('/x', '/y'); s.move('/y', '/x')")
    assert impl.run("[s.status().moved_nodes, s.has_uncommitted_changes]") == [[], True]
    impl.run("sid = s.commit('identity')")
    assert impl.run("repo.inspect_transaction_log(sid)['moved_nodes']") == []


def test_spec1_repositories_refuse_rearrange_sessions(impl: InProcess | Oracle) -> None:
    impl.run("repo = icechunk.Repository.create(make_storage({'kind': 'memory'}), spec_version=1)")
    with raises("FormatError", kind="unsupported-spec-version", match="at least version 2.0"):
        impl.run("repo.rearrange_session('main')")
    with raises("FormatError", kind="unsupported-spec-version", match="^session error: repo"):
        impl.run("repo.writable_session('main').move('/', '/a')")


def test_the_move_node_flag_and_the_read_only_status(
    impl: InProcess | Oracle, storage_spec: Callable[..., Any]
) -> None:
    impl.run(HIERARCHY, where=storage_spec("memory"))
    impl.run(
        "a = repo.rearrange_session('main'); a.move('/x', '/a')\n"
        "b = repo.rearrange_session('main'); b.move('/x', '/b')\n"
        "c = repo.rearrange_session('main'); c.move('/x', '/c')\n"
        "repo.set_feature_flag('move_node', False)"
    )
    flag = "feature-flag-disabled"
    with raises("SessionStateError", kind=flag, match=r"create rearrange session is disabled"):
        impl.run("repo.rearrange_session('main')")
    with raises("SessionStateError", kind=flag, match=r"commit rearrange session is disabled"):
        impl.run("a.commit('no')")
    with raises("SessionStateError", kind=flag, match=r"flush rearrange session is disabled"):
        impl.run("b.flush('no')")
    assert impl.run("repo.lookup_branch('main') == base")
    impl.run("repo.set_feature_flag('move_node', None)")
    impl.run("repo.set_status(icechunk.RepoStatus(icechunk.RepoAvailability.read_only))")
    with raises("ReadOnlyError", kind="read-only-repository", match="rearrange session"):
        impl.run("repo.rearrange_session('main')")
    with raises("ReadOnlyError", kind="read-only-repository"):
        impl.run("c.commit('no')")
    impl.run("repo.set_status(icechunk.RepoStatus(icechunk.RepoAvailability.online))")
    impl.run("c.commit('yes')")
    assert impl.run("sorted(zarr.open_group(repo.readonly_session('main').store, mode='r'))") == [
        "c",
        "grp",
    ]


REBASE_FAILS = """
def failure(session, solver):
    try:
        session.rebase(solver)
    except icechunk.RebaseFailedError as e:
        return [(repr(c.conflict_type), str(c.conflict_type), c.path, c.conflicted_chunks)
                for c in e.conflicts] + [e.snapshot == moved]
    return None
"""


def test_no_session_is_rebased_over_a_move(
    impl: InProcess | Oracle, storage_spec: Callable[..., Any]
) -> None:
    impl.run(HIERARCHY + REBASE_FAILS, where=storage_spec("memory"))
    impl.run(
        "w = repo.writable_session('main')\n"
        "zarr.open_array(w.store, path='x', mode='r+')[:] = 3\n"
        "r = repo.rearrange_session('main'); r.move('/x', '/x2')\n"
        "m = repo.rearrange_session('main'); m.move('/grp', '/g2'); moved = m.commit('mv')"
    )
    with raises("ConflictError", kind="commit-conflict"):
        impl.run("w.commit('late')")
    expected = [("MoveOperationCannotBeRebased", "Move operation cannot be rebased", "", None)]
    for session in ("w", "r"):
        for solver in ("ConflictDetector()", "BasicConflictSolver()"):
            found = impl.run(f"failure({session}, icechunk.{solver})")
            assert found == [*expected, True], (session, solver)
    with raises("RebaseFailedError", kind="rebase-failed"):
        impl.run("w.commit('late', rebase_with=icechunk.ConflictDetector())")
    assert (
        impl.run("int(icechunk.ConflictType.MoveOperationCannotBeRebased)")
        == int(impl.run("int(icechunk.ConflictType.DeleteOfUpdatedGroup)")) + 1
    )


def test_a_rearrange_session_rebases_over_a_commit_without_moves(
    both: Both, storage_spec: Callable[..., Any]
) -> None:
    found = both.same(
        HIERARCHY
        + """
r = repo.rearrange_session("main")
r.move("/x", "/x2")
w = repo.writable_session("main")
zarr.open_array(w.store, path="grp/arr", mode="r+")[:] = 7
zarr.create_group(w.store, path="grp/new")
w.commit("plain")
r.commit("moved after a rebase", rebase_with=icechunk.ConflictDetector())
rs = repo.readonly_session("main")
tx = repo.inspect_transaction_log(rs.snapshot_id)
[sorted(p for p, _ in zarr.open_group(rs.store, mode="r").members(max_depth=None)),
 zarr.open_array(rs.store, path="grp/arr", mode="r")[:].tolist(), tx["moved_nodes"]]
""",
        where=storage_spec("memory"),
    )
    assert found[0] == ["grp", "grp/arr", "grp/new", "x2"]
    assert found[2] == [{"from": "/x", "to": "/x2"}]


def test_amend_and_flush_of_rearrange_sessions(
    both: Both, storage_spec: Callable[..., Any]
) -> None:
    found = both.same(
        HIERARCHY
        + """
r = repo.rearrange_session("main"); r.move("/x", "/x2"); r.commit("first move")
r = repo.rearrange_session("main"); r.move("/x2", "/x3"); amended = r.amend("amended move")
r = repo.rearrange_session("main"); r.move("/grp", "/g"); flushed = r.flush("detached")
[repo.inspect_transaction_log(amended)["moved_nodes"],
 repo.lookup_snapshot(amended).parent_id == base,
 repo.inspect_transaction_log(flushed)["moved_nodes"],
 repo.lookup_branch("main") == amended]
""",
        where=storage_spec("memory"),
    )
    # The amend's log describes the change from the replaced commit's parent: one move.
    assert found == [
        [{"from": "/x", "to": "/x3"}],
        True,
        [{"from": "/grp", "to": "/g"}, {"from": "/grp/arr", "to": "/g/arr"}],
        True,
    ]
    with raises("SessionStateError", kind="rearrange-session-only"):
        both.same(
            "w = repo.writable_session('main')\n"
            "zarr.open_array(w.store, path='x3', mode='r+')[:] = 1\n"
            "w.amend('a plain amend over a move')"
        )


def test_get_node_id(both: Both, storage_spec: Callable[..., Any]) -> None:
    both.same(HIERARCHY, where=storage_spec("memory"))
    found = both.same(
        """
import asyncio
ro = repo.readonly_session("main")
w = repo.writable_session("main")
f = repo.writable_session("main").fork()
zarr.create_group(w.store, path="fresh")
zarr.create_group(f.store, path="fresh")
ids = [ro.get_node_id("/grp/arr"), w.get_node_id("/grp/arr"),
       asyncio.run(ro.get_node_id_async("/grp/arr"))]
[len(set(ids)), len(ids[0]), len(f.get_node_id("/fresh")),
 ro.get_node_id("/") == w.get_node_id("/")]
"""
    )
    assert found == [1, 13, 13, True]
    with raises("NodeNotFoundError", kind="node-not-found", match="node not found at `/nope`"):
        both.same("ro.get_node_id('/nope')", messages=True)
    with raises("InvalidInputError", kind="invalid-path"):
        both.same("ro.get_node_id('grp')", messages=True)


def test_moves_async(both: Both, storage_spec: Callable[..., Any]) -> None:
    found = both.same(
        HIERARCHY
        + """
import asyncio
async def main():
    s = await repo.rearrange_session_async("main")
    await s.move_async("/x", "/grp/x")
    return await s.commit_async("async move")
sid = asyncio.run(main())
newest = next(iter(repo.ops_log())).kind
[repo.inspect_transaction_log(sid)["moved_nodes"], type(newest).__name__, newest.new_snap_id == sid]
""",
        where=storage_spec("memory"),
    )
    # A rearrange commit is an ordinary commit in the ops log.
    assert found == [[{"from": "/x", "to": "/grp/x"}], "NewCommit", True]


# -- shift_array and reindex_array (API-2 §7.4) ------------------------------------------------

ARRAYS = """
import os
repo = icechunk.Repository.create(make_storage(where), spec_version=spec)
s = repo.writable_session("main")
root = zarr.create_group(s.store)
root.create_group("g")
a = root.create_array("a", shape=(8,), chunks=(2,), dtype="i4", fill_value=-1)
a[:] = np.arange(8)
b = root.create_array("b", shape=(8,), chunks=(2,), dtype="i4", fill_value=-1)
b[0:2] = 10
b[4:6] = 20
m = root.create_array("m", shape=(4, 4), chunks=(2, 2), dtype="i4", fill_value=-1)
m[:] = np.arange(16).reshape(4, 4)
base = s.commit("arrays")

def after(path, edit):
    s = repo.writable_session("main")
    edit(s)
    return [zarr.open_array(s.store, path=path, mode="r")[:].tolist(),
            s.status().updated_chunks]
"""

EDITS = """
[
    after("a", lambda s: s.shift_array("/a", [1])),
    after("a", lambda s: s.shift_array("/a", [-2])),
    after("a", lambda s: s.shift_array("/a", [10])),
    after("a", lambda s: s.shift_array("/a", (0,))),
    after("a", lambda s: s.shift_array("/a", [1, 5])),
    after("b", lambda s: s.shift_array("/b", [1])),
    after("m", lambda s: s.shift_array("/m", [0, 1])),
    after("a", lambda s: s.reindex_array("/a", lambda c: [3 - c[0]])),
    after("a", lambda s: s.reindex_array("/a", lambda c: [0])),
    after("a", lambda s: s.reindex_array("/a", lambda c: None if c[0] % 2 else c)),
    after("a", lambda s: s.reindex_array("/a", lambda c: [(c[0] + 1) % 4],
                                         lambda p: [(p[0] - 1) % 4])),
    after("a", lambda s: s.reindex_array("/a", lambda c: c, lambda p: None)),
    after("b", lambda s: s.reindex_array("/b", lambda c: [3 - c[0]])),
    after("b", lambda s: s.reindex_array("/b", lambda c: [3 - c[0]], lambda p: [3 - p[0]])),
]
"""


@pytest.mark.parametrize("spec", [1, 2])
def test_shift_and_reindex_give_the_reference_data_and_changes(
    both: Both, storage_spec: Callable[..., Any], spec: int
) -> None:
    found = both.same(ARRAYS + EDITS, where=storage_spec("memory"), spec=spec)
    assert found[0][0] == [-1, -1, 0, 1, 2, 3, 4, 5]
    assert found[1][0] == [4, 5, 6, 7, -1, -1, -1, -1]
    assert found[7][0] == [6, 7, 4, 5, 2, 3, 0, 1]
    assert found[8][0] == [6, 7, 2, 3, 4, 5, 6, 7]  # the last chunk asked wins


@pytest.mark.parametrize("spec", [1, 2])
def test_shifted_chunks_are_moved_references_read_by_both(
    both: Both, storage_spec: Callable[..., Any], spec: int
) -> None:
    for writer, reader in ((both.ours, both.reference), (both.reference, both.ours)):
        where = storage_spec("local")
        chunks = os.path.join(where["path"], "chunks")
        # Chunks in objects of their own, to see that none is written.
        native = "config=icechunk.RepositoryConfig(inline_chunk_threshold_bytes=0), spec_version"
        writer.run(ARRAYS.replace("spec_version", native, 1), where=where, spec=spec)
        before = sorted(os.listdir(chunks))
        writer.run(
            "s = repo.writable_session('main')\n"
            "s.shift_array('/a', [1])\n"
            "s.reindex_array('/m', lambda c: [1 - c[0], c[1]])\n"
            "sid = s.commit('moved chunks')"
        )
        # Only references moved: no chunk object was written.
        assert len(before) == 4 + 2 + 4
        assert sorted(os.listdir(chunks)) == before
        read = (
            "repo = icechunk.Repository.open(make_storage(where))\n"
            "r = repo.readonly_session('main')\n"
            "[zarr.open_array(r.store, path=p, mode='r')[:].tolist() for p in ('a', 'm')]"
        )
        assert reader.run(read, where=where) == writer.run(read, where=where)
        assert reader.run(read, where=where)[0] == [-1, -1, 0, 1, 2, 3, 4, 5]


SHIFT_ERRORS = [
    ("s.shift_array('/g', [1])", "InvalidInputError", "not-an-array"),
    ("s.reindex_array('/g', lambda c: c)", "InvalidInputError", "not-an-array"),
    ("s.shift_array('/nope', [1])", "NodeNotFoundError", "node-not-found"),
    ("s.shift_array('a', [1])", "InvalidInputError", "invalid-path"),
    ("s.reindex_array('/a', lambda c: [10])", "InvalidInputError", "invalid-chunk-index"),
    ("s.reindex_array('/a', lambda c: 1 / 0)", "IcechunkError", "unknown"),
    ("s.reindex_array('/a', lambda c: [1.5])", "IcechunkError", "unknown"),
    ("s.shift_array('/a', [1.5])", "TypeError", None),
    ("s.shift_array('/a', 1)", "TypeError", None),
    ("ro.shift_array('/a', [1])", "ReadOnlyError", "read-only-session"),
    ("ro.reindex_array('/a', lambda c: c)", "ReadOnlyError", "read-only-session"),
    ("rr.shift_array('/a', [1])", "SessionStateError", "rearrange-session-only"),
]


def test_refused_shifts_and_reindexes_change_nothing(
    both: Both, storage_spec: Callable[..., Any]
) -> None:
    both.same(
        ARRAYS
        + "s = repo.writable_session('main')\n"
        + "ro = repo.readonly_session('main')\n"
        + "rr = repo.rearrange_session('main')",
        where=storage_spec("memory"),
        spec=2,
    )
    for call, cls, kind in SHIFT_ERRORS:
        with raises(cls, kind=kind):
            both.same(call)
    assert both.same("[s.has_uncommitted_changes, s.status().updated_chunks]") == [False, {}]


def test_discarding_undoes_the_moves_and_forks_cannot_merge_back(
    both: Both, storage_spec: Callable[..., Any]
) -> None:
    found = both.same(
        HIERARCHY
        + """
r = repo.rearrange_session("main")
f = r.fork()
r.move("/grp", "/g2")
r.discard_changes()
seen = [r.status().moved_nodes, r.has_uncommitted_changes, sorted(zarr.open_group(r.store))]
r.move("/grp", "/g3")
seen + [r.status().moved_nodes, repr(f.mode)]
""",
        where=storage_spec("memory"),
    )
    moved = [("/grp", "/g3"), ("/grp/arr", "/g3/arr")]
    assert found == [[], False, ["grp", "x"], moved, "SessionMode.readonly"]
    with raises("SessionStateError", kind="rearrange-session-only"):
        both.same("r.merge(f)")
    with raises("SessionStateError", kind="non-rearrange-session"):
        both.same("f.move('/x', '/y')")


def test_a_move_the_new_tip_no_longer_allows_fails_the_rebase_clearly(
    pyic: InProcess, storage_spec: Callable[..., Any]
) -> None:
    # icechunk 2.3.0 rebases such a session "successfully" and then fails in status() and
    # commit; pyicechunk refuses the rebase and leaves the session as it was.
    pyic.run(HIERARCHY, where=storage_spec("memory"))
    pyic.run(
        "r = repo.rearrange_session('main'); r.move('/x', '/grp/x')\n"
        "w = repo.writable_session('main'); del zarr.open_group(w.store)['x']; w.commit('rm')"
    )
    with raises("NodeNotFoundError", kind="node-not-found", match="cannot rebase the move"):
        pyic.run("r.commit('late', rebase_with=icechunk.ConflictDetector())")
    assert pyic.run("[r.snapshot_id == base, r.status().moved_nodes]") == [
        True,
        [("/x", "/grp/x")],
    ]
