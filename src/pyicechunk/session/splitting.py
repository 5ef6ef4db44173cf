"""Manifest splitting: which manifest each chunk reference of an array is written to.

The splitting config gives each dimension of an array a split size ``s``; the chunk grid is cut
into boxes of ``s`` chunks along that dimension (the last box possibly shorter), and a commit
writes one manifest per box that holds chunks. Rules apply in order: every rule whose array
condition matches the array assigns the dimensions no earlier rule assigned, each to the first
of its dimension conditions that matches. A dimension no rule assigns is not split.

:func:`layout_manifests` decides, for one array being committed, which of its old manifests are
kept as they are and which chunk references go into new manifests, as the reference does:

* a box with chunks changed in the session gets one new manifest, holding the old chunks of
  the box (from every old manifest that overlaps it) without the changed ones, plus the chunks
  written;
* in a box without changes, an old manifest lying wholly inside the box is kept; one that
  overlaps the box only partly (after a resize or a change of the config) has its chunks in
  the box written to a new manifest of their own;
* chunks outside the grid are dropped.

Everything is computed on the coordinate columns (``coords // sizes``); Python loops run over
boxes and manifests, never over chunks.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np

from pyicechunk.config import (
    ManifestSplitCondition,
    ManifestSplitDimCondition,
    ManifestSplittingConfig,
    RepositoryConfig,
)
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.arrays import I64
from pyicechunk.format.manifest import ArrayManifest
from pyicechunk.format.snapshot import ManifestRef

__all__ = [
    "SplitPart",
    "array_split_sizes",
    "configured_splitting",
    "layout_manifests",
    "split_by_box",
]

# A dimension no rule splits: one box covering every chunk index a manifest can hold.
_UNSPLIT = 2**32 - 1


def configured_splitting(config: RepositoryConfig) -> ManifestSplittingConfig | None:
    """The splitting config a commit in a repository with ``config`` applies (None: default)."""
    return config.manifest.splitting if config.manifest is not None else None


def _search(regex: str, text: str) -> bool:
    """Whether ``regex`` matches somewhere in ``text`` (the reference's unanchored match)."""
    try:
        return re.search(regex, text) is not None
    except re.error as e:
        raise IcechunkError(
            f"invalid regular expression {regex!r} in the manifest splitting config: {e}; "
            "fix the repository config",
            kind="invalid-config",
        ) from None


def _array_matches(cond: ManifestSplitCondition, path: str) -> bool:
    C = ManifestSplitCondition
    if isinstance(cond, C.AnyArray):
        return True
    if isinstance(cond, C.And):
        return all(_array_matches(c, path) for c in cond._0)
    if isinstance(cond, C.Or):
        return any(_array_matches(c, path) for c in cond._0)
    if isinstance(cond, C.NameMatches):
        return _search(cond.regex, path.rsplit("/", 1)[-1])
    if isinstance(cond, C.PathMatches):
        return _search(cond.regex, path)
    raise IcechunkError(f"unknown manifest split condition {cond!r}", kind="invalid-config")


def _dim_matches(
    cond: ManifestSplitDimCondition, axis: int, names: Sequence[str | None] | None
) -> bool:
    D = ManifestSplitDimCondition
    if isinstance(cond, D.Axis):
        return int(cond._0) == axis
    if isinstance(cond, D.DimensionName):
        name = names[axis] if names is not None and axis < len(names) else None
        return name is not None and _search(cond._0, name)
    return isinstance(cond, D.Any)


def array_split_sizes(
    config: ManifestSplittingConfig | None,
    path: str,
    dimension_names: Sequence[str | None] | None,
    ndim: int,
) -> tuple[int, ...]:
    """The split size (in chunks) of each dimension of the array at ``path``.

    Parameters
    ----------
    config
        The repository's splitting config; None means the default (no splitting).
    path
        The array's absolute path.
    dimension_names
        Its dimension names, if it has any.
    ndim
        Its number of dimensions.

    Returns
    -------
    tuple of int
        One size per dimension; a dimension no rule assigns gets 2**32 - 1.

    Raises
    ------
    IcechunkError
        If a rule's regular expression is invalid, or a split size is 0.
    """
    sizes: list[int | None] = [None] * ndim
    rules = config.split_sizes if config is not None and config.split_sizes is not None else []
    for cond, dims in rules:
        if None not in sizes:
            break
        if not _array_matches(cond, path):
            continue
        for axis in range(ndim):
            if sizes[axis] is not None:
                continue
            for dim_cond, size in dims:
                if _dim_matches(dim_cond, axis, dimension_names):
                    sizes[axis] = int(size)
                    break
    if 0 in sizes:
        raise IcechunkError(
            f"the manifest splitting config gives array {path} a split size of 0 chunks; "
            "use a size of at least 1",
            kind="invalid-config",
        )
    return tuple(_UNSPLIT if s is None else s for s in sizes)


@dataclass(frozen=True, slots=True)
class SplitPart:
    """One manifest of an array in the new snapshot: kept (``ref``) or to write (``refs``).

    ``box`` is the split box's index per dimension; parts are ordered by box, then by
    ``order`` (the position of the old manifest they come from).
    """

    box: tuple[int, ...]
    order: int
    ref: ManifestRef | None = None
    refs: ArrayManifest | None = None


def split_by_box(array: ArrayManifest, sizes: I64) -> list[tuple[tuple[int, ...], ArrayManifest]]:
    """The refs of ``array`` grouped by split box, boxes in index order (refs stay sorted)."""
    if not len(array):
        return []
    if not array.ndim:
        return [((), array)]
    boxes = array.coords // sizes
    if not boxes.any():
        # All in the first box: always so for unsplit arrays, so skip the sort.
        return [((0,) * array.ndim, array)]
    unique, inverse = np.unique(boxes, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    ends = np.cumsum(np.bincount(inverse, minlength=len(unique)))
    starts = ends - np.bincount(inverse, minlength=len(unique))
    return [
        (tuple(int(x) for x in unique[g]), array.take(order[starts[g] : ends[g]]))
        for g in range(len(unique))
    ]


def _box_rows(coords: I64, sizes: I64) -> set[tuple[int, ...]]:
    if not len(coords):
        return set()
    boxes = coords // sizes
    if not boxes.any():
        return {(0,) * coords.shape[1]}
    return {tuple(int(x) for x in row) for row in np.unique(boxes, axis=0)}


async def layout_manifests(
    *,
    sizes: tuple[int, ...],
    upper: tuple[int, ...],
    old_refs: Sequence[ManifestRef],
    load: Callable[[Sequence[ManifestRef]], Awaitable[list[ArrayManifest]]],
    touched: I64 | None,
    written: ArrayManifest | None,
    rewrite_all: bool,
) -> list[SplitPart]:
    """The manifests one array has after a commit, in the order the snapshot lists them.

    Parameters
    ----------
    sizes
        The array's split size per dimension (:func:`array_split_sizes`).
    upper
        Its number of chunk positions per dimension (the new grid).
    old_refs
        The manifests the base snapshot lists for it.
    load
        Reads the chunk refs of some of those manifests (only those this layout needs).
    touched
        ``(n, ndim)`` coordinates changed in the session (written or deleted), or None.
    written
        The refs written in the session inside the grid (deletions removed), or None.
    rewrite_all
        Write every box afresh from all its chunks (``rewrite_manifests``).

    Returns
    -------
    list of SplitPart
        Sorted by box, then by the old manifest's position.
    """
    ndim = len(sizes)
    size_arr = np.array(sizes, dtype=np.int64)
    upper_arr = np.array(upper, dtype=np.int64)
    if touched is not None and len(touched) and ndim:
        in_grid = (touched < upper_arr).all(axis=1)
        touched_boxes = _box_rows(touched[in_grid].astype(np.int64), size_arr)
    else:
        touched_boxes = {()} if touched is not None and len(touched) else set()

    parts: list[SplitPart] = []
    # The old manifests to read, with the box each lies wholly inside (None: unknown, or
    # several boxes); a manifest in one box is neither grouped by box nor clipped to the grid.
    to_load: list[tuple[int, ManifestRef, tuple[int, ...] | None]] = []
    for order, mref in enumerate(old_refs):
        if ndim and not mref.extents:
            to_load.append((order, mref, None))
            continue
        lo = np.array([e[0] for e in mref.extents], dtype=np.int64)
        hi = np.array([e[1] for e in mref.extents], dtype=np.int64)
        if ndim and (lo >= upper_arr).any():
            continue  # wholly outside the grid: its chunks are dropped
        first = lo // size_arr
        last = (np.minimum(hi, upper_arr) - 1) // size_arr
        box = tuple(int(x) for x in first)
        box_hi = np.minimum((first + 1) * size_arr, upper_arr)
        whole = bool((first == last).all() and (hi <= box_hi).all())
        if whole and not rewrite_all and box not in touched_boxes:
            parts.append(SplitPart(box, order, ref=mref))
        else:
            to_load.append((order, mref, box if whole else None))

    pool: list[tuple[tuple[int, ...] | None, ArrayManifest]] = []
    loaded = await load([m for _, m, _ in to_load]) if to_load else []
    for (order, _, whole_box), array in zip(to_load, loaded, strict=True):
        if not len(array):
            continue
        keep = None if whole_box is not None or not ndim else array.within(upper)
        if touched is not None and len(touched):
            hits = array.find_many(touched)
            hits = hits[hits >= 0]
            if len(hits):
                if keep is None:
                    keep = np.ones(len(array), dtype=bool)
                keep[hits] = False
        if keep is not None and not keep.all():
            array = array.take(keep)
        if whole_box is not None:
            groups = [(whole_box, array)] if len(array) else []
        else:
            groups = split_by_box(array, size_arr)
        for box, refs in groups:
            if rewrite_all or box in touched_boxes:
                pool.append((box, refs))
            else:
                parts.append(SplitPart(box, order, refs=refs))
    if written is not None and len(written):
        pool.append((None, written))
    if len(pool) == 1 and (only_box := pool[0][0]) is not None:
        # One old manifest's refs, in one box (a rewrite's usual case): nothing to merge.
        parts.append(SplitPart(only_box, -1, refs=pool[0][1]))
    elif pool:
        arrays = [refs for _, refs in pool]
        merged = (
            ArrayManifest.concat_sorted(arrays[0].node_id, arrays) if len(arrays) > 1 else arrays[0]
        )
        # New manifests of changed boxes come before the kept ones of their box (there are
        # none: a changed box keeps no old manifest).
        parts.extend(SplitPart(box, -1, refs=refs) for box, refs in split_by_box(merged, size_arr))
    parts.sort(key=lambda p: (p.box, p.order))
    return parts
