"""Errors raised by pyicechunk: icechunk 2.x's typed exception tree.

Every error is an :class:`IcechunkError` with a ``message`` and a ``kind`` (an
:class:`ErrorKind` value such as ``"ref-not-found"``). The class says what a handler would do
about the failure, the kind says precisely which failure it was::

    IcechunkError
    ├── ConflictError
    │   └── RebaseFailedError
    ├── NotFoundError                 (also a KeyError)
    │   ├── NodeNotFoundError
    │   ├── SnapshotNotFoundError
    │   ├── RefNotFoundError
    │   └── RepositoryNotFoundError
    ├── AlreadyExistsError
    ├── ReadOnlyError
    ├── InvalidInputError             (also a ValueError)
    ├── SessionStateError
    ├── StorageError
    ├── FormatError
    └── InternalError

``IcechunkError(message, kind=...)`` builds an instance of the class the reference raises for
that kind (``IcechunkError("x", kind="ref-not-found")`` is a :class:`RefNotFoundError`), so a
raise site names only the kind. A subclass called directly builds that subclass. Each error
carries a PEP 678 note with the report icechunk 1.x printed as ``str(e)`` (``"  x <message>"``).

As in icechunk 2.x, an error raised by pyicechunk ends its message with ``context:`` lines: the
operations under way when it was made, innermost first (:mod:`pyicechunk._error_context`). An
error built by user code has none, and an error that quotes another's text drops the quoted
block, so a message never carries two.

In icechunk 1.1 ``ConflictError`` and ``RebaseFailedError`` derived from ``Exception``; 2.x moved
them into the tree, and so do we (``except IcechunkError`` now catches them too).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any, TypeVar

from pyicechunk._error_context import context_block, without_context

__all__ = [
    "AlreadyExistsError",
    "ConflictError",
    "ErrorKind",
    "FormatError",
    "IcechunkError",
    "InternalError",
    "InvalidInputError",
    "NodeNotFoundError",
    "NotFoundError",
    "ReadOnlyError",
    "RebaseFailedError",
    "RefNotFoundError",
    "RepositoryNotFoundError",
    "SessionStateError",
    "SnapshotNotFoundError",
    "StorageError",
]


class ErrorKind(enum.StrEnum):
    """The stable codes an error's ``kind`` takes (icechunk 2.3.0's 100 codes, in its order).

    Members compare equal to their strings: ``e.kind == ErrorKind.REF_NOT_FOUND``. The list only
    grows; a code is never renamed.
    """

    # conflicts
    COMMIT_CONFLICT = "commit-conflict"
    BRANCH_UPDATE_CONFLICT = "branch-update-conflict"
    REBASE_FAILED = "rebase-failed"
    CONFIG_UPDATED = "config-updated"
    REPO_INFO_UPDATED = "repo-info-updated"
    UPDATE_ATTEMPTS_EXHAUSTED = "update-attempts-exhausted"
    GC_DELETES_FAILING = "gc-deletes-failing"
    # not found
    NODE_NOT_FOUND = "node-not-found"
    ANCESTOR_NODE_NOT_FOUND = "ancestor-node-not-found"
    CHUNK_NOT_FOUND = "chunk-not-found"
    KEY_NOT_FOUND = "key-not-found"
    SNAPSHOT_NOT_FOUND = "snapshot-not-found"
    NO_SNAPSHOT_AT_TIME = "no-snapshot-at-time"
    REF_NOT_FOUND = "ref-not-found"
    BRANCH_NOT_FOUND = "branch-not-found"
    TAG_NOT_FOUND = "tag-not-found"
    REPOSITORY_NOT_FOUND = "repository-not-found"
    MANIFEST_INFO_NOT_FOUND = "manifest-info-not-found"
    # already exists
    NODE_ALREADY_EXISTS = "node-already-exists"
    BRANCH_ALREADY_EXISTS = "branch-already-exists"
    TAG_ALREADY_EXISTS = "tag-already-exists"
    TAG_PREVIOUSLY_DELETED = "tag-previously-deleted"
    MOVE_WONT_OVERWRITE = "move-wont-overwrite"
    # read only
    READ_ONLY_SESSION = "read-only-session"
    READ_ONLY_STORE = "read-only-store"
    READ_ONLY_STORAGE = "read-only-storage"
    READ_ONLY_REPOSITORY = "read-only-repository"
    # invalid input
    INVALID_KEY = "invalid-key"
    INVALID_CHUNK_INDEX = "invalid-chunk-index"
    ZERO_LENGTH_CHUNK = "zero-length-chunk"
    INVALID_MANIFEST_SPLIT_INDEX = "invalid-manifest-split-index"
    INVALID_REF_TYPE = "invalid-ref-type"
    INVALID_REF_NAME = "invalid-ref-name"
    INVALID_SNAPSHOT_ID = "invalid-snapshot-id"
    INVALID_PATH = "invalid-path"
    BAD_KEY_PREFIX = "bad-key-prefix"
    BAD_METADATA = "bad-metadata"
    BAD_PREFIX = "bad-prefix"
    NOT_AN_ARRAY = "not-an-array"
    NOT_A_GROUP = "not-a-group"
    INVALID_BYTE_RANGE = "invalid-byte-range"
    INVALID_COMMIT_CONFIGURATION = "invalid-commit-configuration"
    INVALID_ARRAY_METADATA = "invalid-array-metadata"
    INVALID_FEATURE_FLAG = "invalid-feature-flag"
    INVALID_VIRTUAL_REF = "invalid-virtual-ref"
    INVALID_CREDENTIALS = "invalid-credentials"
    NO_CONTAINER_FOR_VIRTUAL_CHUNK = "no-container-for-virtual-chunk"
    UNAUTHORIZED_VIRTUAL_CHUNK_CONTAINER = "unauthorized-virtual-chunk-container"
    EMPTY_PREFIX_CREATION = "empty-prefix-creation"
    PARENT_DIRECTORY_NOT_CLEAN = "parent-directory-not-clean"
    BAD_SNAPSHOT_CHAIN_FOR_DIFF = "bad-snapshot-chain-for-diff"
    # session and repository state
    COMMIT_NOT_ALLOWED = "commit-not-allowed"
    MERGE_NOT_ALLOWED = "merge-not-allowed"
    CANNOT_FORK_READ_ONLY_SESSION = "cannot-fork-read-only-session"
    REARRANGE_SESSION_ONLY = "rearrange-session-only"
    NON_REARRANGE_SESSION = "non-rearrange-session"
    MOVE_INTO_SELF_OR_DESCENDANT = "move-into-self-or-descendant"
    MOVE_DESTINATION_PARENT_MISSING = "move-destination-parent-missing"
    MOVE_DESTINATION_PARENT_NOT_GROUP = "move-destination-parent-not-group"
    NO_CHANGES_TO_COMMIT = "no-changes-to-commit"
    NO_AMEND_FOR_INITIAL_COMMIT = "no-amend-for-initial-commit"
    NOT_ON_BRANCH = "not-on-branch"
    NO_SNAPSHOT = "no-snapshot"
    CANNOT_DELETE_MAIN = "cannot-delete-main"
    UNCOMMITTED_CHANGES = "uncommitted-changes"
    MERGE_FAILED = "merge-failed"
    NOT_ALLOWED = "not-allowed"
    UNIMPLEMENTED = "unimplemented"
    REBASE_TX_LOG_PRUNED = "rebase-tx-log-pruned"
    FEATURE_FLAG_DISABLED = "feature-flag-disabled"
    TAG_ERROR = "tag-error"
    INVALID_REPOSITORY_MIGRATION = "invalid-repository-migration"
    # storage and environment
    OBJECT_NOT_FOUND = "object-not-found"
    OBJECT_STORE = "object-store"
    IO = "io"
    STORAGE_CONFIG = "storage-config"
    CANNOT_PARSE_URL = "cannot-parse-url"
    BAD_REDIRECT = "bad-redirect"
    SEMAPHORE_ACQUIRE = "semaphore-acquire"
    THROTTLED = "throttled"
    STORAGE_OTHER = "storage-other"
    VIRTUAL_CHUNK_FETCH = "virtual-chunk-fetch"
    VIRTUAL_CHUNK_MODIFIED = "virtual-chunk-modified"
    INVALID_OBJECT_SIZE = "invalid-object-size"
    # format
    SERIALIZATION = "serialization"
    DESERIALIZATION = "deserialization"
    CONFIG_DESERIALIZATION = "config-deserialization"
    INVALID_FILE_FORMAT = "invalid-file-format"
    UNSUPPORTED_SPEC_VERSION = "unsupported-spec-version"
    UNSUPPORTED_OPERATION_FOR_VERSION = "unsupported-operation-for-version"
    SNAPSHOT_TIMESTAMP = "snapshot-timestamp"
    DUPLICATE_SNAPSHOT_ID = "duplicate-snapshot-id"
    # internal
    CONCURRENCY = "concurrency"
    FLUSH = "flush"
    PARTIAL_VALUES_PANIC = "partial-values-panic"
    CONFLICTING_PATH_NOT_FOUND = "conflicting-path-not-found"
    INCONSISTENT_MANIFESTS = "inconsistent-manifests"
    POISON_LOCK = "poison-lock"
    PICKLE = "pickle"
    UNKNOWN = "unknown"


_E = TypeVar("_E")


class _ErrorClass(type):
    """Metaclass of the tree: a call of the root class builds the subclass its kind names.

    Only ``IcechunkError(...)`` itself dispatches; calling a subclass, and unpickling, build
    exactly the class called.
    """

    def __call__(cls: type[_E], *args: Any, **kwargs: Any) -> _E:
        if cls is IcechunkError:
            kind = kwargs.get("kind", args[1] if len(args) > 1 else None)
            target = _CLASS_OF_KIND.get(str(kind)) if kind is not None else None
            if target is not None and target is not cls:
                if issubclass(target, ConflictError):
                    message = kwargs.get("message", args[0] if args else None)
                    return target(message=message, kind=kind)  # type: ignore[return-value]
                return target(*args, **kwargs)  # type: ignore[return-value]
        return type.__call__(cls, *args, **kwargs)  # type: ignore[no-any-return]


def _qualified(cls: type) -> str:
    # Reprs spell the classes as icechunk 2.x prints them, so that output written for the
    # reference (doctests, logs) reads the same with ``import pyicechunk as icechunk``;
    # internal subclasses show as the public class they belong to.
    public = next(c for c in cls.__mro__ if c.__name__ in __all__ and c.__module__ == __name__)
    return f"icechunk.{public.__name__}"


def _report(message: str) -> str:
    """icechunk 1.x's text of an error (a miette report): ``"  x "`` then ``"  | "`` lines."""
    first, *rest = message.split("\n")
    return "".join([f"  x {first}\n", *(f"  | {line}\n" for line in rest)])


