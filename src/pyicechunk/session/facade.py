"""The public sessions: :class:`Session` and :class:`ForkSession`, with icechunk's API.

Each blocking method runs its coroutine on the shared event loop (:mod:`pyicechunk._sync`), and
each ``*_async`` method awaits the same coroutine; the work is done by the session's
:class:`~pyicechunk.session.core.SessionCore`.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from pyicechunk._docs import filled
from pyicechunk._repr import Block, Shown, session_block
from pyicechunk._sync import blocking_twin, caller_stacklevel, sync
from pyicechunk.change_set import ChangeSet
from pyicechunk.exceptions import IcechunkError, SessionStateError
from pyicechunk.format.ids import encode_id
from pyicechunk.session.commit import anonymous_snapshot
from pyicechunk.session.core import SessionCore
from pyicechunk.session.mode import READ_ONLY_SESSION, SessionMode
from pyicechunk.session.rearrange import checked_node_path, node_not_found
from pyicechunk.session.refusals import PARALLEL_DOCS, fork_cannot_commit, fork_cannot_flush
from pyicechunk.session.reindex import ChunkMap, shift_mappings, shift_steps
from pyicechunk.session.splitting import configured_splitting
from pyicechunk.types import ChunkType, Diff

if TYPE_CHECKING:
    from pyicechunk.config import RepositoryConfig
    from pyicechunk.store import IcechunkStore

__all__ = ["PICKLE_WRITABLE", "ForkSession", "Session", "merge_forks", "wrap_core"]

PICKLE_WRITABLE = (
    "You must opt-in to pickle writable sessions in a distributed context using Session.fork(). "
    "If you are using xarray's `Dataset.to_zarr` method to write dask arrays, please use "
    "`icechunk.xarray.to_icechunk` instead. "
)

# icechunk 2.x's errors for what only a fork, or only a writable session, can do.
FORK_MERGES_FORKS_ONLY = (
    "session error: cannot merge a branch session into a fork session, only fork sessions can "
    "be merged into a fork." + PARALLEL_DOCS
)
CANNOT_FORK_READ_ONLY = (
    "session error: cannot fork a read-only session, read-only sessions can be serialized and "
    "transmitted directly." + PARALLEL_DOCS
)

# Docstring pieces the methods that write a snapshot share (see pyicechunk._docs).
_DOCS = {
    "new_snapshot": """\
Returns
-------
str
    The id of the new snapshot.
