"""Write xarray objects into an Icechunk session (`to_icechunk`).

Built on xarray's zarr backend (`ZarrStore` plus ``dump_to_store``), like ``Dataset.to_zarr``,
with one difference: dask-backed variables are written through a fork of the session and the
forks coming back from the tasks are merged into it, so that the writes work on any dask
scheduler, including a distributed cluster of processes.
"""

from __future__ import annotations

import inspect
from collections.abc import Hashable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, Literal

import xarray as xr
from packaging.version import Version
from xarray import DataArray, Dataset
from xarray.backends.common import ArrayWriter
from xarray.backends.zarr import ZarrStore

from pyicechunk.session import ForkSession, Session
from pyicechunk.store import IcechunkStore

try:  # xarray > 2025.09 moved the writing helpers out of backends.api
    from xarray.backends.writers import _validate_dataset_names, dump_to_store
except ImportError:  # pragma: no cover - depends on the installed xarray
    from xarray.backends.api import (  # type: ignore[attr-defined,no-redef]
        _validate_dataset_names,
        dump_to_store,
    )

if TYPE_CHECKING:
    import zarr

__all__ = ["to_icechunk"]

_MIN_XARRAY = "2024.10.0"
if Version(xr.__version__) < Version(_MIN_XARRAY):
    raise ValueError(
        f"Writing to Icechunk requires xarray>={_MIN_XARRAY}, but xarray {xr.__version__} is "
        "installed. Please upgrade xarray."
    )

Region = Mapping[str, slice | Literal["auto"]] | Literal["auto"] | None
ZarrWriteModes = Literal["w", "w-", "a", "a-", "r+", "r"]

# The names DataArray.to_zarr gives an unnamed or coordinate-clashing DataArray.
_DATAARRAY_NAME = "__xarray_dataarray_name__"
_DATAARRAY_VARIABLE = "__xarray_dataarray_variable__"

_OPEN_GROUP_PARAMS = frozenset(inspect.signature(ZarrStore.open_group).parameters)


def _is_dask_collection(obj: Any) -> bool:
    try:
        from dask.base import is_dask_collection
    except ImportError:
        return False
    return bool(is_dask_collection(obj))


def _choose_default_mode(
    *, mode: ZarrWriteModes | None, append_dim: Hashable | None, region: Region
) -> ZarrWriteModes:
    # Same defaults and messages as xarray's to_zarr.
    if mode is None:
        if append_dim is not None:
            mode = "a"
        elif region is not None:
            mode = "r+"
        else:
            mode = "w-"
    if append_dim is not None and mode not in ("a", "a-"):
        raise ValueError("cannot set append_dim unless mode='a' or mode=None")
    if region is not None and mode not in ("a", "a-", "r+"):
        raise ValueError("cannot set region unless mode='a', mode='a-', mode='r+' or mode=None")
    if mode not in ("w", "w-", "a", "a-", "r+"):
        raise ValueError(
            "The only supported options for mode are 'w', 'w-', 'a', 'a-', and 'r+', "
            f"but mode={mode!r}"
        )
    return mode


