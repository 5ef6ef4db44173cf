"""What differs between the snapshot layouts of the spec versions, chosen by the spec byte.

The codec (:mod:`pyicechunk.format.snapshot.codec`) writes the tables both versions share and
asks the :class:`SnapshotLayout` of the object's version for the rest. A new version is one
more module like :mod:`.v1` and :mod:`.v2` and one more entry here.

Reading picks shapes and manifest lists by field presence, as the reference does, so only the
parent and the metadata values follow the header byte when decoding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyicechunk.format.snapshot.v1 as v1
import pyicechunk.format.snapshot.v2 as v2
from pyicechunk.format.flatbuf import Builder
from pyicechunk.format.header import SPEC_V1, SPEC_V2, check_spec_version
from pyicechunk.format.snapshot.model import DimensionShape, ManifestFileInfo


@dataclass(frozen=True)
class SnapshotLayout:
    """The version-specific parts of a snapshot flatbuffer.

    Attributes
    ----------
    spec_version
        The header spec byte.
    snapshot_slots, array_slots
        Slots written in the ``Snapshot`` and ``ArrayNodeData`` tables.
    stores_parent
        Whether ``Snapshot.parent_id`` is written and read.
    encode_shape
        Writes a shape; returns the references of ``shape`` and ``shape_v2`` (0 if none).
    encode_manifest_files
        Writes the manifest list; returns the references of ``manifest_files`` and
        ``manifest_files_v2`` (0 if none).
    encode_value, decode_value
        Commit-property values: a JSON value and the property name to bytes, and back.
    """

    spec_version: int
    snapshot_slots: int
    array_slots: int
    stores_parent: bool
    encode_shape: Callable[[Builder, tuple[DimensionShape, ...]], tuple[int, int]]
    encode_manifest_files: Callable[[Builder, Sequence[ManifestFileInfo]], tuple[int, int]]
    encode_value: Callable[[Any, str], bytes]
    decode_value: Callable[[bytes], Any]


_LAYOUTS = {
    SPEC_V1: SnapshotLayout(
        SPEC_V1,
        7,
        3,
        True,
        v1.encode_shape,
        v1.encode_manifest_files,
        v1.encode_value,
        v1.decode_value,
    ),
    SPEC_V2: SnapshotLayout(
        SPEC_V2,
        8,
        4,
        False,
        v2.encode_shape,
        v2.encode_manifest_files,
        v2.encode_value,
        v2.decode_value,
    ),
}


def layout(spec_version: int) -> SnapshotLayout:
    """Return the layout of ``spec_version``.

    Raises
    ------
    ValueError
        If the version is not supported.
    """
    return _LAYOUTS[check_spec_version(spec_version)]