""",
}


class Session(Shown):
    """A view of a repository at one snapshot; writable sessions also record changes.

    Obtain sessions from :meth:`Repository.writable_session` and
    :meth:`Repository.readonly_session`. A writable session becomes read-only after
    :meth:`commit`, :meth:`flush` or :meth:`amend`.
    """

    _core: SessionCore

    def __init__(self, session: SessionCore) -> None:
        self._core = session

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Session) and other._core is self._core

    __hash__ = object.__hash__

    def __getstate__(self) -> dict[str, Any]:
        if not self._core.read_only:
            raise ValueError(PICKLE_WRITABLE)
        return {"_session": self._core, "_allow_changes": self._core.forked}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict) or "_session" not in state:
            raise ValueError("Invalid state")
        self._core = state["_session"]

    def _block(self) -> Block:
        # icechunk 2.x shows forks as sessions too; a writable one adds its branch and state.
        more = [("branch", self.branch), ("has_uncommitted_changes", self.has_uncommitted_changes)]
        shown = more if not self.read_only else []
        return session_block("Session", self.read_only, self.snapshot_id, *shown)

    # -- properties ---------------------------------------------------------------------------

    @property
    def read_only(self) -> bool:
        """Whether the session can no longer record changes."""
        return self._core.read_only

    @property
    def snapshot_id(self) -> str:
        """The snapshot this session is based on (the new one after a commit or flush)."""
        return self._core.snapshot_id

    @property
    def branch(self) -> str | None:
        """The branch a writable session commits to; None for read-only sessions."""
        return self._core.branch

    @property
    def mode(self) -> SessionMode:
        """What the session may do: ``readonly`` (also once committed, and for forks),
        ``writable`` or ``rearrange``."""
        return self._core.mode

    @property
    def has_uncommitted_changes(self) -> bool:
        """Whether anything was written since the session started (even if undone)."""
        return self._core.changes.touched

    @property
    def store(self) -> IcechunkStore:
        """A zarr store reading and writing through this session."""
        from pyicechunk.store import IcechunkStore

        return IcechunkStore(self._core, for_fork=isinstance(self, ForkSession))

    @property
    def config(self) -> RepositoryConfig:
        """A copy of the repository configuration."""
        import copy

        return copy.deepcopy(self._core.config)

    # -- nodes --------------------------------------------------------------------------------

    def get_node_id(self, path: str) -> str:
        """The id of the node at ``path`` (13 characters; a moved node keeps its id).

        Raises
        ------
        InvalidInputError
            For a relative or non-canonical path (kind ``invalid-path``).
        NodeNotFoundError
            If the session has no node there.
        """
        node = self._core.node(checked_node_path(path))
        if node is None:
            raise node_not_found(path)
        return encode_id(node.node_id)

    async def get_node_id_async(self, path: str) -> str:
        """Async version of :meth:`get_node_id`."""
        return self.get_node_id(path)

    def move(self, from_path: str, to_path: str) -> None:
        """Move a group or array, with everything below it, to a new path.

        Only rearrange sessions (:meth:`Repository.rearrange_session`) move nodes; the move
        changes paths only: node ids, metadata and chunks stay as they are, and no data is
        copied.

        Parameters
        ----------
        from_path
            The absolute path of the node to move.
        to_path
            Its new absolute path; no node may be there, and its parent must be a group.

        Raises
        ------
        SessionStateError
            Not a rearrange session, a target inside the source, or a missing or non-group
            parent of the target.
        AlreadyExistsError
            A node is already at ``to_path``.
        NodeNotFoundError
            No node at ``from_path``.
        ReadOnlyError
            The session is read-only (or committed).
        """
        sync(self._core.move(from_path, to_path))

    async def move_async(self, from_path: str, to_path: str) -> None:
        """Async version of :meth:`move`."""
        await self._core.move(from_path, to_path)

    def shift_array(self, array_path: str, chunk_offset: Iterable[int]) -> None:
        """Move every chunk of an array by ``chunk_offset`` chunk positions per dimension.

        Only chunk references move (nothing is copied); chunks shifted off the grid are
        dropped and the positions they leave are empty. The shape stays: resize the array
        first to keep every chunk.

        Raises
        ------
        TypeError
            ``chunk_offset`` is not an iterable of integers.
        InvalidInputError
            ``array_path`` is not an absolute path, or not an array.
        NodeNotFoundError
            No node at ``array_path``.
        ReadOnlyError, SessionStateError
            A read-only or rearrange session.
        IcechunkError
            The array's chunk grid is not regular.
        """
        steps = shift_steps(chunk_offset)
        sync(
            self._core.reindex_array(
                array_path, lambda upper: shift_mappings(steps, upper, array_path)
            )
        )

    def reindex_array(
        self, array_path: str, forward: ChunkMap, backward: ChunkMap | None = None
    ) -> None:
        """Move chunks of an array to the positions ``forward`` gives.

        ``forward(coords)`` is asked for each existing chunk and returns its new coordinates,
        or None to leave it. Without ``backward`` a position no chunk moves to keeps its
        chunk; with it, ``backward(coords)`` names the chunk that moves to ``coords`` (None:
        none), and each chunk's position without one is cleared. Only references move.

        Raises
        ------
        InvalidInputError
            A target off the grid (kind ``invalid-chunk-index``), a bad path or a group.
        IcechunkError
            A callback raised (kind ``unknown``), or the grid is not regular.
        NodeNotFoundError, ReadOnlyError, SessionStateError
            As for :meth:`shift_array`.
        """
        sync(self._core.reindex_array(array_path, lambda _: (forward, backward)))

    # -- changes ------------------------------------------------------------------------------

    def status(self) -> Diff:
        """The uncommitted changes, relative to the base snapshot."""
        return self._core.status()

    def discard_changes(self) -> None:
        """Drop every uncommitted change."""
        if not self._core.read_only:
            self._core.discard()

    def _warn_forked(self, verb: str) -> None:
        if self._core.forked:
            warnings.warn(
                f"{verb} a session after forking, and without merging will not work. "
                "Merge back in the remote changes first using Session.merge().",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )

    async def commit_async(
        self,
        message: str,
        metadata: dict[str, Any] | None = None,
        rebase_with: Any | None = None,
        rebase_tries: int = 1_000,
        *,
        allow_empty: bool = False,
    ) -> str:
        """Async version of :meth:`commit`."""
        self._warn_forked("Committing")
        return await self._core.commit(
            message,
            metadata,
            allow_empty=allow_empty,
            rebase_with=rebase_with,
            rebase_tries=rebase_tries,
        )

    # On this thread's loop: a small commit costs less than the hand-off to zarr's loop.
    commit = blocking_twin(
        commit_async,
        filled(
            """Commit the changes to the session's branch.

        Parameters
        ----------
        message
            The commit message.
        metadata
            Commit properties (JSON-like values), merged over the repository's default
            commit metadata.
        rebase_with
            A conflict solver used to rebase onto the branch tip if it moved.
        rebase_tries
            How many times to rebase and retry.
        allow_empty
            Commit even when nothing changed (the new snapshot has the same content).

        {new_snapshot}

        Raises
        ------
        ConflictError
            The branch moved since the session started (nothing was changed).
        IcechunkError
            No changes, a read-only session, or a storage failure.
        """,
            _DOCS,
        ),
        here=True,
    )

    async def amend_async(
        self, message: str, metadata: dict[str, Any] | None = None, *, allow_empty: bool = False
    ) -> str:
        """Async version of :meth:`amend`."""
        return await self._core.commit(message, metadata, allow_empty=allow_empty, amend=True)

    amend = blocking_twin(
        amend_async,
        filled(
            """Replace the branch tip with a new snapshot holding its changes plus this session's.

        The new snapshot's parent is the tip's parent, so the tip leaves the branch history
        (it stays readable by id until garbage collection). The branch moves only if it still
        points at the tip this session started from.

        Parameters
        ----------
        message
            The message of the replacement snapshot.
        metadata
            Its commit properties.
        allow_empty
            Amend even when the session changed nothing (only the message and metadata
            change). Spec-2 repositories require it for such an amend, as icechunk 2 does;
            spec 1 never did.

        {new_snapshot}

        Raises
        ------
        ConflictError
            The branch moved since the session started.
        IcechunkError
            A read-only session, or the tip is the repository's initial snapshot.
        """,
            _DOCS,
        ),
    )

    def flush(self, message: str, metadata: dict[str, Any] | None = None) -> str:
        """Write a snapshot of the changes without moving any branch.

        Returns
        -------
        str
            The id of the new (detached) snapshot; the session becomes read-only on it.
        """
        self._warn_forked("Flushing")
        return sync(self._core.flush(message, metadata))

    async def flush_async(self, message: str, metadata: dict[str, Any] | None = None) -> str:
        """Async version of :meth:`flush`."""
        self._warn_forked("Flushing")
        return await self._core.flush(message, metadata)

    def rebase(self, solver: Any) -> None:
        """Replay this session's changes on the branch tip, using ``solver`` for conflicts."""
        sync(self.rebase_async(solver))

    async def rebase_async(self, solver: Any) -> None:
        """Async version of :meth:`rebase`."""
        await self._core.rebase(solver)

    # -- inspection ---------------------------------------------------------------------------

    async def chunk_coordinates(
        self, array_path: str, batch_size: int = 1000
    ) -> AsyncIterator[tuple[int, ...]]:
        """Yield the coordinates of every initialized chunk of an array (each once)."""
        if not array_path.startswith("/"):
            raise ValueError("Invalid path: path must start with a `/` character")
        node = self._core.node(array_path)
        if node is None:
            raise IcechunkError(
                f"session error: node not found at `{array_path}`: existing node not found",
                kind="node-not-found",
            )
        for coords in await self._core.chunk_coords(array_path):
            yield coords

    def chunk_type(self, array_path: str, chunk_coordinates: Sequence[int]) -> ChunkType:
        """How a chunk is stored: UNINITIALIZED, INLINE, NATIVE or VIRTUAL."""
        return sync(self._core.chunk_type(array_path, tuple(chunk_coordinates)))

    async def chunk_type_async(
        self, array_path: str, chunk_coordinates: Sequence[int]
    ) -> ChunkType:
        """Async version of :meth:`chunk_type`."""
        return await self._core.chunk_type(array_path, tuple(chunk_coordinates))

    def all_virtual_chunk_locations(self) -> list[str]:
        """The location of every virtual chunk reference."""
        return sync(self._core.virtual_chunk_locations())

    async def all_virtual_chunk_locations_async(self) -> list[str]:
        """Async version of :meth:`all_virtual_chunk_locations`."""
        return await self._core.virtual_chunk_locations()

    def allow_pickling(self) -> Any:
        """Removed API; use :meth:`fork`."""
        raise RuntimeError(
            "The allow_pickling context manager has been removed. Use the new `Session.fork` "
            "API instead. Better yet, use `to_icechunk` if that will fit your needs."
        )

    # -- distributed writes -------------------------------------------------------------------

    def fork(self) -> ForkSession:
        """Make an independent, picklable copy of this writable session.

        Send the forks to workers, let each write through its ``store``, bring them back and
        combine their changes here with :meth:`merge` before committing.

        Returns
        -------
        ForkSession
            A deep copy sharing nothing mutable with this session.

        Uncommitted changes are written as an anonymous snapshot (named by no ref, listed in no
        history) that the fork starts from, as icechunk 2.x does; the fork records only its own
        changes, and :meth:`merge` brings them back.

        Raises
        ------
        ValueError
            If this is a rearrange session with uncommitted moves.
        SessionStateError
            If this session is read-only (kind ``cannot-fork-read-only-session``).
        """
        import pickle

        core = self._core
        if core.read_only:
            raise SessionStateError(CANNOT_FORK_READ_ONLY, kind="cannot-fork-read-only-session")
        if core.changes.touched and core.rearrangement is not None:
            raise ValueError(
                "Cannot fork a rearrange session with uncommitted moves. Commit them, create a "
                "new Session, and then fork that to execute distributed writes."
            )
        clone: SessionCore = pickle.loads(pickle.dumps(core))
        if core.changes.touched:
            # As icechunk 2.x: the fork reads an anonymous snapshot of this session's changes
            # and records only its own.
            base = sync(
                anonymous_snapshot(
                    core.ctx.assets, core.base, core.changes, configured_splitting(core.config)
                )
            )
            clone._state = (base, ChangeSet())
        clone.forked = False
        clone.is_fork = True
        core.forked = True
        return ForkSession(clone)

    def _merge_one(self, other: Session, required: type[Session], error: str) -> None:
        if not isinstance(other, required):
            raise TypeError(error)
        if self._core.read_only:
            raise IcechunkError(READ_ONLY_SESSION, kind="read-only-session")
        self._core.merge(other._core)

    def merge(self, *others: Session) -> None:
        """Bring the changes of other sessions into this one (the last one wins on overlap).

        Parameters
        ----------
        *others
            Usually sessions created with :meth:`fork` (possibly pickled and written to
            elsewhere); as in icechunk 2.x, plain writable sessions merge too.

        Raises
        ------
        TypeError
            If one of ``others`` is not a session.
        ReadOnlyError
            If this session is read-only.
        """
        for other in others:
            self._merge_one(
                other,
                Session,
                f"Sessions can only be merged with other sessions. Received {type(other).__name__} "
                "instead.",
            )
        self._core.forked = False

    async def merge_async(self, *others: Session) -> None:
        """Async version of :meth:`merge`."""
        self.merge(*others)


