"""What a session may do: read, write, or only rearrange the hierarchy."""

from __future__ import annotations

from pyicechunk._enum import NamedIntEnum

__all__ = ["READ_ONLY_SESSION", "SessionMode"]

READ_ONLY_SESSION = "session error: Read only sessions cannot modify the repository"
"""The reference's refusal of a change through a read-only session."""


class SessionMode(NamedIntEnum):
    """The kind of a session (``Session.mode``).

    ``readonly`` (0): reads only; also committed sessions and forks. ``writable`` (1): records
    data and metadata changes. ``rearrange`` (2): only moves nodes (``Session.move``).
    """

    readonly = 0
    writable = 1
    rearrange = 2
