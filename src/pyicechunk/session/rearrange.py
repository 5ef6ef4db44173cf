"""Rearrange sessions: groups and arrays moved to new paths, their data untouched (spec 2).

A rearrange session records nothing but moves. Its state is a *view* of its base snapshot: the
same snapshot (same id, nodes, node ids and manifests) with the moved nodes at their new paths,
so every read of the session sees the new hierarchy and a commit writes that view as the new
snapshot, carrying every manifest over as it is: no chunk and no manifest is copied or
rewritten. The moves the transaction log records are found by comparing each node's path in the
origin with its path in the view, which collapses chains (``/a -> /b -> /c`` is ``/a -> /c``)
and drops a node moved back where it was.

The successful moves are kept in order, so a rebase onto a newer tip (a commit without moves)
replays them there: nodes created meanwhile under a moved group move with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.ids import encode_id
from pyicechunk.format.snapshot import NodeSnapshot, Snapshot, validate_path
from pyicechunk.format.transaction_log import MoveOperation, TransactionLog
from pyicechunk.format.transaction_log.model import move_sort_key
from pyicechunk.repo_state import RepoState

__all__ = [
    "REARRANGE_ONLY",
    "Rearrangement",
    "check_move_flag",
    "checked_node_path",
    "has_moves",
    "move_in",
    "moves_between",
    "node_not_found",
    "rebase_over_moves_error",
]

REARRANGE_ONLY = (
    "This session was created to rearrange the hierarchy, other write operations cannot be "
    "executed. Commit or abandon the sessions and create a regular writable session"
)
NON_REARRANGE = (
    "session error: To move nodes in the hierarchy you need to create a rearrange session. "
    "Commit or abandon this session and create a new rearrange session"
)


def checked_node_path(path: object) -> str:
    """``path`` if it is a canonical absolute node path.

    Raises
    ------
    InvalidInputError
        (kind ``invalid-path``) for a relative or non-canonical path.
    """
    if isinstance(path, str) and not path.startswith("/"):
        raise IcechunkError(
            "could not create path from prefix: path must start with a `/` character",
            kind="invalid-path",
        )
    return validate_path(path)


def node_not_found(path: str) -> IcechunkError:
    """The reference's error for a session operation on a missing node."""
    return IcechunkError(
        f"session error: node not found at `{path}`: existing node not found",
        kind="node-not-found",
    )


def _parent(path: str) -> str:
    parent = path.rsplit("/", 1)[0]
    return parent or "/"


def _moved_path(path: str, source: str, target: str) -> str:
    return target + path[len(source) :]


def _under(path: str, prefix: str) -> bool:
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


def move_in(view: Snapshot, source: str, target: str) -> Snapshot:
    """``view`` with the node at ``source`` and everything below it moved to ``target``.

    Raises
    ------
    IcechunkError
        The reference's errors: an invalid path (``invalid-path``), no node at ``source``
        (``node-not-found``), a target inside the source (``move-into-self-or-descendant``), a
        node already at the target (``move-wont-overwrite``), a target whose parent is missing
        (``move-destination-parent-missing``) or is an array
        (``move-destination-parent-not-group``). Nothing is moved then.
    """
    source = checked_node_path(source)
    target = checked_node_path(target)
    if view.get_node(source) is None:
        raise node_not_found(source)
    if _under(target, source):
        raise IcechunkError(
            f"session error: cannot move `{source}` into itself or its own descendant "
            f"`{target}`.\n\nThis move would require `{source}` to be both an ancestor and a "
            "descendant of itself, which is impossible. If your intent is to nest "
            f"`{source}`'s contents under a new group at `{target}`, create `{target}` as a new "
            "group yourself in a writable_session, then in a rearrange_session move each "
            f"direct child of `{source}` to `{target}/<child_name>`. Note that `{source}`'s "
            f"metadata is not carried over to `{target}` — copy any attributes you need to "
            "preserve onto the new group when you create it.",
            kind="move-into-self-or-descendant",
        )
    if view.get_node(target) is not None:
        raise IcechunkError(
            f"session error: move cannot overwrite existing node at `{target}`",
            kind="move-wont-overwrite",
        )
    parent = _parent(target)
    parent_node = view.get_node(parent)
    if parent_node is None:
        raise IcechunkError(
            f"session error: cannot move to `{target}`: the destination's parent group "
            f"`{parent}` does not exist. Icechunk's `move` never creates intermediate groups — "
            f"create `{parent}` in a writable_session and commit first, then retry the move in "
            "a rearrange_session.",
            kind="move-destination-parent-missing",
        )
    if parent_node.is_array:
        raise IcechunkError(
            f"session error: cannot move to `{target}`: the destination's parent `{parent}` is "
            "an array, not a group. Move destinations must land under groups; arrays cannot "
            "have children.",
            kind="move-destination-parent-not-group",
        )
    nodes = [
        dataclasses.replace(node, path=_moved_path(node.path, source, target))
        if _under(node.path, source)
        else node
        for node in view.nodes
    ]
    return dataclasses.replace(view, nodes=tuple(nodes))


