"""Snapshots: the node tree, commit message, properties and manifest list of one commit.

* :mod:`.model`: :class:`Snapshot` and its parts, path rules, the initial snapshot;
* :mod:`.metadata`: commit-property values;
* :mod:`.codec`: :func:`encode_snapshot` and :func:`decode_snapshot`;
* :mod:`.layout`: what differs between spec versions, chosen by the spec byte, with the parts
  of each version in :mod:`.v1` (FORMAT-V1 §4) and :mod:`.v2` (FORMAT-V2 §7).
"""

from pyicechunk.format.snapshot import model
from pyicechunk.format.snapshot.codec import decode_snapshot, encode_snapshot
from pyicechunk.format.snapshot.metadata import decode_metadata_value, encode_metadata_value

# The model's names are the package's: its __all__ is the one list of them.
from pyicechunk.format.snapshot.model import *  # noqa: F403

__all__ = [
    "decode_metadata_value",
    "decode_snapshot",
    "encode_metadata_value",
    "encode_snapshot",
]
__all__ += model.__all__