class ForkSession(Session):
    """A picklable copy of a writable session, for distributed writes (see issue on forks).

    A fork cannot commit or flush: merge it back into the session it came from.
    """

    def __getstate__(self) -> dict[str, Any]:
        return {"_session": self._core}

    def merge(self, *others: Session) -> None:
        """Bring the changes of other forks into this one (the last one wins on overlap).

        Raises
        ------
        SessionStateError
            If one of ``others`` is a session that is not a fork (kind ``merge-not-allowed``).
        TypeError
            If one of ``others`` is not a session at all.
        """
        for other in others:
            if isinstance(other, Session) and not isinstance(other, ForkSession):
                raise SessionStateError(FORK_MERGES_FORKS_ONLY, kind="merge-not-allowed")
            self._merge_one(
                other,
                ForkSession,
                "A ForkSession can only be merged with another ForkSession. "
                f"Received {type(other)} instead.",
            )

    async def merge_async(self, *others: Session) -> None:
        """Async version of :meth:`merge`."""
        self.merge(*others)

    def commit(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not available on a fork.

        Raises
        ------
        SessionStateError
            Always (kind ``commit-not-allowed``); merge the fork into its parent session and
            commit that.
        """
        raise fork_cannot_commit()

    async def commit_async(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not available on a fork (see :meth:`commit`)."""
        raise fork_cannot_commit()

    def flush(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not available on a fork.

        Raises
        ------
        IcechunkError
            Always (kind ``unknown``, as icechunk 2.x); merge the fork into its parent session
            and flush that.
        """
        raise fork_cannot_flush()

    async def flush_async(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not available on a fork (see :meth:`flush`)."""
        raise fork_cannot_flush()

    def amend(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not available on a fork (see :meth:`commit`)."""
        raise fork_cannot_commit()

    async def amend_async(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not available on a fork (see :meth:`commit`)."""
        raise fork_cannot_commit()


def wrap_core(core: SessionCore, *, fork: bool) -> Session:
    """The public session over ``core``: a ForkSession for a fork, or where ``fork`` is set."""
    return (ForkSession if fork or core.is_fork else Session)(core)


def merge_forks(first: ForkSession, rest: Sequence[ForkSession]) -> ForkSession:
    """Merge ``rest`` into ``first``, skipping forks that share a session with one merged before.

    With the threaded scheduler every chunk task hands back the same fork; merging a session
    into itself is a no-op that would cost a pass over all its chunk references.
    """
    seen = {id(first._core)}
    distinct: list[ForkSession] = []
    for session in rest:
        if id(session._core) not in seen:
            seen.add(id(session._core))
            distinct.append(session)
    first.merge(*distinct)
    return first