class IcechunkError(Exception, metaclass=_ErrorClass):
    """An error from a repository, session, store or storage operation.

    Parameters
    ----------
    message
        What went wrong, and where possible what to do about it.
    kind
        The :class:`ErrorKind` code of the failure. ``IcechunkError(message, kind)`` returns an
        instance of the subclass the reference raises for that kind. Without one the kind is
        ``"unknown"``.

    Attributes
    ----------
    message : str
        The error text; also ``str(e)``.
    kind : str
        The :class:`ErrorKind` value naming the failure.
    """

    _default_kind: str = ErrorKind.UNKNOWN.value

    def __init__(self, message: str, kind: str | None = None) -> None:
        block = context_block() if self._has_context() else ""
        if block:
            # Built inside pyicechunk: its own context replaces any that the text quotes.
            message = without_context(message) + block
        if kind is None:
            super().__init__(message)
        else:
            kind = str(kind)  # an ErrorKind member is stored as its plain code
            super().__init__(message, kind)
        self.message = message
        self.kind = self._default_kind if kind is None else kind
        self.add_note(_report(message))

    def _has_context(self) -> bool:
        """Whether the message gets ``context:`` lines (as the reference's do)."""
        return True

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f'{_qualified(type(self))}(message="{self.message}", kind="{self.kind}")'


