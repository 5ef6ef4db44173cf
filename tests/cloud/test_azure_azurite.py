"""Azure Blob Storage through obstore against azurite (the Azure storage emulator)."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import numpy as np
import pytest
import zarr

import pyicechunk
from pyicechunk.storage import Storage, StorageBackend, azure_storage
from pyicechunk.testing.storage import StorageTests

ACCOUNT = "devstoreaccount1"


def _azure(container: str, prefix: str) -> Storage:
    # Emulator mode: obstore uses the well-known account key and AZURITE_BLOB_STORAGE_URL.
    return azure_storage(
        account=ACCOUNT, container=container, prefix=prefix, config={"use_emulator": "true"}
    )


class TestAzureBackend(StorageTests):
    @pytest.fixture
    def storage_backend(self, azure_container: str) -> StorageBackend:
        return _azure(azure_container, "conformance")._backend


def test_repository_on_azure(azure_container: str) -> None:
    storage = _azure(azure_container, "repo")
    assert repr(storage) == (
        f"<icechunk.Storage>\ntype: Azure\naccount: {ACCOUNT}\n"
        f"container: {azure_container}\nprefix: repo\n"
    )
    repo = pyicechunk.Repository.create(storage)
    session = repo.writable_session("main")
    arr = zarr.create_array(session.store, name="a", shape=(6, 4), chunks=(4, 3), dtype="f8")
    data = np.arange(24, dtype="f8").reshape(6, 4)
    arr[:] = data
    first = session.commit("first")
    repo.create_tag("v1", first)
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a", mode="r+")[0, :] = -1
    second = session.commit("second")

    again = pyicechunk.Repository.open(pickle.loads(pickle.dumps(_azure(azure_container, "repo"))))
    assert again.list_tags() == {"v1"}
    assert [s.id for s in again.ancestry(branch="main")][:2] == [second, first]
    tagged = zarr.open_array(again.readonly_session(tag="v1").store, path="a", mode="r")
    np.testing.assert_array_equal(tagged[:], data)
    data[0, :] = -1
    tip = zarr.open_array(again.readonly_session("main").store, path="a", mode="r")
    np.testing.assert_array_equal(tip[:], data)
    # a stale writer loses the branch update
    stale = again.writable_session("main")
    zarr.open_group(stale.store, mode="r+").attrs["x"] = 1
    newer = repo.writable_session("main")
    zarr.open_group(newer.store, mode="r+").attrs["y"] = 1
    newer.commit("newer")
    with pytest.raises(pyicechunk.ConflictError):
        stale.commit("stale")


def test_wrong_key_is_a_clear_error(azure_container: str) -> None:
    # Not the emulator's key: azurite rejects the signature, pyicechunk says which object failed.
    storage = azure_storage(
        account=ACCOUNT,
        container=azure_container,
        prefix="p",
        access_key="d3Jvbmcga2V5",
        config={"use_emulator": "true"},
    )
    with pytest.raises(pyicechunk.IcechunkError, match=r"storage error.*config\.yaml"):
        asyncio.run(storage._backend.put("config.yaml", b"x"))


def test_pickled_backend_reaches_the_same_container(azure_container: Any) -> None:
    backend = _azure(azure_container, "p")._backend
    asyncio.run(backend.put("chunks/A", b"abc"))
    copy = pickle.loads(pickle.dumps(backend))
    assert asyncio.run(copy.get("chunks/A")) == b"abc"
