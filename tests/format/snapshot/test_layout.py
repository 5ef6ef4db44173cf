"""The snapshot layout of each spec version, chosen by the spec byte."""

from __future__ import annotations

import pytest

from pyicechunk.format.header import SPEC_V1, SPEC_V2
from pyicechunk.format.snapshot import (
    decode_metadata_value,
    decode_snapshot,
    encode_metadata_value,
    encode_snapshot,
    initial_snapshot,
)
from pyicechunk.format.snapshot.layout import layout


def test_each_supported_version_has_its_layout() -> None:
    v1, v2 = layout(SPEC_V1), layout(SPEC_V2)
    assert (v1.spec_version, v1.stores_parent, v1.snapshot_slots) == (SPEC_V1, True, 7)
    assert (v2.spec_version, v2.stores_parent, v2.snapshot_slots) == (SPEC_V2, False, 8)
    assert decode_metadata_value(encode_metadata_value({"k": [1]}, "p", SPEC_V2), SPEC_V2) == {
        "k": [1]
    }


@pytest.mark.parametrize("spec", [0, 3])
def test_unknown_versions_are_refused(spec: int) -> None:
    buf = encode_snapshot(initial_snapshot(1))
    with pytest.raises(ValueError, match=f"unsupported spec version {spec}"):
        encode_snapshot(initial_snapshot(1), spec)
    with pytest.raises(ValueError, match=f"unsupported spec version {spec}"):
        decode_snapshot(buf, spec)
    with pytest.raises(ValueError, match=f"unsupported spec version {spec}"):
        encode_metadata_value(1, "p", spec)
