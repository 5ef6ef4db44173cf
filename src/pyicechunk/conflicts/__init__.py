"""Conflict detection and resolution for rebase (API-1.1 §8).

A rebase replays a session's change set over each commit that landed on the branch after the
session's base, oldest first (:func:`~pyicechunk.conflicts.solvers.replay`). For every such
commit a :class:`ConflictSolver` compares the change set with that commit's transaction log and
either returns a change set that can be applied on top of it or reports the :class:`Conflict`
objects it cannot resolve. :mod:`~pyicechunk.conflicts.conflict` defines what a conflict is,
:mod:`~pyicechunk.conflicts.detect` finds them, :mod:`~pyicechunk.conflicts.merge` resolves
metadata conflicts and appends, :mod:`~pyicechunk.conflicts.solvers` holds the solvers.
"""

from pyicechunk.conflicts.conflict import Conflict, ConflictType, VersionSelection
from pyicechunk.conflicts.solvers import (
    BasicConflictSolver,
    ConflictDetector,
    ConflictSolver,
    replay,
)

__all__ = [
    "BasicConflictSolver",
    "Conflict",
    "ConflictDetector",
    "ConflictSolver",
    "ConflictType",
    "VersionSelection",
    "replay",
]
