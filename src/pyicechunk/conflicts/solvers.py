"""The conflict solvers :meth:`Session.rebase` accepts, and the one replay loop of a rebase."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from pyicechunk.exceptions import RebaseFailedError
from pyicechunk.format.ids import encode_id

if TYPE_CHECKING:
    from pyicechunk.change_set import ChangeSet
    from pyicechunk.format.snapshot import NodeSnapshot, Snapshot
    from pyicechunk.format.transaction_log import TransactionLog
from pyicechunk.conflicts import merge
from pyicechunk.conflicts.conflict import Conflict, ConflictType, VersionSelection
from pyicechunk.conflicts.detect import detect_conflicts

__all__ = ["BasicConflictSolver", "ConflictDetector", "ConflictSolver", "RebaseStep", "replay"]


@dataclass(frozen=True, slots=True)
class RebaseStep:
    """One commit that landed on the branch after the session's base, to replay changes over.

    Parameters
    ----------
    previous_change
        The transaction log of the landed commit.
    tip
        The branch tip the rebase moves to.
    changes
        The session's change set; it is never modified.
    current
        The snapshot ``changes`` is based on before this step.
    landed
        The snapshot the landed commit created (``current``'s successor on the branch).
    """

    previous_change: TransactionLog
    tip: Snapshot
    changes: ChangeSet
    current: Snapshot
    landed: Snapshot


class ConflictSolver(abc.ABC):
    """Base of the strategies that :meth:`Session.rebase` accepts (cannot be instantiated)."""

    @abc.abstractmethod
    def _solve(self, step: RebaseStep) -> ChangeSet | list[Conflict]:
        """Reconcile the step's change set with its landed commit.

        Returns
        -------
        ChangeSet or list of Conflict
            The change set to carry over this commit, or the conflicts that stop the rebase.
        """


class ConflictDetector(ConflictSolver):
    """Resolve nothing: any conflict with a landed commit fails the rebase."""

    def _solve(self, step: RebaseStep) -> ChangeSet | list[Conflict]:
        conflicts = detect_conflicts(step.previous_change, step.tip, step.changes, step.current)
        return conflicts if conflicts else step.changes


class BasicConflictSolver(ConflictSolver):
    """Resolve chunk conflicts and deletions of updated nodes by simple rules.

    Parameters
    ----------
    on_chunk_conflict
        Which version of a chunk written by both sides to keep, or ``Fail``.
    fail_on_delete_of_updated_array
        Fail when the session deletes an array the landed commit changed; by default the
        deletion wins.
    fail_on_delete_of_updated_group
        The same for groups.
    merge_metadata
        Also resolve ``zarr.json`` changed on both sides, and chunk writes into an array whose
        metadata the commit changed, by the rules below (an extension: icechunk 1.1 never
        resolves these). Off by default, which behaves like the reference.
    append_dim
        Settle concurrent appends along this dimension by placing the session's rows after the
        committed ones (see below; an extension as well). Either a name from the arrays'
        ``dimension_names`` or an axis index (negative counts from the end). Arrays that have
        this dimension are also merged by the ``merge_metadata`` rules. None (the default)
        turns the rule off.

    Notes
    -----
    Changes to nodes the commit deleted and new nodes that collide with committed ones are never
    resolved. Without ``merge_metadata`` neither are metadata changed on both sides nor chunks
    written to an array whose metadata the commit changed.

    With ``merge_metadata=True`` a node whose ``zarr.json`` both sides changed is merged against
    the version the session started from (the base):

    * Everything but ``attributes`` (and, for arrays, ``shape``) must be equal on both sides:
      node type, data type, chunk grid, codecs, fill value, dimension names, storage
      transformers and so on. Otherwise the conflict stays.
    * Attributes are merged key by key. A key changed (added, modified or removed) on one side
      only takes that side's value; a key changed on both sides to different values collides
      and ``on_chunk_conflict`` decides: ``UseOurs`` keeps the session's value, ``UseTheirs``
      the committed one, ``Fail`` keeps the conflict.
    * A shape changed on one side only takes that side's shape. When both sides resized, they
      must have changed the same dimensions (otherwise the conflict stays) and each such
      dimension keeps the larger length. Chunks the commit truncated away read as the fill
      value in the grown region.
    * The merged document keeps the session's key order (keys only the commit added follow)
      and is written as zarr writes it, as JSON with a two-space indent; when it equals the
      session's document the session's bytes are kept as they were.

    Chunks the session wrote into an array whose metadata only the commit changed are kept when
    the commit's change passes the same equality test against the base (only attributes or
    shape differ) and every written chunk lies inside the resulting shape.

    Two appends from the same base write the same chunk coordinates, so merging their
    metadata alone does not merge their data: without ``append_dim`` those chunks are a
    ``ChunkDoubleUpdate`` that ``on_chunk_conflict`` settles, and ``UseOurs`` or ``UseTheirs``
    keep only one side's rows.

    With ``append_dim`` set, an array whose length along that dimension both the session and
    the landed commit grew from the same base length ``L0`` (the commit to ``L1``, the session
    to ``L2``) is taken as two appends, and the session's rows go after the committed ones:

    * every chunk the session wrote or deleted in the array moves ``(L1 - L0) / c`` positions
      along the dimension, ``c`` being the length of the chunk grid of ``zarr.json`` along it
      (for a sharded array that is the shard length);
    * the session's length along the dimension becomes ``L1 + (L2 - L0)`` (its ``zarr.json``
      is rewritten like a merged one), and the rest of the document is merged by the rules
      above.

    This needs ``L0`` and ``L1`` to be multiples of ``c`` (only whole chunks can move; a partly
    filled last chunk would need re-encoding), every chunk the session changed in the array to
    lie at or after position ``L0 / c`` along the dimension (the session only appended), and
    the chunk grid, the dimension names and the length of every other dimension to be the same
    in all three versions. Otherwise the array's ``ZarrMetadataDoubleUpdate`` stays, together
    with the ``ChunksUpdatedInUpdatedArray`` and ``ChunkDoubleUpdate`` conflicts it brings,
    whatever ``on_chunk_conflict`` says: keeping the larger shape would lose one side's rows.
    Arrays only the session grew, or only the commit grew, follow the metadata rules above.
    When several commits landed, each one moves the session's rows again, so they end up after
    all the committed appends, in their own order.

    Raises
    ------
    TypeError
        If ``on_chunk_conflict`` is not a :class:`VersionSelection`, or ``append_dim`` is
        neither a string, an integer nor None.

    Examples
    --------
    >>> solver = BasicConflictSolver(
    ...     on_chunk_conflict=VersionSelection.Fail, merge_metadata=True
    ... )
    >>> appends = BasicConflictSolver(on_chunk_conflict=VersionSelection.Fail, append_dim="time")
    """

    _ALWAYS_FATAL: ClassVar[tuple[ConflictType, ...]] = (
        ConflictType.NewNodeConflictsWithExistingNode,
        ConflictType.NewNodeInInvalidGroup,
        ConflictType.ZarrMetadataDoubleUpdate,
        ConflictType.ZarrMetadataUpdateOfDeletedArray,
        ConflictType.ZarrMetadataUpdateOfDeletedGroup,
        ConflictType.ChunksUpdatedInDeletedArray,
        ConflictType.ChunksUpdatedInUpdatedArray,
    )

    def __init__(
        self,
        *,
        on_chunk_conflict: VersionSelection = VersionSelection.UseOurs,
        fail_on_delete_of_updated_array: bool = False,
        fail_on_delete_of_updated_group: bool = False,
        merge_metadata: bool = False,
        append_dim: str | int | None = None,
    ) -> None:
        if not isinstance(on_chunk_conflict, VersionSelection):
            raise TypeError(
                "argument 'on_chunk_conflict' must be a VersionSelection, got "
                f"{type(on_chunk_conflict).__name__}"
            )
        self._on_chunk_conflict = on_chunk_conflict
        self._fail_on_delete_of_updated_array = bool(fail_on_delete_of_updated_array)
        self._fail_on_delete_of_updated_group = bool(fail_on_delete_of_updated_group)
        self._merge_metadata = bool(merge_metadata)
        if append_dim is not None and (
            isinstance(append_dim, bool) or not isinstance(append_dim, str | int)
        ):
            raise TypeError(
                "argument 'append_dim' must be a dimension name (str), an axis index (int) or "
                f"None, got {type(append_dim).__name__}"
            )
        self._append_dim = append_dim

    def _fatal(self, conflict: Conflict) -> bool:
        kind = conflict.conflict_type
        if kind is ConflictType.ChunkDoubleUpdate:
            return self._on_chunk_conflict is VersionSelection.Fail
        if kind is ConflictType.DeleteOfUpdatedArray:
            return self._fail_on_delete_of_updated_array
        if kind is ConflictType.DeleteOfUpdatedGroup:
            return self._fail_on_delete_of_updated_group
        return kind in self._ALWAYS_FATAL

    def _their_version(
        self, base: NodeSnapshot, tip: Snapshot, landed: Snapshot, refused: set[bytes]
    ) -> Snapshot | None:
        """Where to read the commit's version of ``base`` for a metadata merge; None: no merge.

        Arrays the append rule covers are followed commit by commit because their lengths add
        up; the plain ``merge_metadata`` rule compares with the branch tip, so that over several
        commits each resized length is weighed against the final one.
        """
        if base.id in refused:
            return None
        if (
            self._append_dim is not None
            and base.array is not None
            and merge.append_axis(self._append_dim, base.array) is not None
        ):
            return landed
        return tip if self._merge_metadata else None

    def _solve(self, step: RebaseStep) -> ChangeSet | list[Conflict]:
        previous_change, tip, changes = step.previous_change, step.tip, step.changes
        current, landed = step.current, step.landed
        refused: set[bytes] = set()
        if self._append_dim is not None:
            changes, refused = merge.shift_appends(
                previous_change, changes, current, landed, self._append_dim
            )
        conflicts = detect_conflicts(previous_change, tip, changes, current)
        if conflicts and (self._merge_metadata or self._append_dim is not None):
            changes, conflicts = merge.merge_metadata(
                conflicts,
                changes,
                current,
                self._on_chunk_conflict,
                lambda base: self._their_version(base, tip, landed, refused),
            )
        if not conflicts:
            return changes
        if any(self._fatal(c) for c in conflicts):
            return conflicts
        if self._on_chunk_conflict is not VersionSelection.UseTheirs:
            # our chunk writes and our deletions simply override what landed
            return changes
        chunks = dict(changes.chunks)
        for conflict in conflicts:
            if conflict.conflict_type is not ConflictType.ChunkDoubleUpdate:
                continue
            assert conflict._node_id is not None and conflict._chunks is not None
            lost = set(conflict._chunks)
            kept = {c: p for c, p in chunks[conflict._node_id].items() if c not in lost}
            if kept:
                chunks[conflict._node_id] = kept
            else:
                del chunks[conflict._node_id]
        return dataclasses.replace(changes, chunks=chunks)


async def replay(
    solver: ConflictSolver,
    base: Snapshot,
    landed: Sequence[Snapshot],
    logs: Sequence[TransactionLog],
    changes: ChangeSet,
) -> ChangeSet:
    """Replay ``changes`` over each snapshot that landed after ``base``, oldest first.

    Parameters
    ----------
    solver
        Decides each step.
    base
        The snapshot ``changes`` is based on.
    landed
        The snapshots after ``base`` up to the branch tip, newest first.
    logs
        The change each of them made to its parent, in the same order.
    changes
        The session's change set; it is never modified, so a failure leaves it untouched.

    Returns
    -------
    ChangeSet
        The change set to commit on top of the tip.

    Raises
    ------
    RebaseFailedError
        If the solver cannot resolve the conflicts with one landed commit.
    """
    tip = landed[0]
    current = base
    for snapshot, tx in zip(reversed(landed), reversed(logs), strict=True):
        solved = solver._solve(RebaseStep(tx, tip, changes, current, snapshot))
        if isinstance(solved, list):
            raise RebaseFailedError(encode_id(snapshot.id), solved)
        changes, current = solved, snapshot
    return changes
