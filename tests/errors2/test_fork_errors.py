"""What a fork and a read-only session refuse, with icechunk 2.3.0's class and kind (API-2.md §7.5).

Each scenario runs on pyicechunk and on icechunk 2.3.0 (the ``impl`` fixture), on both spec
versions; the repositories live on local storage because a fork is a serialized copy.
"""

from __future__ import annotations

import pytest
from oracle import InProcess, Oracle, raises

Impl = InProcess | Oracle

REPO = """
repo = icechunk.Repository.create(
    icechunk.local_filesystem_storage(str(workdir / "repo")), spec_version=SPEC
)
session = repo.writable_session("main")
_ = zarr.create_group(session.store)
_ = session.commit("root")
base = repo.writable_session("main")
fork = base.fork()
_ = zarr.create_group(fork.store, path="g")
"""


@pytest.mark.parametrize("spec", [1, 2])
def test_a_fork_cannot_commit_amend_or_flush(impl: Impl, spec: int) -> None:
    impl.run(REPO, SPEC=spec)
    calls = ["fork.commit('x')", "asyncio.run(fork.commit_async('x'))"]
    if spec == 2:  # on spec 1 the reference refuses amend for the spec version first
        calls.append("fork.amend('x')")
    for call in calls:
        with raises("SessionStateError", kind="commit-not-allowed") as caught:
            impl.run(f"import asyncio\n{call}")
        assert caught.value is not None
        assert caught.value.first_line.startswith(
            "session error: commits are not allowed on read-only or forked sessions"
        )
    for call in ("fork.flush('x')", "asyncio.run(fork.flush_async('x'))"):
        with raises("IcechunkError", kind="unknown") as caught:
            impl.run(f"import asyncio\n{call}")
        assert caught.value is not None
        assert caught.value.type == "IcechunkError"
        assert "cannot flush a forked session" in caught.value.first_line
    # Nothing was written: the branch still points at the first commit.
    assert impl.run("repo.lookup_branch('main') == session.snapshot_id") is True


@pytest.mark.parametrize("spec", [1, 2])
def test_a_fork_merges_only_forks(impl: Impl, spec: int) -> None:
    impl.run(REPO, SPEC=spec)
    with raises("SessionStateError", kind="merge-not-allowed") as caught:
        impl.run("fork.merge(repo.writable_session('main'))")
    assert caught.value is not None
    assert "cannot merge a branch session into a fork session" in caught.value.first_line
    # A fork merges into its base session, which commits it.
    impl.run("base.merge(fork)\nbase.commit('merged')")
    merged = impl.run("sorted(zarr.open_group(repo.readonly_session('main').store, mode='r'))")
    assert merged == ["g"]


@pytest.mark.parametrize("spec", [1, 2])
def test_a_read_only_session_cannot_fork(impl: Impl, spec: int) -> None:
    impl.run(REPO, SPEC=spec)
    with raises("SessionStateError", kind="cannot-fork-read-only-session") as caught:
        impl.run("repo.readonly_session('main').fork()")
    assert caught.value is not None
    assert caught.value.first_line.startswith("session error: cannot fork a read-only session")
    with raises("ReadOnlyError", kind="read-only-session"):
        impl.run("repo.readonly_session('main').merge(fork)")


@pytest.mark.parametrize("spec", [1, 2])
def test_a_session_merges_plain_sessions_too(impl: Impl, spec: int) -> None:
    impl.run(REPO, SPEC=spec)
    impl.run(
        "other = repo.writable_session('main')\n"
        "_ = zarr.create_group(base.store, path='a')\n"
        "_ = zarr.create_group(other.store, path='b')\n"
        "base.merge(other)\n"
        "_ = base.commit('both')"
    )
    merged = impl.run("sorted(zarr.open_group(repo.readonly_session('main').store, mode='r'))")
    assert merged == ["a", "b"]
