"""The exception tree itself: construction from a kind, pickling, notes, 1.1 compatibility."""

from __future__ import annotations

import copy
import pickle

import pytest

import pyicechunk as ic
from pyicechunk.exceptions import KeyNotFoundError, ObjectNotFoundError

TREE = {
    "ConflictError": "IcechunkError",
    "RebaseFailedError": "ConflictError",
    "NotFoundError": "IcechunkError",
    "NodeNotFoundError": "NotFoundError",
    "SnapshotNotFoundError": "NotFoundError",
    "RefNotFoundError": "NotFoundError",
    "RepositoryNotFoundError": "NotFoundError",
    "AlreadyExistsError": "IcechunkError",
    "ReadOnlyError": "IcechunkError",
    "InvalidInputError": "IcechunkError",
    "SessionStateError": "IcechunkError",
    "StorageError": "IcechunkError",
    "FormatError": "IcechunkError",
    "InternalError": "IcechunkError",
}


def test_the_tree() -> None:
    for name, base in TREE.items():
        assert getattr(ic, name).__bases__[0] is getattr(ic, base), name
    assert issubclass(ic.NotFoundError, KeyError)
    assert issubclass(ic.InvalidInputError, ValueError)
    assert not issubclass(ic.IcechunkError, (KeyError, ValueError))


@pytest.mark.parametrize("kind", list(ic.ErrorKind))
def test_every_kind_builds_an_error_of_the_tree(kind: ic.ErrorKind) -> None:
    err = ic.IcechunkError("boom", kind=kind)
    assert isinstance(err, ic.IcechunkError)
    assert err.kind == kind.value and type(err.kind) is str
    assert err.message == str(err) == "boom"
    assert err.__notes__ == ["  x boom\n"]
    copied = pickle.loads(pickle.dumps(err))
    assert (type(copied), copied.kind, copied.message) == (type(err), err.kind, "boom")
    assert type(copy.copy(err)) is type(err)
    if kind in (ic.ErrorKind.UNKNOWN,):
        assert type(err) is ic.IcechunkError
    else:
        assert type(err) is not ic.IcechunkError, kind


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("ref-not-found", ic.RefNotFoundError),
        ("tag-not-found", ic.RefNotFoundError),
        ("repository-not-found", ic.RepositoryNotFoundError),
        ("no-snapshot-at-time", ic.SnapshotNotFoundError),
        ("chunk-not-found", ic.NodeNotFoundError),
        ("tag-previously-deleted", ic.AlreadyExistsError),
        ("read-only-repository", ic.ReadOnlyError),
        ("bad-snapshot-chain-for-diff", ic.InvalidInputError),
        ("feature-flag-disabled", ic.SessionStateError),
        ("object-not-found", ic.StorageError),
        ("manifest-info-not-found", ic.FormatError),
        ("poison-lock", ic.InternalError),
        ("repo-info-updated", ic.ConflictError),
    ],
)
def test_the_class_follows_the_kind(kind: str, cls: type) -> None:
    assert type(ic.IcechunkError("m", kind)) is cls
    assert type(ic.IcechunkError(message="m", kind=kind)) is cls
    # A subclass called directly is that subclass, whatever the kind.
    assert type(ic.StorageError("m", kind)) is ic.StorageError


def test_conflict_kinds_keep_the_conflict_shape() -> None:
    err = ic.IcechunkError("config was updated", kind="config-updated")
    assert type(err) is ic.ConflictError
    assert (err.expected_parent, err.actual_parent) == (None, None)
    assert err.message == str(err) == "config was updated"
    assert err.args == (None, None, "config was updated", "config-updated")
    copied = pickle.loads(pickle.dumps(err))
    assert (copied.kind, copied.message) == ("config-updated", "config was updated")
    plain = ic.ConflictError("A", "B")
    assert plain.args == ("A", "B") and plain.kind == "commit-conflict"
    assert pickle.loads(pickle.dumps(plain)).args == ("A", "B")
    rebase = ic.RebaseFailedError("S", [])
    assert (rebase.kind, rebase.expected_parent, rebase.args) == ("rebase-failed", None, ("S", []))
    try:
        raise rebase
    except ic.IcechunkError as caught:  # 2.x: inside the tree
        assert caught is rebase


def test_internal_classes_show_as_their_public_class() -> None:
    missing = KeyNotFoundError("/a")
    assert isinstance(missing, ic.NodeNotFoundError) and isinstance(missing, KeyError)
    assert missing.kind == "node-not-found" and str(missing) == "node not found at `/a`"
    assert repr(missing).startswith('icechunk.NodeNotFoundError(message="node not found')
    gone = ObjectNotFoundError("chunks/X")
    assert isinstance(gone, ic.StorageError) and gone.kind == "object-not-found"
    assert pickle.loads(pickle.dumps(gone)).key == "chunks/X"


def test_the_report_note_covers_every_line() -> None:
    err = ic.IcechunkError("first line\n\nmore detail", kind="io")
    assert err.__notes__ == ["  x first line\n  | \n  | more detail\n"]


def test_raised_errors_are_caught_by_their_old_python_types() -> None:
    repo = ic.Repository.create(ic.in_memory_storage(), spec_version=2)
    with pytest.raises(KeyError):
        repo.lookup_branch("nope")
    with pytest.raises(ValueError):
        repo.readonly_session(snapshot_id="abc")
    with pytest.raises(ic.IcechunkError) as info:
        repo.delete_branch("main")
    assert info.value.kind == ic.ErrorKind.CANNOT_DELETE_MAIN


def test_an_error_kind_member_is_stored_as_its_code() -> None:
    err = ic.IcechunkError("m", ic.ErrorKind.IO)
    assert err.args == ("m", "io") and type(err.args[1]) is str and type(err.kind) is str
    assert type(err) is ic.StorageError
