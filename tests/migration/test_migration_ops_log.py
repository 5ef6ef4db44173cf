"""The ops log a migration synthesises from a spec-1 history (FORMAT-V2 §13 step 4)."""

from __future__ import annotations

from pyicechunk.format.repo_info import (
    BranchCreated,
    NewCommit,
    RepoInitialized,
    TagCreated,
    TagDeleted,
    Update,
)
from pyicechunk.history import HistoryEntry
from pyicechunk.ops.migration import synthesize_ops_log

MS = 1_000  # µs


def sid(n: int) -> bytes:
    return n.to_bytes(12, "big")


def chain(*links: tuple[int, int]) -> list[HistoryEntry]:
    """Entries (id, time) from tip to root, each the parent of the one before."""
    out = []
    for i, (n, t) in enumerate(links):
        parent = sid(links[i + 1][0]) if i + 1 < len(links) else None
        out.append(HistoryEntry(sid(n), parent, t, f"m{n}"))
    return out


def oldest_first(log: list[Update]) -> list[tuple[object, int]]:
    assert all(u.backup_path is None for u in log)
    return [(u.action, u.updated_at) for u in reversed(log)]


def test_a_linear_history_is_initialised_then_committed_newest_first() -> None:
    main = chain((3, 300), (2, 200), (1, 100))
    log = synthesize_ops_log(main, [], [], [], {})
    assert oldest_first(log) == [
        (RepoInitialized(), 100),
        (NewCommit("main", sid(2)), 200),
        (NewCommit("main", sid(3)), 300),
    ]
    times = [u.updated_at for u in log]
    assert times == sorted(times, reverse=True)


def test_branches_tags_and_deleted_tags_get_the_reference_offsets() -> None:
    main = chain((2, 20 * MS), (1, 10 * MS))
    dev = chain((5, 50 * MS), (4, 40 * MS), (2, 20 * MS), (1, 10 * MS))
    times = {e.id: e.flushed_at for e in [*main, *dev]}
    log = synthesize_ops_log(main, [("dev", dev)], [("v1", sid(2))], [("gone", sid(4))], times)
    assert oldest_first(log) == [
        (RepoInitialized(), 10 * MS),
        (NewCommit("main", sid(2)), 20 * MS),
        (TagCreated("v1"), 21 * MS),
        (NewCommit("dev", sid(4)), 40 * MS),
        (TagCreated("gone"), 41 * MS),
        (TagDeleted("gone", sid(4)), 42 * MS),
        (NewCommit("dev", sid(5)), 50 * MS),
        (BranchCreated("dev"), 51 * MS),
    ]


def test_a_snapshot_is_attributed_to_the_first_branch_that_reaches_it() -> None:
    main = chain((1, 10))
    a = chain((3, 30), (2, 20), (1, 10))
    b = chain((4, 40), (3, 30), (2, 20), (1, 10))
    log = synthesize_ops_log(main, [("a", a), ("b", b)], [], [], {})
    commits = [
        (u.action.branch, u.action.new_snap_id) for u in log if isinstance(u.action, NewCommit)
    ]
    assert sorted(commits) == [("a", sid(2)), ("a", sid(3)), ("b", sid(4))]


def test_collisions_are_bumped_by_one_microsecond_in_insertion_order() -> None:
    # Both tags 1 ms after the root, the branch 1 ms after its tip, which is the root too.
    main = chain((1, 5 * MS))
    times = {sid(1): 5 * MS}
    log = synthesize_ops_log(
        main, [("dev", main)], [("a", sid(1)), ("b", sid(1))], [("c", sid(1))], times
    )
    assert oldest_first(log) == [
        (RepoInitialized(), 5 * MS),
        (BranchCreated("dev"), 6 * MS),
        (TagCreated("a"), 6 * MS + 1),
        (TagCreated("b"), 6 * MS + 2),
        (TagCreated("c"), 6 * MS + 3),
        (TagDeleted("c", sid(1)), 7 * MS),
    ]


def test_bumps_cascade_past_later_events_without_reordering() -> None:
    # A tag on the root is due at the time of the next commit, which was listed first and so
    # stays first; the bumps then push every later event along by 1 µs.
    main = chain((3, 1002), (2, 1001), (1, 1))
    times = {e.id: e.flushed_at for e in main}
    log = synthesize_ops_log(main, [], [("t", sid(1))], [], times)
    assert oldest_first(log) == [
        (RepoInitialized(), 1),
        (NewCommit("main", sid(2)), 1001),
        (TagCreated("t"), 1002),
        (NewCommit("main", sid(3)), 1003),
    ]


def test_a_target_outside_the_listed_snapshots_is_dated_as_the_root() -> None:
    main = chain((2, 20 * MS), (1, 10 * MS))
    times = {e.id: e.flushed_at for e in main}
    log = synthesize_ops_log(main, [], [], [("lost", sid(99))], times)
    assert oldest_first(log)[1:3] == [
        (TagCreated("lost"), 11 * MS),
        (TagDeleted("lost", sid(99)), 12 * MS),
    ]


def test_no_main_history_gives_no_log() -> None:
    assert synthesize_ops_log([], [], [("t", sid(1))], [], {}) == []