def moves_between(origin: Iterable[NodeSnapshot], view: Snapshot) -> list[MoveOperation]:
    """Every node whose path in ``view`` differs from its path in ``origin``, by node id,
    ordered by the new path's segments (the order transaction logs keep)."""
    before = {node.id: node.path for node in origin}
    moves = [
        MoveOperation(before[node.id], node.path, node.id, node.is_array)
        for node in view.nodes
        if node.id in before and before[node.id] != node.path
    ]
    moves.sort(key=lambda move: move_sort_key(move.to_path))
    return moves


class Rearrangement:
    """The moves of one rearrange session over its origin snapshot.

    Parameters
    ----------
    origin
        The snapshot the session started from (after a rebase: the new tip).
    """

    def __init__(self, origin: Snapshot) -> None:
        self.origin = origin
        self.view = origin
        self._done: list[tuple[str, str]] = []

    def move(self, source: str, target: str) -> Snapshot:
        """Apply one move to the view and return the new view (see :func:`move_in`)."""
        self.view = move_in(self.view, source, target)
        self._done.append((source, target))
        return self.view

    def moves(self, origin: Iterable[NodeSnapshot] | None = None) -> list[MoveOperation]:
        """The collapsed moves from ``origin`` (default: the session's origin) to the view."""
        return moves_between(self.origin.nodes if origin is None else origin, self.view)

    def rebased(self, tip: Snapshot) -> Rearrangement:
        """The same moves replayed over ``tip``.

        Raises
        ------
        IcechunkError
            A move no longer possible there (its node deleted, its target taken, ...).
        """
        replayed = Rearrangement(tip)
        for source, target in self._done:
            try:
                replayed.move(source, target)
            except IcechunkError as e:
                raise IcechunkError(
                    f"session error: cannot rebase the move `{source}` -> `{target}` onto "
                    f"snapshot {encode_id(tip.id)}, which changed the hierarchy: "
                    f"{e.message.removeprefix('session error: ')}; start a new rearrange "
                    "session on the branch and move again",
                    kind=e.kind,
                ) from None
        return replayed


async def check_move_flag(state: RepoState, what: str) -> None:
    """Refuse ``what`` when the repository's ``move_node`` feature flag is off.

    Raises
    ------
    SessionStateError
        (kind ``feature-flag-disabled``).
    """
    from pyicechunk.format.repo_info.model import FeatureFlag

    info = await state.repo_info()
    if info is not None and not info.feature_flag(FeatureFlag.MOVE_NODE):
        raise IcechunkError(
            f"{what} is disabled by a feature flag (move_node)", kind="feature-flag-disabled"
        )


def rebase_over_moves_error(snapshot_id: bytes) -> IcechunkError:
    """The reference's failure for a session rebased over a commit that moved nodes: moves
    are never rebased over, whatever the solver."""
    from pyicechunk.conflicts.conflict import Conflict, ConflictType
    from pyicechunk.exceptions import RebaseFailedError

    conflict = Conflict._make(ConflictType.MoveOperationCannotBeRebased, "")
    return RebaseFailedError(encode_id(snapshot_id), [conflict])


def has_moves(logs: Iterable[TransactionLog]) -> bool:
    """Whether any of ``logs`` records a move."""
    return any(log.moved_nodes for log in logs)