class _SplitArrayWriter(ArrayWriter):
    """Collects dask sources for `store_dask` and keeps in-memory ones for a plain write."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.eager: list[tuple[Any, zarr.Array[Any], tuple[slice, ...] | None]] = []

    def add(self, source: Any, target: Any, region: Any = None) -> None:
        if _is_dask_collection(source):
            self.sources.append(source)
            self.targets.append(target)
            self.regions.append(region)
        else:
            self.eager.append((source, target, region))


class _XarrayDatasetWriter:
    """Writes one Dataset into a group of an `IcechunkStore` in three steps.

    Private: `to_icechunk` is the public entry point. Call `_open_group`, then `write_metadata`,
    `write_eager` and `write_lazy`.
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        store: IcechunkStore,
        safe_chunks: bool = True,
        align_chunks: bool = False,
    ) -> None:
        if not isinstance(store, IcechunkStore):
            raise ValueError(
                f"Please pass in an icechunk.Session. Received {type(store)!r} instead."
            )
        self.dataset = dataset
        self.store = store
        self.safe_chunks = safe_chunks
        self.align_chunks = align_chunks
        self._writer: _SplitArrayWriter | None = None
        self._xarray_store: ZarrStore | None = None

    def _open_group(
        self,
        *,
        group: str | None,
        mode: ZarrWriteModes | None,
        append_dim: Hashable | None,
        region: Region,
    ) -> None:
        kwargs: dict[str, Any] = {
            "store": self.store,
            "group": group,
            "mode": _choose_default_mode(mode=mode, append_dim=append_dim, region=region),
            "zarr_format": 3,
            "append_dim": append_dim,
            "write_region": region,
            "safe_chunks": self.safe_chunks,
            "consolidated": False,
            "consolidate_on_close": False,
        }
        # align_chunks exists from xarray 2025.06 on.
        if "align_chunks" in _OPEN_GROUP_PARAMS:
            kwargs["align_chunks"] = self.align_chunks
        self._xarray_store = ZarrStore.open_group(**kwargs)
        self.dataset = self._xarray_store._validate_and_autodetect_region(self.dataset)

    def write_metadata(self, encoding: Mapping[Any, Any] | None = None) -> None:
        """Create or resize the arrays and write attributes; collect the data to write.

        Parameters
        ----------
        encoding
            Per-variable encodings, as for ``Dataset.to_zarr``.

        Raises
        ------
        ValueError
            If the group was not opened, or xarray rejects the names or the encoding.
        """
        if self._xarray_store is None:
            raise ValueError("Please call `_open_group` first.")
        _validate_dataset_names(self.dataset)
        encoding = dict(encoding or {})
        self._xarray_store._validate_encoding(encoding)
        self._writer = _SplitArrayWriter()
        dump_to_store(  # type: ignore[no-untyped-call,unused-ignore]
            self.dataset, self._xarray_store, self._writer, encoding=encoding
        )

    def _require_writer(self) -> _SplitArrayWriter:
        if self._writer is None:
            raise ValueError("Please call `write_metadata` first.")
        return self._writer

    def write_eager(self) -> None:
        """Write the in-memory variables.

        Raises
        ------
        ValueError
            If `write_metadata` was not called first.
        """
        writer = self._require_writer()
        for source, target, region in writer.eager:
            target[region or ...] = source
        writer.eager = []

    def write_lazy(
        self,
        chunkmanager_store_kwargs: MutableMapping[Any, Any] | None = None,
        split_every: int | None = None,
    ) -> ForkSession | None:
        """Write the dask-backed variables with `store_dask`.

        Parameters
        ----------
        chunkmanager_store_kwargs
            Passed on to `store_dask`.
        split_every
            Fan-in of the tree reduction of the task sessions.

        Returns
        -------
        ForkSession or None
            The merged fork holding the writes, or None when there was nothing lazy to write.

        Raises
        ------
        ValueError
            If `write_metadata` was not called first.
        """
        writer = self._require_writer()
        if not writer.sources:
            return None
        from pyicechunk.dask import store_dask

        result = store_dask(
            sources=writer.sources,
            targets=writer.targets,
            regions=writer.regions,
            split_every=split_every,
            **dict(chunkmanager_store_kwargs or {}),
        )
        writer.sources, writer.targets, writer.regions = [], [], []
        return result


def _make_dataset(obj: DataArray | Dataset) -> Dataset:
    # Mirrors DataArray.to_zarr, so that xr.open_dataarray-style readers find the array.
    if isinstance(obj, Dataset):
        return obj
    if obj.name is None:
        return obj.to_dataset(name=_DATAARRAY_VARIABLE)
    if obj.name in obj.coords or obj.name in obj.dims:
        dataset = obj.to_dataset(name=_DATAARRAY_VARIABLE)
        dataset.attrs[_DATAARRAY_NAME] = obj.name
        return dataset
    return obj.to_dataset()


