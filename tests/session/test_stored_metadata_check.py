"""The check of stored ``zarr.json`` documents keeps its verdicts while attributes change.

Reopening an array in every session re-reads its document; the check caches the verdict on
the document without its attributes. These tests make sure the cache never lets damage
through: a document is refused whatever verdict an earlier, similar document got.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import zarr

import pyicechunk as icechunk
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.snapshot import Snapshot
from pyicechunk.session.nodes import NodeInfo, check_stored_metadata


def _stored(spec_version: int) -> tuple[Snapshot, NodeInfo]:
    repo = icechunk.Repository.create(icechunk.in_memory_storage(), spec_version=spec_version)
    session = repo.writable_session("main")
    array = zarr.create_array(session.store, name="a", shape=(6,), chunks=(2,), dtype="i4")
    array.attrs["step"] = 0
    session.commit("array a")
    core = repo.readonly_session(branch="main")._core
    node = core.node("/a")
    assert node is not None and not node.is_new
    return core.base, node


def _with(node: NodeInfo, **fields: object) -> NodeInfo:
    document = {**json.loads(node.user_data), **fields}
    return dataclasses.replace(node, user_data=json.dumps(document).encode())


@pytest.mark.parametrize("spec_version", [1, 2])
def test_changed_attributes_pass_and_damage_is_refused(spec_version: int) -> None:
    base, node = _stored(spec_version)
    for step in range(3):  # the same skeleton with other attributes: valid every time
        check_stored_metadata(base, _with(node, attributes={"step": step, "more": [step]}))
    check_stored_metadata(base, _with(node, attributes=None))  # zarr reads null as {}
    damaged = [
        (_with(node, attributes={"step": 9}, data_type="int33"), "zarr cannot read it"),
        (_with(node, attributes={"step": 9}, shape=[8]), "differ from those the snapshot"),
        (_with(node, attributes={"step": 9}, node_type="group"), "is damaged"),
        (dataclasses.replace(node, user_data=b'{"attributes": {}'), "not valid JSON"),
    ]
    for _ in range(2):  # a refusal is not remembered as a pass either
        for document, why in damaged:
            with pytest.raises(IcechunkError) as info:
                check_stored_metadata(base, document)
            assert info.value.kind == "invalid-file-format"
            assert "/a" in info.value.message and why in info.value.message
