"""The class and kind of common failures, on pyicechunk and on icechunk 2.3.0 (API-2.md §3.4).

Each scenario runs the same snippet on both implementations (the ``impl`` fixture) and asserts
the class the reference raises (by name, through the error's MRO, as ``isinstance`` would) and
its ``kind``. Repositories are created with an explicit ``spec_version``.
"""

from __future__ import annotations

import pytest
from oracle import InProcess, Oracle, raises

Impl = InProcess | Oracle

STORE_IMPORTS = """
from zarr.core.buffer import default_buffer_prototype
from zarr.core.buffer.cpu import Buffer
"""

REPO = """
repo = icechunk.Repository.create(icechunk.in_memory_storage(), spec_version=SPEC)
session = repo.writable_session("main")
root = zarr.create_group(session.store)
arr = root.create_array("a", shape=(4,), chunks=(2,), dtype="i4")
arr[:] = np.arange(4, dtype="i4")
sid = session.commit("first")
"""


def _repo(impl: Impl, spec: int) -> None:
    impl.run(REPO, SPEC=spec)


@pytest.mark.parametrize("spec", [1, 2])
def test_missing_repository(impl: Impl, spec: int) -> None:
    with raises("RepositoryNotFoundError", kind="repository-not-found") as caught:
        impl.run("icechunk.Repository.open(icechunk.in_memory_storage())")
    assert caught.value is not None
    assert caught.value.first_line.startswith("the repository doesn't exist")
    assert caught.value.isa("KeyError")
    assert caught.value.notes[0].startswith("  x the repository doesn't exist")
    with raises("RepositoryNotFoundError", kind="repository-not-found"):
        impl.run(
            "icechunk.Repository.fetch_config("
            "icechunk.local_filesystem_storage(str(workdir / 'none')))"
        )


@pytest.mark.parametrize("spec", [1, 2])
def test_missing_refs(impl: Impl, spec: int) -> None:
    _repo(impl, spec)
    with raises("RefNotFoundError", kind="ref-not-found", match="ref not found `x`"):
        impl.run("repo.lookup_branch('x')")
    with raises("RefNotFoundError", kind="ref-not-found", match="ref not found `x`"):
        impl.run("repo.lookup_tag('x')")
    with raises("RefNotFoundError", kind="ref-not-found"):
        impl.run("repo.writable_session('x')")


def test_unknown_snapshot_v2(impl: Impl) -> None:
    _repo(impl, 2)
    with raises("SnapshotNotFoundError", kind="snapshot-not-found", match="00000000000000000000"):
        impl.run("repo.readonly_session(snapshot_id='0' * 20)")


def test_unknown_snapshot_v1(impl: Impl) -> None:
    _repo(impl, 1)
    with raises("StorageError", kind="object-not-found"):
        impl.run("repo.readonly_session(snapshot_id='0' * 20)")


@pytest.mark.parametrize("spec", [1, 2])
def test_malformed_snapshot_id(impl: Impl, spec: int) -> None:
    _repo(impl, spec)
    with raises("InvalidInputError", kind="invalid-snapshot-id", match="invalid snapshot id"):
        impl.run("repo.readonly_session(snapshot_id='abc')")
    with raises("ValueError", kind="invalid-snapshot-id"):
        impl.run("repo.create_tag('t', 'abc')")


def test_existing_branch(impl: Impl) -> None:
    _repo(impl, 2)
    with raises("AlreadyExistsError", kind="branch-already-exists", match="branch already exists"):
        impl.run("repo.create_branch('main', sid)")
    impl.run("repo.create_branch('bad/name', sid)")  # spec 2 accepts '/'


def test_existing_branch_v1(impl: Impl) -> None:
    _repo(impl, 1)
    with raises("ConflictError", kind="branch-update-conflict", match="branch update conflict"):
        impl.run("repo.create_branch('main', sid)")
    with raises("InvalidInputError", kind="invalid-ref-name", match="invalid ref name"):
        impl.run("repo.create_branch('bad/name', sid)")


@pytest.mark.parametrize("spec", [1, 2])
def test_delete_main(impl: Impl, spec: int) -> None:
    _repo(impl, spec)
    with raises("SessionStateError", kind="cannot-delete-main", match="main branch cannot be"):
        impl.run("repo.delete_branch('main')")