class NotFoundError(IcechunkError, KeyError):
    """Something asked for does not exist. Also a ``KeyError``, as in icechunk 2.x."""


class NodeNotFoundError(NotFoundError):
    """No group, array or chunk at the given path."""


class SnapshotNotFoundError(NotFoundError):
    """No snapshot with the given id, or none at the given time."""


class RefNotFoundError(NotFoundError):
    """No branch or tag with the given name."""


class RepositoryNotFoundError(NotFoundError):
    """No Icechunk repository at the given storage location."""


class AlreadyExistsError(IcechunkError):
    """What was being created (node, branch, tag, move target) already exists."""


class ReadOnlyError(IcechunkError):
    """A write through a read-only session, store, storage or repository."""


class InvalidInputError(IcechunkError, ValueError):
    """An invalid argument, key, index or metadata value. Also a ``ValueError``."""


class SessionStateError(IcechunkError):
    """The operation is not allowed in the current session or repository state."""


class StorageError(IcechunkError):
    """The object store or the local storage failed, or is misconfigured."""


class FormatError(IcechunkError):
    """Stored data cannot be read or written: damage, (de)serialization, spec version."""


class InternalError(IcechunkError):
    """An unexpected internal failure: a bug worth reporting."""


class _KeyedError(IcechunkError):
    """Base of the internal errors about one missing key: built from the key, which it keeps.

    Each subclass sets ``_key_message``, its default text with a ``{key}`` field.
    """

    _key_message: str

    def __init__(self, key: str, message: str | None = None) -> None:
        super().__init__(message or self._key_message.format(key=key))
        self.key = key

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.key, self.message))


