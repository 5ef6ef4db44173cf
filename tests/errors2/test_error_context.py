"""The ``context:`` lines at the end of an error's text, on pyicechunk and on icechunk 2.3.0.

icechunk 2.x appends to ``str(e)`` (which is also ``e.message``) a blank line, ``context:``
and one numbered entry per operation that was under way, innermost first, each with an
optional ``with`` line of arguments and an ``at`` line; the PEP 678 note carries the same text
as a report. Each scenario runs on both implementations (``impl``) and checks that shape, that
the outermost entry names the API call and that the arguments the reference shows are shown.
Span names differ by design (Rust modules there, Python functions here).
"""

from __future__ import annotations

import pickle
import re

import pytest
from oracle import InProcess, Oracle, raises

import pyicechunk as ic
from pyicechunk._error_context import without_context

Impl = InProcess | Oracle

REPO = """
from zarr.core.buffer import default_buffer_prototype
from zarr.core.buffer.cpu import Buffer
repo = icechunk.Repository.create(icechunk.in_memory_storage(), spec_version=2)
session = repo.writable_session("main")
zarr.create_group(session.store)
sid = session.commit("first")
"""

_ENTRY = re.compile(
    r"^ {3,}(?P<index>\d+): (?P<span>\S+)\n(?: {11}with (?P<fields>[^\n]*)\n)? {13}at \S+:\d+$",
    re.MULTILINE,
)


def _context(text: str) -> list[tuple[str, str]]:
    """The (span, fields) entries of an error text, checking the block's layout."""
    head, sep, block = text.partition("\n\ncontext:\n")
    assert sep and head and "\n" not in head, text
    entries = list(_ENTRY.finditer(block))
    assert entries, text
    assert "\n".join(m.group(0) for m in entries) == block, text
    assert [int(m.group("index")) for m in entries] == list(range(len(entries)))
    return [(m.group("span"), m.group("fields") or "") for m in entries]


# (snippet, class, kind, what the outermost entry names, a pattern of an argument it shows)
SCENARIOS = [
    ("repo.lookup_branch('x')", "RefNotFoundError", "ref-not-found", "lookup_branch", 'branch="x"'),
    ("repo.lookup_tag('x')", "RefNotFoundError", "ref-not-found", "lookup_tag", 'tag="x"'),
    (
        "repo.writable_session('nope')",
        "RefNotFoundError",
        "ref-not-found",
        "writable_session",
        'branch="nope"',
    ),
    (
        "repo.readonly_session(snapshot_id='0' * 20)",
        "SnapshotNotFoundError",
        "snapshot-not-found",
        "readonly_session",
        "00000000000000000000",
    ),
    (
        "repo.create_branch('main', sid)",
        "AlreadyExistsError",
        "branch-already-exists",
        "create_branch",
        'branch(_name)?="main"',
    ),
    (
        "repo.delete_branch('main')",
        "SessionStateError",
        "cannot-delete-main",
        "delete_branch",
        'branch="main"',
    ),
    (
        "repo.writable_session('main').commit('nothing')",
        "SessionStateError",
        "no-changes-to-commit",
        "commit",
        "allow_empty=false",
    ),
    (
        "sync(repo.writable_session('main').store.get('a/zzz', default_buffer_prototype()))",
        "InvalidInputError",
        "invalid-key",
        "get",
        'key="a/zzz"',
    ),
    (
        "sync(repo.readonly_session('main').store.set('x/zarr.json', Buffer.from_bytes(b'{}')))",
        "ReadOnlyError",
        "read-only-store",
        "set",
        'key="x/zarr.json"',
    ),
    (
        "sync(repo.writable_session('main').store.getsize('nope/zarr.json'))",
        "NodeNotFoundError",
        "node-not-found",
        "getsize",
        'key="nope/zarr.json"',
    ),
]


