"""Write dask arrays into an Icechunk session.

Every dask task writes its chunks through a fork of the session (the zarr targets are opened on
``fork.store``); the forks that come back from the tasks are combined by a tree reduction, so
the caller ends with one `ForkSession` to merge into its session before committing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import dask
import dask.array as da
import numpy as np
from packaging.version import Version

from pyicechunk.distributed import extract_session, merge_sessions
from pyicechunk.session import ForkSession

if TYPE_CHECKING:
    import zarr

__all__ = [
    "computing_meta",
    "merge_sessions_array_kwargs",
    "session_merge_reduction",
    "store_dask",
]

_MIN_DASK = "2024.11.0"
# store_dask always runs dask.array.store lazily, keeps the stored targets and writes without
# locks (each task owns whole chunks of its target); the caller cannot change these.
_FIXED_STORE_KWARGS = ("compute", "return_stored", "load_stored", "lock")

P = ParamSpec("P")
R = TypeVar("R")


def _meta_placeholder() -> np.ndarray[Any, Any]:
    return np.array([object()], dtype=object)


def computing_meta(func: Callable[P, R]) -> Callable[P, R | np.ndarray[Any, Any]]:
    """Make ``func`` answer dask's meta probe with a placeholder instead of running.

    dask calls reduction steps with ``computing_meta=True`` on empty inputs to learn the output
    type; sessions cannot be derived from those, so the wrapper returns a one-element object
    array then.

    Parameters
    ----------
    func
        A reduction step.

    Returns
    -------
    Callable
        The wrapped step.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | np.ndarray[Any, Any]:
        if kwargs.get("computing_meta", False):
            return _meta_placeholder()
        return func(*args, **kwargs)

    return wrapper


def merge_sessions_array_kwargs(
    *sessions: Any, axis: Any = None, keepdims: Any = None
) -> ForkSession:
    """`merge_sessions` with the ``axis``/``keepdims`` arguments a dask aggregate step receives.

    Parameters
    ----------
    *sessions
        Fork sessions or nested lists of them.
    axis, keepdims
        Ignored.

    Returns
    -------
    ForkSession
        The merged fork.
    """
    return merge_sessions(*sessions)


def _assert_correct_dask_version() -> None:
    version = str(dask.__version__)  # type: ignore[attr-defined,unused-ignore]
    if Version(version) < Version(_MIN_DASK):
        raise ValueError(
            f"Writing to Icechunk with dask requires dask>={_MIN_DASK}, but dask {version} is "
            "installed. Please upgrade dask."
        )


def store_dask(
    *,
    sources: Sequence[da.Array],
    targets: Sequence[zarr.Array[Any]],
    regions: Sequence[tuple[slice, ...] | None] | None = None,
    split_every: int | None = None,
    **store_kwargs: Any,
) -> ForkSession:
    """Store dask arrays into zarr arrays of a fork and collect the forks' changes.

    The writes happen now. Open every target on ``fork.store`` of a fork of a clean writable
    session; afterwards call ``session.merge(result)`` and ``session.commit(...)``.

    Parameters
    ----------
    sources
        Dask arrays to write.
    targets
        Zarr arrays, one per source, opened on a fork's store.
    regions
        For each target, the region to write its source into (None: the whole array).
    split_every
        How many sessions each step of the tree reduction merges (dask's default if None).
    **store_kwargs
        Passed to ``dask.array.store`` and to the compute that runs the writes (for example
        ``scheduler=``); ``compute``, ``return_stored``, ``load_stored`` and ``lock`` are fixed.

    Returns
    -------
    ForkSession
        A fork holding every change the tasks made.

    Raises
    ------
    TypeError
        If ``store_kwargs`` tries to set one of the fixed arguments, or a target was not opened
        on a fork's store.
    ValueError
        If the installed dask is older than 2024.11.0.
    """
    _assert_correct_dask_version()
    fixed = sorted(set(store_kwargs) & set(_FIXED_STORE_KWARGS))
    if fixed:
        raise TypeError(
            f"store_dask does not accept {', '.join(map(repr, fixed))}: it always stores with "
            "compute=False, return_stored=True, load_stored=False and lock=False. Remove them."
        )
    stored = da.store(
        sources=list(sources),
        targets=list(targets),  # type: ignore[arg-type]
        regions=None if regions is None else list(regions),  # type: ignore[arg-type]
        compute=False,
        return_stored=True,
        load_stored=False,
        lock=False,
        **store_kwargs,
    )
    return session_merge_reduction(stored, split_every=split_every, **store_kwargs)


def session_merge_reduction(
    arrays: da.Array | Sequence[da.Array], *, split_every: int | None, **store_kwargs: Any
) -> ForkSession:
    """Compute stored arrays and tree-reduce the sessions of their chunks into one fork.

    Parameters
    ----------
    arrays
        Results of ``dask.array.store(..., return_stored=True, load_stored=False)``: each
        chunk is the zarr array it was written to.
    split_every
        How many sessions each reduction step merges.
    **store_kwargs
        Passed to ``dask.compute`` (for example ``scheduler=``).

    Returns
    -------
    ForkSession
        A fork holding the changes of every chunk.
    """
    if isinstance(arrays, da.Array):
        arrays = [arrays]
    # One reduction per array: the stored arrays have different shapes, so concatenating them
    # into one would need reshaping that buys nothing.
    reductions = [
        da.reduction(  # type: ignore[no-untyped-call]
            array,
            name="ice-changeset",
            chunk=computing_meta(extract_session),
            aggregate=computing_meta(merge_sessions_array_kwargs),
            split_every=split_every,
            concatenate=False,
            keepdims=False,
            dtype=object,
            meta=_meta_placeholder(),
        )
        for array in arrays
    ]
    merged = da.compute(*reductions, **store_kwargs)  # type: ignore[no-untyped-call]
    return merge_sessions(*merged)