class ObjectNotFoundError(_KeyedError, StorageError):
    """A storage object that should exist is missing (kind ``object-not-found``).

    Internal: raised by the storage backends, usually turned into a more specific error by
    the callers that know what the object was.
    """

    _default_kind = ErrorKind.OBJECT_NOT_FOUND.value
    _key_message = "object store error Object at location {key} not found"


class KeyNotFoundError(_KeyedError, NodeNotFoundError):
    """A node or store key that does not exist (kind ``node-not-found``).

    Like every :class:`NotFoundError` it is also a ``KeyError``, which is what icechunk 1.1
    raised in these places.
    """

    _default_kind = ErrorKind.NODE_NOT_FOUND.value
    _key_message = "node not found at `{key}`"


def _some(value: str | None) -> str:
    return "None" if value is None else f'Some("{value}")'


class ConflictError(IcechunkError):
    """A branch (or the repository's state) moved under a commit or another update.

    Parameters
    ----------
    expected_parent
        The snapshot the session was based on.
    actual_parent
        The snapshot the branch points at now, or None if the branch no longer exists.
    message
        The error text; by default it names both parents.
    kind
        ``"commit-conflict"`` by default; ``"branch-update-conflict"``,
        ``"repo-info-updated"``, ``"config-updated"`` ... for other kinds of contention.
    """

    _default_kind = ErrorKind.COMMIT_CONFLICT.value

    def __init__(
        self,
        expected_parent: str | None = None,
        actual_parent: str | None = None,
        message: str | None = None,
        kind: str | None = None,
    ) -> None:
        # Like the reference: the commit-conflict text alone has no context lines.
        self._given_message = message is not None
        if message is None:
            message = (
                f"Failed to commit, expected parent: {_some(expected_parent)}, "
                f"actual parent: {_some(actual_parent)}"
            )
        super().__init__(message, kind)
        # The reference's args: the parents, then message and kind only when they were given.
        given = (expected_parent, actual_parent, message, kind)
        self.args = given if kind is not None else given[:2]
        self.expected_parent = expected_parent
        self.actual_parent = actual_parent

    def _has_context(self) -> bool:
        return self._given_message

    def __repr__(self) -> str:
        return (
            f"{_qualified(type(self))}(expected_parent={self.expected_parent}, "
            f"actual_parent={self.actual_parent})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self.args)


class RebaseFailedError(ConflictError):
    """A rebase stopped at a snapshot whose changes conflict with the session's.

    Parameters
    ----------
    snapshot
        The id of the snapshot where the rebase failed.
    conflicts
        The conflicts found there.
    """

    _default_kind = ErrorKind.REBASE_FAILED.value

    def __init__(self, snapshot: str, conflicts: Sequence[Any]) -> None:
        found = list(conflicts)
        super().__init__(
            message=f"Rebase failed on snapshot {snapshot}: {len(found)} conflicts found"
        )
        self.args = (snapshot, found)
        self.snapshot = snapshot
        self.conflicts = found

    def _has_context(self) -> bool:
        return False  # the reference's rebase failure is its one-line text

    def __repr__(self) -> str:
        return f'{_qualified(type(self))}(snapshot="{self.snapshot}", conflicts={self.conflicts!r})'

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.snapshot, self.conflicts))


_CLASS_OF_KIND: dict[str, type[IcechunkError]] = {}


def _classify(cls: type[IcechunkError], *kinds: ErrorKind) -> None:
    for kind in kinds:
        _CLASS_OF_KIND[kind.value] = cls