@pytest.mark.parametrize(("snippet", "cls", "kind", "operation", "argument"), SCENARIOS)
def test_context_lines(
    impl: Impl, snippet: str, cls: str, kind: str, operation: str, argument: str
) -> None:
    impl.run(REPO + "\nimport asyncio\nsync = asyncio.run")
    with raises(cls, kind=kind) as caught:
        impl.run(snippet)
    error = caught.value
    assert error is not None
    assert error.text == error.message
    entries = _context(error.text)
    outer_span = entries[-1][0]
    assert re.search(rf"\b{operation}(_v2|_async|_inner)?$", outer_span), entries
    # the reference names the argument on its API entry: here, on one of the entries
    assert any(re.search(argument, fields) for _, fields in entries), entries
    # the report in the note carries the same lines (the reference has none for getsize)
    for note in error.notes:
        assert note.startswith(f"  x {error.first_line}\n")
        assert "\n  | context:\n" in note


@pytest.mark.parametrize("spec", [1, 2])
def test_open_of_a_missing_repository(impl: Impl, spec: int) -> None:
    with raises("RepositoryNotFoundError", kind="repository-not-found") as caught:
        impl.run("icechunk.Repository.open(icechunk.in_memory_storage())")
    assert caught.value is not None
    assert re.search(r"\bopen(_async)?$", _context(caught.value.text)[-1][0])


def test_commit_conflicts_and_rebase_failures_have_none(impl: Impl) -> None:
    impl.run(REPO)
    setup = """
s1 = repo.writable_session("main"); s2 = repo.writable_session("main")
zarr.create_group(s1.store, path="g1"); zarr.create_group(s2.store, path="g2")
s1.commit("a")
"""
    impl.run(setup)
    with raises("ConflictError", kind="commit-conflict") as caught:
        impl.run("s2.commit('b')")
    assert caught.value is not None and "context:" not in caught.value.text
    built = impl.run(
        "[str(icechunk.IcechunkError('boom')), "
        "str(icechunk.RebaseFailedError('S', [])), str(icechunk.ConflictError('A', 'B'))]"
    )
    assert built == [
        "boom",
        "Rebase failed on snapshot S: 0 conflicts found",
        'Failed to commit, expected parent: Some("A"), actual parent: Some("B")',
    ]


def test_a_branch_update_conflict_has_context(impl: Impl) -> None:
    impl.run(REPO)
    with raises("ConflictError", kind="branch-update-conflict") as caught:
        impl.run("repo.reset_branch('main', sid, from_snapshot_id='1CECHNKREP0F1RSTCMT0')")
    assert caught.value is not None
    assert re.search(r"\breset_branch(_async)?$", _context(caught.value.text)[-1][0])


def test_quoting_another_error_keeps_one_block() -> None:
    repo = ic.Repository.create(ic.in_memory_storage())
    with pytest.raises(ic.RefNotFoundError) as caught:
        repo.lookup_branch("x")
    inner = caught.value
    quoted = f"while opening: {inner.message}; retry"
    assert without_context(quoted) == "while opening: ref not found `x`; retry"
    # built outside pyicechunk, an error keeps the text it is given, as pickling needs
    assert ic.IcechunkError(quoted, kind="io").message == quoted
    copy = pickle.loads(pickle.dumps(inner))
    assert copy.message == inner.message == copy.args[0] and copy.kind == "ref-not-found"


def test_no_argument_outside_the_allow_list_shows(tmp_path: object) -> None:
    storage = ic.s3_storage(
        bucket="b",
        prefix="p",
        endpoint_url="http://127.0.0.1:9",
        allow_http=True,
        access_key_id="AKIAEXAMPLE",
        secret_access_key="s3cr3t-in-no-context-line",
        region="us-east-1",
    )
    with pytest.raises(ic.IcechunkError) as caught:
        ic.Repository.open(
            storage,
            ic.RepositoryConfig(
                storage=ic.StorageSettings(retries=ic.StorageRetriesSettings(max_tries=1))
            ),
        )
    text = caught.value.message + "".join(caught.value.__notes__)
    assert "s3cr3t" not in text and "AKIAEXAMPLE" not in text
    assert "\n\ncontext:\n" in text
