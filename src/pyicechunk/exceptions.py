"""Errors raised by pyicechunk.

The three public types mirror icechunk 1.1: :class:`IcechunkError` for almost everything,
:class:`ConflictError` when a branch moved under a commit, and :class:`RebaseFailedError` when
a conflict solver gives up. As in the reference, the last two derive from ``Exception`` and not
from ``IcechunkError``, so ``except IcechunkError`` does not swallow them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "ConflictError",
    "IcechunkError",
    "RebaseFailedError",
]


class IcechunkError(Exception):
    """An error from a repository, session, store or storage operation.

    Parameters
    ----------
    message
        What went wrong, and where possible what to do about it.
    kind
        The reference's error kind (icechunk 2's ``ErrorKind`` value, such as
        ``"repository-not-found"``) where one is known; None otherwise. It names the failure
        for code that must tell failures apart, independently of the message.
    """

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind

    def __repr__(self) -> str:
        return f"IcechunkError(message={self.message})"

    def __reduce__(self) -> tuple[Any, ...]:
        if self.kind is None:
            return (type(self), (self.message,))
        return (type(self), (self.message, self.kind))


class ObjectNotFoundError(IcechunkError):
    """A storage object that should exist is missing (internal subclass of IcechunkError)."""

    def __init__(self, key: str, message: str | None = None) -> None:
        super().__init__(message or f"object store error Object at location {key} not found")
        self.key = key

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.key, self.message))


class KeyNotFoundError(IcechunkError, KeyError):
    """A node or store key that does not exist (internal subclass of IcechunkError).

    It is also a ``KeyError``, the type the reference raises in these places, so code written
    for the reference keeps catching it.
    """

    def __init__(self, key: str, message: str | None = None) -> None:
        super().__init__(message or f"node not found at `{key}`")
        self.key = key

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.key, self.message))


def _some(value: str | None) -> str:
    return "None" if value is None else f'Some("{value}")'


class ConflictError(Exception):
    """A commit found the branch tip different from the session's base snapshot.

    Parameters
    ----------
    expected_parent
        The snapshot the session was based on.
    actual_parent
        The snapshot the branch points at now, or None if the branch no longer exists.
    """

    def __init__(
        self, expected_parent: str | None = None, actual_parent: str | None = None
    ) -> None:
        super().__init__(expected_parent, actual_parent)
        self.expected_parent = expected_parent
        self.actual_parent = actual_parent

    def __str__(self) -> str:
        return (
            f"Failed to commit, expected parent: {_some(self.expected_parent)}, "
            f"actual parent: {_some(self.actual_parent)}"
        )

    def __repr__(self) -> str:
        return (
            f"ConflictError(expected_parent={self.expected_parent}, "
            f"actual_parent={self.actual_parent})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.expected_parent, self.actual_parent))


class RebaseFailedError(Exception):
    """A rebase stopped at a snapshot whose changes conflict with the session's.

    Parameters
    ----------
    snapshot
        The id of the snapshot where the rebase failed.
    conflicts
        The conflicts found there.
    """

    def __init__(self, snapshot: str, conflicts: Sequence[Any]) -> None:
        super().__init__(snapshot, list(conflicts))
        self.snapshot = snapshot
        self.conflicts = list(conflicts)

    def __str__(self) -> str:
        return f"Rebase failed on snapshot {self.snapshot}: {len(self.conflicts)} conflicts found"

    def __repr__(self) -> str:
        return f"RebaseFailedError(snapshot={self.snapshot}, conflicts={self.conflicts!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.snapshot, self.conflicts))