K = ErrorKind
# Which class icechunk 2.3.0 raises for each kind. Kinds raised with the root class
# (``unknown``) are absent; rebase-failed needs a snapshot and conflicts, so an error built
# from that kind alone stays a ConflictError.
_classify(
    ConflictError,
    K.COMMIT_CONFLICT,
    K.BRANCH_UPDATE_CONFLICT,
    K.REBASE_FAILED,
    K.CONFIG_UPDATED,
    K.REPO_INFO_UPDATED,
    K.UPDATE_ATTEMPTS_EXHAUSTED,
    K.GC_DELETES_FAILING,
)
_classify(
    NodeNotFoundError,
    K.NODE_NOT_FOUND,
    K.ANCESTOR_NODE_NOT_FOUND,
    K.CHUNK_NOT_FOUND,
    K.KEY_NOT_FOUND,
)
_classify(SnapshotNotFoundError, K.SNAPSHOT_NOT_FOUND, K.NO_SNAPSHOT_AT_TIME)
_classify(RefNotFoundError, K.REF_NOT_FOUND, K.BRANCH_NOT_FOUND, K.TAG_NOT_FOUND)
_classify(RepositoryNotFoundError, K.REPOSITORY_NOT_FOUND)
_classify(
    AlreadyExistsError,
    K.NODE_ALREADY_EXISTS,
    K.BRANCH_ALREADY_EXISTS,
    K.TAG_ALREADY_EXISTS,
    K.TAG_PREVIOUSLY_DELETED,
    K.MOVE_WONT_OVERWRITE,
)
_classify(
    ReadOnlyError,
    K.READ_ONLY_SESSION,
    K.READ_ONLY_STORE,
    K.READ_ONLY_STORAGE,
    K.READ_ONLY_REPOSITORY,
)
_classify(
    InvalidInputError,
    K.INVALID_KEY,
    K.INVALID_CHUNK_INDEX,
    K.ZERO_LENGTH_CHUNK,
    K.INVALID_MANIFEST_SPLIT_INDEX,
    K.INVALID_REF_TYPE,
    K.INVALID_REF_NAME,
    K.INVALID_SNAPSHOT_ID,
    K.INVALID_PATH,
    K.BAD_KEY_PREFIX,
    K.BAD_METADATA,
    K.BAD_PREFIX,
    K.NOT_AN_ARRAY,
    K.NOT_A_GROUP,
    K.INVALID_BYTE_RANGE,
    K.INVALID_COMMIT_CONFIGURATION,
    K.INVALID_ARRAY_METADATA,
    K.INVALID_FEATURE_FLAG,
    K.INVALID_VIRTUAL_REF,
    K.INVALID_CREDENTIALS,
    K.NO_CONTAINER_FOR_VIRTUAL_CHUNK,
    K.UNAUTHORIZED_VIRTUAL_CHUNK_CONTAINER,
    K.EMPTY_PREFIX_CREATION,
    K.PARENT_DIRECTORY_NOT_CLEAN,
    K.BAD_SNAPSHOT_CHAIN_FOR_DIFF,
)
_classify(
    SessionStateError,
    K.COMMIT_NOT_ALLOWED,
    K.MERGE_NOT_ALLOWED,
    K.CANNOT_FORK_READ_ONLY_SESSION,
    K.REARRANGE_SESSION_ONLY,
    K.NON_REARRANGE_SESSION,
    K.MOVE_INTO_SELF_OR_DESCENDANT,
    K.MOVE_DESTINATION_PARENT_MISSING,
    K.MOVE_DESTINATION_PARENT_NOT_GROUP,
    K.NO_CHANGES_TO_COMMIT,
    K.NO_AMEND_FOR_INITIAL_COMMIT,
    K.NOT_ON_BRANCH,
    K.NO_SNAPSHOT,
    K.CANNOT_DELETE_MAIN,
    K.UNCOMMITTED_CHANGES,
    K.MERGE_FAILED,
    K.NOT_ALLOWED,
    K.UNIMPLEMENTED,
    K.REBASE_TX_LOG_PRUNED,
    K.FEATURE_FLAG_DISABLED,
    K.TAG_ERROR,
    K.INVALID_REPOSITORY_MIGRATION,
)
_classify(
    StorageError,
    K.OBJECT_NOT_FOUND,
    K.OBJECT_STORE,
    K.IO,
    K.STORAGE_CONFIG,
    K.CANNOT_PARSE_URL,
    K.BAD_REDIRECT,
    K.SEMAPHORE_ACQUIRE,
    K.THROTTLED,
    K.STORAGE_OTHER,
    K.VIRTUAL_CHUNK_FETCH,
    K.VIRTUAL_CHUNK_MODIFIED,
    K.INVALID_OBJECT_SIZE,
)
_classify(
    FormatError,
    K.SERIALIZATION,
    K.DESERIALIZATION,
    K.CONFIG_DESERIALIZATION,
    K.INVALID_FILE_FORMAT,
    K.UNSUPPORTED_SPEC_VERSION,
    K.UNSUPPORTED_OPERATION_FOR_VERSION,
    K.SNAPSHOT_TIMESTAMP,
    K.DUPLICATE_SNAPSHOT_ID,
    K.MANIFEST_INFO_NOT_FOUND,
)
_classify(
    InternalError,
    K.CONCURRENCY,
    K.FLUSH,
    K.PARTIAL_VALUES_PANIC,
    K.CONFLICTING_PATH_NOT_FOUND,
    K.INCONSISTENT_MANIFESTS,
    K.POISON_LOCK,
    K.PICKLE,
)
del K
