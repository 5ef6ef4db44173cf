"""The "How To: Common Icechunk Operations" page of the icechunk 1.1.21 docs, run unchanged
against both implementations (``import pyicechunk as icechunk`` for ours).

The page's snippets (docs/docs/howto.md at tag v1.1.21) are held below as code strings, in page
order, joined into one script.  Departures from the page, each forced by this environment:

- S3 storage becomes ``local_filesystem_storage`` (no network here).
- ``to_icechunk(ds, session)`` becomes xarray's own
  ``ds.to_zarr(session.store, consolidated=False, mode=...)``: 1.1.21's ``to_icechunk`` cannot
  run on the installed xarray (API-1.1 §11), and pyicechunk is exercised the same way.
- ``datetime.now()`` is made timezone-aware: the reference raises TypeError for naive datetimes.
- The ``await ..._async`` line runs inside ``asyncio.run``.
- Glue the page leaves to the reader (a dataset ``ds``, a conflicting writer, the ``snapshot_id``
  the later snippets use, the ``subgroup``/``array`` the delete snippets remove) is marked
  ``# glue``.
"""

from __future__ import annotations

import importlib
import textwrap
from pathlib import Path

import pytest

SECTIONS: list[tuple[str, str]] = [
    (
        "Create a New Repo",
        """
        storage = icechunk.local_filesystem_storage(repo_path)
        repo = icechunk.Repository.create(storage)
    """,
    ),
    (
        "Open an Existing Repo",
        """
        repo = icechunk.Repository.open(storage)
    """,
    ),
    (
        "Specify Custom Config when Opening a Repo",
        """
        config = icechunk.RepositoryConfig.default()
        config.caching = icechunk.CachingConfig(num_bytes_chunks=100_000_000)
        repo = icechunk.Repository.open(storage, config=config)
    """,
    ),
    (
        "Reading, Writing, and Modifying Data with Zarr",
        """
        session = repo.writable_session(branch="main")
        group = zarr.create_group(session.store, path="my-group", zarr_format=3)
        array = group.create("my_array", shape=(10, 20), dtype='int32')
        array[2:5, :10] = 1
        data = array[:5, :10]
        assert data.sum() == 30  # glue
        array.resize((20, 30))
        array.attrs["standard_name"] = "time"
        assert dict(array.attrs) == {"standard_name": "time"}  # glue
        group.create_group("subgroup")  # glue
        group.create("array", shape=(2,), dtype='int8')  # glue
        del group["subgroup"]
        del group["array"]
        session.commit(message="wrote some data")
    """,
    ),
    (
        "Transaction context manager",
        """
        with repo.transaction(branch="main", message="wrote some data") as store:
            zarr.open_group(store, path="my-group")["my_array"][0, 0] = 42  # glue
    """,
    ),
    (
        "Reading and Writing Data with Xarray",
        """
        ds = xr.Dataset(  # glue
            {"temp": (("time", "x"), np.arange(6.0).reshape(3, 2))},
            coords={"time": [0, 1, 2], "x": [10, 20]},
        )
        session = repo.writable_session(branch="main")
        ds.to_zarr(session.store, group="xr-group", zarr_format=3, consolidated=False)
        ds.to_zarr(session.store, group="xr-group", append_dim='time', consolidated=False)
        # to_icechunk(ds, session) replaced, see the module docstring:
        ds.to_zarr(session.store, group="xr-overwrite", consolidated=False, mode="w")
        snapshot_id = session.commit("commit message")
        session = repo.readonly_session("main")
        ds2 = xr.open_zarr(session.store, group="xr-group", zarr_format=3, consolidated=False)
        assert ds2.sizes["time"] == 6  # glue
        assert ds2["temp"].values[3:].tolist() == ds["temp"].values.tolist()  # glue
    """,
    ),
    (
        "Resolve a Commit Conflict",
        """
        session = repo.writable_session("main")
        zarr.open_array(session.store, path="my-group/my_array")[1, 1] = 5
        other = repo.writable_session("main")  # glue: someone else commits first
        zarr.open_array(other.store, path="my-group/my_array")[19, 29] = 6  # glue
        other.commit("concurrent")  # glue
        try:
            session.commit("commit message")
        except icechunk.ConflictError:
            session.rebase(icechunk.ConflictDetector())
            session.commit("committed after rebasing")
        session = repo.writable_session("main")
        zarr.open_array(session.store, path="my-group/my_array")[1, 1] = 7
        other = repo.writable_session("main")  # glue
        zarr.open_array(other.store, path="my-group/my_array")[1, 1] = 8  # glue
        other.commit("concurrent, same chunk")  # glue
        try:
            session.commit("commit message")
        except icechunk.ConflictError:
            session.rebase(icechunk.BasicConflictSolver(on_chunk_conflict=icechunk.VersionSelection.UseOurs))
            session.commit("committed after rebasing")
        session = repo.writable_session("main")
        zarr.open_array(session.store, path="my-group/my_array")[2, 2] = 9
        session.commit("commit message", rebase_with=icechunk.ConflictDetector())
        final = zarr.open_array(repo.readonly_session("main").store, path="my-group/my_array")
        assert (final[1, 1], final[19, 29], final[2, 2]) == (7, 6, 9)  # glue
    """,
    ),
    (
        "Branches, tags and history",
        """
        for snapshot in repo.ancestry(branch="main"):
            print(snapshot)
        session = repo.readonly_session(snapshot_id=snapshot_id)
        repo.create_branch("dev", snapshot_id=snapshot_id)
        branches = repo.list_branches()
        assert branches == {"main", "dev"}  # glue
        session = repo.writable_session("dev")
        repo.reset_branch("dev", snapshot_id=snapshot_id)
        repo.create_tag("v1.0.0", snapshot_id=snapshot_id)
        tags = repo.list_tags()
        assert tags == {"v1.0.0"}  # glue
        session = repo.readonly_session(tag="v1.0.0")
        assert session.snapshot_id == snapshot_id  # glue
        repo.delete_tag("v1.0.0")
    """,
    ),
    (
        "Repo Maintenance",
        """
        from datetime import datetime, timedelta, timezone
        expiry_time = datetime.now(timezone.utc) - timedelta(days=10)  # tz-aware, see docstring
        expired = repo.expire_snapshots(older_than=expiry_time)
        assert expired == set()  # glue
        results = repo.garbage_collect(expiry_time)
        assert results.snapshots_deleted == 0  # glue
        async def main():  # glue
            return await repo.garbage_collect_async(expiry_time)
        results = asyncio.run(main())
    """,
    ),
]


@pytest.mark.parametrize("module_name", ["icechunk", "pyicechunk"])
def test_common_operations_snippet(module_name: str, tmp_path: Path) -> None:
    namespace: dict[str, object] = {"repo_path": str(tmp_path / "repo")}
    prelude = "import asyncio\nimport numpy as np\nimport xarray as xr\nimport zarr\n"
    exec(f"{prelude}import {module_name} as icechunk", namespace)
    assert importlib.import_module(module_name) is namespace["icechunk"]
    for title, code in SECTIONS:
        try:
            exec(compile(textwrap.dedent(code), f"<howto: {title}>", "exec"), namespace)
        except Exception as err:
            pytest.fail(f"section {title!r} failed with {module_name}: {type(err).__name__}: {err}")
