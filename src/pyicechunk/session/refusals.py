"""Fixed refusals of sessions: messages and errors the session modules and the store share.

They are the reference's words, so code that matches on them keeps working.
"""

from __future__ import annotations

from pyicechunk.exceptions import IcechunkError, SessionStateError

__all__ = [
    "NO_CHANGES",
    "PARALLEL_DOCS",
    "READ_ONLY_STORE",
    "fork_cannot_commit",
    "fork_cannot_flush",
]

READ_ONLY_STORE = "cannot write to read-only store"
NO_CHANGES = "session error: cannot commit, no changes made to the session"
# icechunk 2.x's refusals of a fork's commit, amend and flush (its flush refusal has no kind
# of its own).
PARALLEL_DOCS = " See https://icechunk.io/en/latest/parallel/ for more"
FORK_CANNOT_COMMIT = (
    "session error: commits are not allowed on read-only or forked sessions, merge forked "
    "sessions back into the base session before committing." + PARALLEL_DOCS
)
FORK_CANNOT_FLUSH = (
    "session error: cannot flush a forked session, merge the fork back into the base session "
    "and flush that instead." + PARALLEL_DOCS
)


def fork_cannot_commit() -> SessionStateError:
    """The error for a commit or amend of a fork (kind ``commit-not-allowed``)."""
    return SessionStateError(FORK_CANNOT_COMMIT, kind="commit-not-allowed")


def fork_cannot_flush() -> IcechunkError:
    """The error for a flush of a fork (kind ``unknown``, as icechunk 2.x)."""
    return IcechunkError(FORK_CANNOT_FLUSH)
