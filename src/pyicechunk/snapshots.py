"""History value types under icechunk 2.x's module name ``icechunk.snapshots``."""

from pyicechunk.graph import AncestryGraph
from pyicechunk.types import Diff, ManifestFileInfo, SnapshotInfo

__all__ = ["AncestryGraph", "Diff", "ManifestFileInfo", "SnapshotInfo"]
