"""What a commit with a conflict solver records under ``__icechunk`` (FORMAT-V2 §6.2), beside
icechunk 2.3.0: the number of rebases it took, merged with the user's own keys there."""

from __future__ import annotations

from oracle import Both

COMMITS = """
repo = icechunk.Repository.create(icechunk.in_memory_storage(), spec_version=spec_version)
s = repo.writable_session("main")
zarr.create_group(s.store)
s.commit("plain", metadata={"__icechunk": {"mine": 1}})
s = repo.writable_session("main")
zarr.open_group(s.store, mode="r+").create_group("a")
s.commit("no rebase needed", rebase_with=icechunk.ConflictDetector())
late = repo.writable_session("main")
zarr.open_group(late.store, mode="r+").create_group("b")
s = repo.writable_session("main")
zarr.open_group(s.store, mode="r+").create_group("c")
s.commit("moves the branch")
late.commit(
    "rebased once", metadata={"__icechunk": {"mine": 2}, "x": 1},
    rebase_with=icechunk.ConflictDetector(),
)
[(s.message, s.metadata) for s in repo.ancestry(branch="main")][:4]
"""


def test_rebase_attempts_are_recorded_on_spec_2(both: Both) -> None:
    assert both.same(COMMITS, spec_version=2) == [
        ("rebased once", {"__icechunk": {"mine": 2, "rebase_attempts": 1}, "x": 1}),
        ("moves the branch", {}),
        ("no rebase needed", {"__icechunk": {"rebase_attempts": 0}}),
        ("plain", {"__icechunk": {"mine": 1}}),
    ]


def test_spec_1_commits_record_no_rebase_attempts(both: Both) -> None:
    ours, reference = both.run(COMMITS, spec_version=1)
    # pyicechunk writes spec 1 as icechunk 1.1.21 does, which records nothing; icechunk 2.3.0
    # records the attempts in spec-1 repositories too.
    assert ours.value == [
        ("rebased once", {"__icechunk": {"mine": 2}, "x": 1}),
        ("moves the branch", {}),
        ("no rebase needed", {}),
        ("plain", {"__icechunk": {"mine": 1}}),
    ]
    assert reference.value[0] == (
        "rebased once",
        {"__icechunk": {"mine": 2, "rebase_attempts": 1}, "x": 1},
    )