@pytest.mark.parametrize(
    ("spec", "again"), [(1, "tag-already-exists"), (2, "tag-previously-deleted")]
)
def test_tags(impl: Impl, spec: int, again: str) -> None:
    _repo(impl, spec)
    impl.run("repo.create_tag('t', sid)")
    with raises("AlreadyExistsError", kind="tag-already-exists", match="tag already exists"):
        impl.run("repo.create_tag('t', sid)")
    impl.run("repo.delete_tag('t')")
    with raises("AlreadyExistsError", kind=again):
        impl.run("repo.create_tag('t', sid)")
    with raises("RefNotFoundError", kind="ref-not-found"):
        impl.run("repo.delete_tag('nope')")


@pytest.mark.parametrize("spec", [1, 2])
def test_reset_branch_from_the_wrong_snapshot(impl: Impl, spec: int) -> None:
    _repo(impl, spec)
    with raises("ConflictError", kind="branch-update-conflict", match="branch update conflict"):
        impl.run(
            "repo.reset_branch('main', sid, from_snapshot_id=repo.lookup_branch('main')[::-1])"
        )


@pytest.mark.parametrize("spec", [1, 2])
def test_commit_states(impl: Impl, spec: int) -> None:
    _repo(impl, spec)
    impl.run("s = repo.writable_session('main')")
    with raises("SessionStateError", kind="no-changes-to-commit", match="no changes made"):
        impl.run("s.commit('nothing')")
    # After a commit the session is read-only.
    with raises("SessionStateError", kind="commit-not-allowed"):
        impl.run("session.commit('again')")
    with raises("SessionStateError", kind="commit-not-allowed"):
        impl.run("repo.readonly_session('main').commit('x')")


@pytest.mark.parametrize("spec", [1, 2])
def test_read_only_store(impl: Impl, spec: int) -> None:
    _repo(impl, spec)
    impl.run(STORE_IMPORTS)
    # The session committed, so its store is read-only now.
    with raises("ReadOnlyError", kind="read-only-store", match="cannot write to read-only store"):
        impl.run("await session.store.set('a/c/0', Buffer.from_bytes(b'1234'))")


@pytest.mark.parametrize("spec", [1, 2])
def test_conflicts(impl: Impl, spec: int) -> None:
    _repo(impl, spec)
    impl.run(
        """
        ours, theirs = repo.writable_session("main"), repo.writable_session("main")
        zarr.open_array(theirs.store, path="a", mode="r+")[0] = 10
        theirs.commit("theirs")
        zarr.open_array(ours.store, path="a", mode="r+")[0] = 20
        """
    )
    with raises("ConflictError", kind="commit-conflict", match="Failed to commit, expected"):
        impl.run("ours.commit('ours')")
    with raises("RebaseFailedError", kind="rebase-failed", match="Rebase failed on snapshot"):
        impl.run("ours.rebase(icechunk.ConflictDetector())")
    with raises("IcechunkError", kind="rebase-failed"):  # inside the tree in 2.x
        impl.run("ours.rebase(icechunk.ConflictDetector())")


@pytest.mark.parametrize("spec", [1, 2])
def test_create_in_a_used_prefix(impl: Impl, spec: int) -> None:
    create = (
        "icechunk.Repository.create(icechunk.local_filesystem_storage(path), spec_version=SPEC)"
    )
    impl.run(f"path = str(workdir / 'r'); {create}; None", SPEC=spec)
    with raises("InvalidInputError", kind="parent-directory-not-clean", match="clean prefixes"):
        impl.run(create, SPEC=spec)


def test_create_over_a_v2_repository_without_the_check(impl: Impl) -> None:
    impl.run(
        "path = str(workdir / 'r'); repo = icechunk.Repository.create("
        "icechunk.local_filesystem_storage(path), spec_version=2); None"
    )
    with raises("ConflictError", kind="repo-info-updated"):
        impl.run(
            "icechunk.Repository.create(icechunk.local_filesystem_storage(path), "
            "spec_version=2, check_clean_root=False)"
        )


