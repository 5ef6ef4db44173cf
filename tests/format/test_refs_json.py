"""Ref file content (``{"snapshot":"<id>"}``), checked against icechunk 1.1.21."""

from __future__ import annotations

import warnings
from pathlib import Path

import icechunk
import pytest
import zarr

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.ids import INITIAL_SNAPSHOT_ID, decode_id, encode_id
from pyicechunk.format.refs import decode_ref, encode_ref


def test_round_trip_with_the_reference(tmp_path: Path) -> None:
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(tmp_path)))
    s = repo.writable_session("main")
    zarr.group(store=s.store)
    tip = s.commit("c")
    repo.create_tag("v1", tip)
    ref_file = tmp_path / "refs" / "branch.main" / "ref.json"
    for path in (ref_file, tmp_path / "refs" / "tag.v1" / "ref.json"):
        data = path.read_bytes()
        assert decode_ref(data, str(path)) == decode_id(tip, 12)
        assert encode_ref(decode_id(tip, 12)) == data  # byte-identical to the reference
    # The reference follows a ref we wrote.
    ref_file.write_bytes(encode_ref(INITIAL_SNAPSHOT_ID))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reopened = icechunk.Repository.open(icechunk.local_filesystem_storage(str(tmp_path)))
    assert reopened.lookup_branch("main") == encode_id(INITIAL_SNAPSHOT_ID)


def test_lenient_reading() -> None:
    expected = INITIAL_SNAPSHOT_ID
    assert decode_ref(b'{"snapshot":"1cechnkrep0f1rstcmt0"}', "k") == expected
    assert decode_ref(b' {"other": 1, "snapshot": "1CECHNKREP0F1RSTCMT0"}\n', "k") == expected


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'"1CECHNKREP0F1RSTCMT0"',
        b"{}",
        b'{"snapshot": 5}',
        b'{"snapshot": "TOOSHORT"}',
        b'{"snapshot": "1CECHNKREP0F1RSTCMTU"}',
    ],
)
def test_damaged_refs_name_the_key(data: bytes) -> None:
    with pytest.raises(IcechunkError, match=r"cannot read ref refs/branch\.main/ref\.json"):
        decode_ref(data, "refs/branch.main/ref.json")
