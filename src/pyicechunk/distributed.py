"""Helpers for writing through fork sessions from distributed array frameworks.

The cooperative pattern: fork a clean writable session, send the fork (or zarr arrays opened on
``fork.store``) to the workers, collect the forks that come back and combine them with
:func:`merge_sessions`, then merge the result into the original session and commit it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from pyicechunk.session import ForkSession, Session
from pyicechunk.session.facade import merge_forks
from pyicechunk.store import IcechunkStore

if TYPE_CHECKING:
    import zarr

__all__ = ["extract_session", "merge_sessions"]

_NOT_A_FORK = (
    "merge_sessions only accepts ForkSession objects. Received {name!r} instance instead. "
    "To merge _all_ your sessions, use `Session.merge(*forked_sessions)` instead. See "
    "https://icechunk.io/en/stable/icechunk-python/parallel/#cooperative-distributed-writes."
)


def _flatten(items: Iterable[Any]) -> Iterator[Any]:
    for item in items:
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item


def extract_session(zarray: zarr.Array[Any], axis: Any = None, keepdims: Any = None) -> Session:
    """Return the session behind a zarr array opened on an Icechunk store.

    Parameters
    ----------
    zarray
        An array whose store is an `IcechunkStore`.
    axis, keepdims
        Ignored; accepted so that the function can serve as a dask reduction's chunk step.

    Returns
    -------
    Session
        A `ForkSession` when the array was opened on a fork's store, else a `Session`.

    Raises
    ------
    TypeError
        If the array's store is not an `IcechunkStore`.
    """
    store = zarray.store
    if not isinstance(store, IcechunkStore):
        raise TypeError(
            f"extract_session needs a zarr array opened on an IcechunkStore, got a "
            f"{type(store).__name__}. Open the target arrays on `fork.store`."
        )
    return store.session


def merge_sessions(*sessions: ForkSession | list[Any]) -> ForkSession:
    """Combine fork sessions into the first of them.

    Parameters
    ----------
    *sessions
        Fork sessions, or (nested) lists of them; lists are flattened.

    Returns
    -------
    ForkSession
        The first fork, now holding the changes of all the others (later ones win on overlap).

    Raises
    ------
    TypeError
        If any item is not a `ForkSession`.
    ValueError
        If no session is given.
    """
    flat = list(_flatten(sessions))
    if not flat:
        raise ValueError("merge_sessions needs at least one ForkSession; none were given.")
    for session in flat:
        if not isinstance(session, ForkSession):
            raise TypeError(_NOT_A_FORK.format(name=type(session).__name__))
    return merge_forks(flat[0], flat[1:])