def to_icechunk(
    obj: DataArray | Dataset,
    session: Session,
    *,
    group: str | None = None,
    mode: ZarrWriteModes | None = None,
    safe_chunks: bool = True,
    align_chunks: bool = False,
    append_dim: Hashable | None = None,
    region: Region = None,
    encoding: Mapping[Any, Any] | None = None,
    chunkmanager_store_kwargs: MutableMapping[Any, Any] | None = None,
    split_every: int | None = None,
    consolidated: bool | None = None,
) -> None:
    """Write an xarray object into a group of an Icechunk session (without committing).

    Parameters
    ----------
    obj
        The Dataset or DataArray to write. A DataArray is stored the way ``DataArray.to_zarr``
        stores it: unnamed, or named like one of its coordinates or dimensions, it becomes the
        variable ``__xarray_dataarray_variable__`` (a clashing name is kept in the attribute
        ``__xarray_dataarray_name__``).
    session
        A writable session. If ``obj`` holds dask arrays the session must have no uncommitted
        changes: the data is written through a fork that is merged back at the end.
    group
        The group to write into (the root if None).
    mode
        ``"w"`` create, overwriting; ``"w-"`` create, failing if it exists; ``"a"`` overwrite
        or append variables; ``"a-"`` append only the variables with ``append_dim``; ``"r+"``
        change values only. Default: ``"a"`` with ``append_dim``, ``"r+"`` with ``region``,
        else ``"w-"``.
    safe_chunks
        Refuse dask chunks that would make several tasks write one zarr chunk.
    align_chunks
        Rechunk dask arrays to the zarr chunks before writing (xarray >= 2025.06).
    append_dim
        The dimension to append along.
    region
        Where in the existing arrays to write: a mapping of dimension to slice or ``"auto"``,
        or ``"auto"``.
    encoding
        Per-variable encodings, e.g. ``{"t": {"chunks": (10,), "write_empty_chunks": True}}``;
        ``write_empty_chunks`` decides whether chunks equal to the fill value are stored.
    chunkmanager_store_kwargs
        Passed on to `pyicechunk.dask.store_dask` (for example ``scheduler=``).
    split_every
        Fan-in of the tree reduction that merges the task sessions.
    consolidated
        Only None or False: Icechunk commits all metadata atomically, so consolidated metadata
        is neither needed nor written.

    Raises
    ------
    ValueError
        For a mode that does not fit ``append_dim``/``region``, an unknown mode,
        ``consolidated=True``, dask data with a session that has uncommitted changes, or
        whatever xarray rejects (names, encodings, chunks, regions).
    """
    if consolidated:
        raise ValueError(
            "to_icechunk does not write consolidated metadata: Icechunk commits all metadata "
            "atomically, so consolidation is unnecessary. Drop consolidated=True, and read with "
            "xr.open_zarr(session.store, consolidated=False)."
        )
    dataset = _make_dataset(obj)
    is_dask = _is_dask_collection(dataset)
    target: Session
    if is_dask:
        if session.has_uncommitted_changes:
            raise ValueError(
                "Calling `to_icechunk` is not allowed on a Session with uncommitted changes. "
                "Please commit first."
            )
        target = session.fork()
    else:
        # In-memory data is written in this process, so a session with earlier changes is fine.
        target = session

    writer = _XarrayDatasetWriter(
        dataset, store=target.store, safe_chunks=safe_chunks, align_chunks=align_chunks
    )
    writer._open_group(group=group, mode=mode, append_dim=append_dim, region=region)
    writer.write_metadata(encoding)
    writer.write_eager()
    written = writer.write_lazy(
        chunkmanager_store_kwargs=chunkmanager_store_kwargs, split_every=split_every
    )
    if isinstance(target, ForkSession):
        from pyicechunk.distributed import merge_sessions

        # The fork holds the metadata and eager writes; the tasks' sessions hold the chunks.
        session.merge(target if written is None else merge_sessions(target, written))