@pytest.mark.parametrize("spec", [1, 2])
def test_diff_and_time_travel(impl: Impl, spec: int) -> None:
    _repo(impl, spec)
    with raises("InvalidInputError", kind="bad-snapshot-chain-for-diff"):
        impl.run("repo.diff(from_branch='main', to_branch='main')")
    with raises("SnapshotNotFoundError", kind="no-snapshot-at-time", match="does not have a"):
        impl.run(
            "import datetime; repo.readonly_session('main', as_of=datetime.datetime(2000, 1, 1, "
            "tzinfo=datetime.timezone.utc))"
        )


STORE = """
store = repo.writable_session("main").store
"""


@pytest.mark.parametrize("spec", [1, 2])
def test_store_keys(impl: Impl, spec: int) -> None:
    _repo(impl, spec)
    impl.run(STORE_IMPORTS)
    impl.run(STORE)
    with raises("InvalidInputError", kind="invalid-chunk-index", match="invalid chunk index"):
        impl.run("await store.set('a/c/9', Buffer.from_bytes(b'1234'))")
    with raises("InvalidInputError", kind="invalid-key", match="invalid zarr key format"):
        impl.run("await store.get('a/zzz', default_buffer_prototype())")
    with raises("NodeNotFoundError", kind="node-not-found", match="node not found at `/nope`"):
        impl.run("await store.getsize('nope/zarr.json')")
    with raises("SessionStateError", kind="unimplemented", match="set_partial_values"):
        impl.run("await store.set_partial_values([])")


ZERO_LENGTH = (
    r"^zero-length chunk: the payload for coordinates ChunkIndices\(\[0\]\) of the array at /a "
    "has length 0"
)


@pytest.mark.parametrize("spec", [1, 2])
def test_zero_length_chunk(impl: Impl, spec: int) -> None:
    _repo(impl, spec)
    impl.run(STORE_IMPORTS)
    impl.run(STORE)
    listing = "sorted([k async for k in store.list_prefix('a')])"
    before = impl.run(listing)
    with raises("InvalidInputError", kind="zero-length-chunk", match=ZERO_LENGTH):
        impl.run("await store.set('a/c/0', Buffer.from_bytes(b''))")
    # A virtual reference of length 0 too, before its coordinates are checked.
    for coords in ("0", "9"):
        with raises("InvalidInputError", kind="zero-length-chunk"):
            impl.run(
                f"store.set_virtual_ref('a/c/{coords}', 's3://b/x', offset=0, length=0,"
                " validate_container=False)"
            )
    assert impl.run(listing) == before  # nothing was recorded


def test_spec2_only_operations_on_spec1(impl: Impl) -> None:
    _repo(impl, 1)
    # (Session.amend on spec 1 is a pyicechunk extension; icechunk 2.3.0 refuses it there.)
    with raises("FormatError", kind="unsupported-operation-for-version", match="amend is not"):
        impl.run("repo.rewrite_manifests('m', branch='main', commit_method='amend')")


def test_rebase_of_a_read_only_session(impl: Impl) -> None:
    _repo(impl, 2)
    with raises("SessionStateError", kind="commit-not-allowed"):
        impl.run("repo.readonly_session('main').rebase(icechunk.ConflictDetector())")


def test_hand_built_errors(impl: Impl) -> None:
    assert impl.run("icechunk.IcechunkError('boom').kind") == "unknown"
    assert impl.run("icechunk.IcechunkError('boom', 'io').args") == ("boom", "io")
    assert impl.run("repr(icechunk.IcechunkError('boom'))") == (
        'icechunk.IcechunkError(message="boom", kind="unknown")'
    )
    assert impl.run("icechunk.ErrorKind('io') is icechunk.ErrorKind.IO")
    assert impl.run("str(icechunk.RefNotFoundError('m', 'ref-not-found'))") == "m"
    got = impl.run(
        """
        import pickle
        e = pickle.loads(pickle.dumps(icechunk.RefNotFoundError("m", "ref-not-found")))
        (type(e).__name__, e.kind, e.message, isinstance(e, KeyError))
        """
    )
    assert got == ("RefNotFoundError", "ref-not-found", "m", True)
    assert impl.run("repr(icechunk.ConflictError('A', 'B'))") == (
        "icechunk.ConflictError(expected_parent=A, actual_parent=B)"
    )
    assert impl.run("icechunk.ConflictError('A', 'B').kind") == "commit-conflict"
    assert impl.run("repr(icechunk.RebaseFailedError('S', []))") == (
        'icechunk.RebaseFailedError(snapshot="S", conflicts=[])'
    )


