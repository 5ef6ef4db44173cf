"""A guided tour of a repository: write, append, branch, tag, time-travel, log and diff.

``pyicechunk demo PATH`` runs :func:`run`. It needs nothing but the local filesystem; with
xarray installed it writes an xarray dataset, otherwise the same data through zarr alone.
"""

from __future__ import annotations

import os
from importlib import import_module
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import zarr

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.header import MAGIC
from pyicechunk.storage import keys
from pyicechunk.storage.local import is_temporary_name

__all__ = ["run"]

LAT = np.linspace(-60.0, 60.0, 5)
LON = np.linspace(0.0, 315.0, 8)
FIRST_DAYS = 4
MORE_DAYS = 3


def _temperatures(first_day: int, days: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Deterministic, plausible temperatures (deg C): warm at the equator, a daily wobble."""
    day = np.arange(first_day, first_day + days)[:, None, None]
    lat = LAT[None, :, None]
    lon = LON[None, None, :]
    celsius = 28 * np.cos(np.radians(lat)) - 5 + 2 * np.sin(day + np.radians(lon))
    return np.asarray(celsius, dtype=np.float32)


def _dates(first_day: int, days: int) -> np.ndarray[Any, np.dtype[np.datetime64]]:
    return np.datetime64("2024-01-01", "D") + np.arange(first_day, first_day + days)


def _have_xarray() -> bool:
    try:
        import_module("xarray")
    except ImportError:
        return False
    return True


def _write_days(store: Any, first_day: int, days: int, *, append: bool) -> None:
    """Write (or append along time) ``days`` days of temperatures starting at ``first_day``."""
    if _have_xarray():
        import xarray as xr

        ds = xr.Dataset(
            {
                "temperature": (
                    ("time", "lat", "lon"),
                    _temperatures(first_day, days),
                    {"units": "degC", "long_name": "air temperature at 2 m"},
                )
            },
            coords={"time": _dates(first_day, days), "lat": LAT, "lon": LON},
            attrs={"title": "pyicechunk demo weather"},
        )
        if append:
            ds.to_zarr(store, consolidated=False, append_dim="time")
        else:
            encoding = {"temperature": {"chunks": (1, LAT.size, LON.size)}}
            ds.to_zarr(store, consolidated=False, mode="w", encoding=encoding)
        return
    # Without xarray: the same layout with zarr alone (time as days since 2024-01-01).
    root = zarr.open_group(store, mode="a" if append else "w")
    new_time = np.arange(first_day, first_day + days)
    if append:
        temperature = root["temperature"]
        time = root["time"]
        assert isinstance(temperature, zarr.Array) and isinstance(time, zarr.Array)
        start = temperature.shape[0]
        temperature.resize((start + days, LAT.size, LON.size))
        time.resize((start + days,))
        temperature[start:] = _temperatures(first_day, days)
        time[start:] = new_time
        return
    root.attrs["title"] = "pyicechunk demo weather"
    units = (
        ("lat", LAT, "degrees_north"),
        ("lon", LON, "degrees_east"),
        ("time", new_time, "days since 2024-01-01"),
    )
    for name, values, unit in units:
        coord = root.create_array(
            name,
            shape=values.shape,
            dtype=values.dtype,
            dimension_names=(name,),
            attributes={"units": unit},
        )
        coord[:] = values
    temperature = root.create_array(
        "temperature",
        shape=(days, LAT.size, LON.size),
        chunks=(1, LAT.size, LON.size),
        dtype="float32",
        dimension_names=("time", "lat", "lon"),
        attributes={"units": "degC", "long_name": "air temperature at 2 m"},
    )
    temperature[:] = _temperatures(first_day, days)


def _refuse(path: Path, why: str) -> NoReturn:
    raise IcechunkError(
        f"{path} {why}; --overwrite only replaces an Icechunk repository and never deletes "
        "anything else: choose another path, or empty this one yourself",
        kind="parent-directory-not-clean",
    )


def _repository_layout(path: Path) -> tuple[list[Path], list[Path]]:
    """The files and subdirectories of the Icechunk repository in the directory ``path``.

    ``path`` must hold a repository (spec 1: ``refs/branch.main/ref.json``; spec 2: a ``repo``
    object) and nothing that is not part of one: no other names, no symbolic links, nothing
    but regular files and directories (a temporary file of the local backend is a file).

    Raises
    ------
    IcechunkError
        Naming the first entry that is not part of a repository, or saying that there is none.
    """
    files: list[Path] = []
    directories: list[Path] = []
    pending: list[tuple[Path, tuple[str, ...]]] = [(path, ())]
    while pending:
        directory, parents = pending.pop()
        for entry in sorted(directory.iterdir()):
            is_dir = entry.is_dir()
            if entry.is_symlink() or not (is_dir or entry.is_file()):
                _refuse(path, f"is not an Icechunk repository: {entry} is not a plain file")
            name = entry.name
            if not is_dir and is_temporary_name(name):
                name = name.rpartition("#")[0]  # left by an interrupted write
            placed = (
                keys.is_layout_directory((*parents, name))
                if is_dir
                else keys.is_layout_key("/".join((*parents, name)))
            )
            if not placed:
                _refuse(path, f"is not an Icechunk repository: {entry} is not part of one")
            if is_dir:
                directories.append(entry)
                pending.append((entry, (*parents, name)))
            else:
                files.append(entry)
    spec1 = path / keys.SPEC1_MAIN_BRANCH in files
    repo = path / keys.REPO
    spec2 = repo in files and repo.read_bytes()[: len(MAGIC)] == MAGIC
    if not (spec1 or spec2):
        _refuse(
            path,
            f"is not an Icechunk repository: it has neither {keys.SPEC1_MAIN_BRANCH} (spec 1) "
            f"nor a {keys.REPO} object (spec 2)",
        )
    return files, directories


def _prepare(path: Path, overwrite: bool) -> None:
    """Make sure ``path`` is free for a new repository; with ``overwrite``, delete one there."""
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return
    if not overwrite:
        raise IcechunkError(
            f"{path} is not empty; choose a new or empty path, or pass --overwrite to replace "
            "the Icechunk repository there",
            kind="parent-directory-not-clean",
        )
    if not path.is_dir():
        _refuse(path, "is not a directory")
    files, directories = _repository_layout(path)
    try:
        for file in files:
            file.unlink()
        # Deepest first; a directory that is not empty now gained an entry meanwhile: stop.
        for directory in sorted(directories, key=lambda d: len(d.parts), reverse=True):
            directory.rmdir()
    except OSError as e:
        raise IcechunkError(f"could not delete the repository at {path}: {e}", kind="io") from e


def _shape(session: Any) -> tuple[int, ...]:
    array = zarr.open_array(session.store, path="temperature", mode="r")
    return tuple(array.shape)


def run(path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
    """Create a demo repository at ``path`` and narrate what happens.

    Parameters
    ----------
    path
        A directory that does not exist yet or is empty.
    overwrite
        Replace the Icechunk repository at ``path``. Only a directory that holds a repository
        and nothing else is emptied; anything else is refused and left as it is.

    Raises
    ------
    IcechunkError
        If ``path`` is not empty and ``overwrite`` is false, or if ``overwrite`` is true and
        ``path`` holds anything that is not part of an Icechunk repository.
    """
    import pyicechunk as ic

    target = Path(path)
    _prepare(target, overwrite)
    how = "xarray" if _have_xarray() else "zarr (xarray is not installed)"
    print(f"Creating a repository at {target} (writing with {how})")
    repo = ic.Repository.create(ic.local_filesystem_storage(str(target)))

    session = repo.writable_session("main")
    _write_days(session.store, 0, FIRST_DAYS, append=False)
    first = session.commit(f"Add {FIRST_DAYS} days of temperatures")
    print(f"  main: committed {first}  ({FIRST_DAYS} days)")

    session = repo.writable_session("main")
    _write_days(session.store, FIRST_DAYS, MORE_DAYS, append=True)
    second = session.commit(f"Append {MORE_DAYS} more days")
    print(f"  main: committed {second}  (appended {MORE_DAYS} days along time)")

    repo.create_branch("dev", snapshot_id=second)
    session = repo.writable_session("dev")
    group = zarr.open_group(session.store, mode="r+")
    group.attrs["comment"] = "sensor recalibrated on 2024-01-05"
    third = session.commit("Note the sensor recalibration")
    print(f"  dev:  committed {third}  (attribute change on a new branch)")

    repo.create_tag("v1", snapshot_id=second)
    print(f"  tag v1 -> {second}")

    then = _shape(repo.readonly_session(snapshot_id=first))
    now = _shape(repo.readonly_session(branch="main"))
    print(f"\nTime travel: temperature was {then} at {first}, is {now} on main now")

    print("\nLog of dev (newest first):")
    for snapshot in repo.ancestry(branch="dev"):
        when = snapshot.written_at.strftime("%Y-%m-%d %H:%M:%S")
        print(f"  {snapshot.id}  {when}  {snapshot.message}")

    print(f"\nChanges from {first} to {third}:")
    diff = str(repo.diff(from_snapshot_id=first, to_snapshot_id=third)).rstrip("\n")
    print("\n".join(f"  {line}" if line else "" for line in diff.splitlines()))
    print(f"\nBranches: {', '.join(sorted(repo.list_branches()))}; tags: v1")