def test_error_kinds_are_the_references(both: object) -> None:
    from oracle import Both

    assert isinstance(both, Both)
    ours = both.ours.run("sorted(k.value for k in icechunk.ErrorKind)")
    ref = both.reference.run("sorted(icechunk._icechunk_python._all_error_kinds())")
    assert ours == ref and len(ours) == 100
    names = both.ours.run("[k.name for k in icechunk.ErrorKind]")
    assert names == both.reference.run("[k.name for k in icechunk.ErrorKind]")
    classes = "sorted(n for n in icechunk.__all__ if n.endswith('Error'))"
    assert both.ours.run(classes) == both.reference.run(classes)


def test_read_only_repository_status(impl: Impl) -> None:
    _repo(impl, 2)
    impl.run(
        "repo.set_status(icechunk.RepoStatus(icechunk.RepoAvailability.read_only, "
        "limited_availability_reason='maint'))"
    )
    with raises("ReadOnlyError", kind="read-only-repository", match='reason: Some\\("maint"\\)'):
        impl.run("repo.writable_session('main')")
    assert impl.run("repo.readonly_session('main').read_only")


def test_feature_flags(impl: Impl) -> None:
    _repo(impl, 2)
    with raises("InvalidInputError", kind="invalid-feature-flag", match="bogus"):
        impl.run("repo.set_feature_flag('bogus', True)")
    impl.run("repo.create_tag('t', sid); repo.set_feature_flag('delete_tag', False)")
    with raises("SessionStateError", kind="feature-flag-disabled", match="delete_tag"):
        impl.run("repo.delete_tag('t')")


@pytest.mark.parametrize(
    "call",
    [
        "list(repo.ops_log())",
        "repo.get_metadata()",
        "repo.set_metadata({'a': 1})",
        "repo.get_status()",
        "repo.feature_flags()",
    ],
)
def test_spec2_only_repository_calls_on_spec1(impl: Impl, call: str) -> None:
    _repo(impl, 1)
    with raises("FormatError", kind="unsupported-spec-version", match="at least version 2.0"):
        impl.run(call)


MORE = [
    ("repo.readonly_session('main').chunk_type('a', [0])", "InvalidInputError", "invalid-path"),
    (
        "repo.readonly_session('main').chunk_type('/nope', [0])",
        "NodeNotFoundError",
        "node-not-found",
    ),
    ("repo.reset_branch('nope', sid)", "RefNotFoundError", "ref-not-found"),
    ("repo.delete_branch('nope')", "RefNotFoundError", "ref-not-found"),
    ("list(repo.ancestry(branch='nope'))", "RefNotFoundError", "ref-not-found"),
    ("repo.readonly_session(tag='nope')", "RefNotFoundError", "ref-not-found"),
    ("repo.lookup_snapshot('abc')", "InvalidInputError", "invalid-snapshot-id"),
    (
        "[c async for c in repo.readonly_session('main').chunk_coordinates('/nope')]",
        "NodeNotFoundError",
        "node-not-found",
    ),
    ("repo.readonly_session('main').store.sync_clear()", "ReadOnlyError", None),
]


@pytest.mark.parametrize("spec", [1, 2])
@pytest.mark.parametrize(("call", "cls", "kind"), MORE, ids=[m[0][:40] for m in MORE])
def test_more_failures(impl: Impl, spec: int, call: str, cls: str, kind: str | None) -> None:
    _repo(impl, spec)
    if kind is None:
        with raises(cls):
            impl.run(call)
    else:
        with raises(cls, kind=kind):
            impl.run(call)


@pytest.mark.parametrize("spec", [1, 2])
def test_unknown_snapshot_for_a_new_ref(impl: Impl, spec: int) -> None:
    _repo(impl, spec)
    cls, kind = ("SnapshotNotFoundError", "snapshot-not-found")
    if spec == 1:
        cls, kind = ("StorageError", "object-not-found")
    with raises(cls, kind=kind):
        impl.run("repo.create_branch('b', '0' * 20)")
    with raises(cls, kind=kind):
        impl.run("repo.create_tag('t', '0' * 20)")
