"""Manifests: the chunk refs of one or more arrays (FORMAT-V1 §5, FORMAT-V2 §8).

* :mod:`.chunk_refs`: the payload kinds and objects, and the columns of many refs;
* :mod:`.model`: :class:`ArrayManifest` (the refs of one array as numpy columns, with lookups)
  and :class:`Manifest`;
* :mod:`.lazy`: refs read straight from the flatbuffer until a bulk use decodes them all;
* :mod:`.codec`: :func:`encode_manifest` and :func:`decode_manifest`;
* :mod:`.v2`: what spec 2 adds (compressed virtual locations).
"""

from pyicechunk.format.manifest import chunk_refs

# The payload kinds and ref columns are the package's: chunk_refs' __all__ lists them.
from pyicechunk.format.manifest.chunk_refs import *  # noqa: F403
from pyicechunk.format.manifest.codec import decode_manifest, encode_manifest
from pyicechunk.format.manifest.model import ArrayManifest, Manifest
from pyicechunk.format.manifest.v2 import LocationCompression

__all__ = [
    "ArrayManifest",
    "LocationCompression",
    "Manifest",
    "decode_manifest",
    "encode_manifest",
]
__all__ += chunk_refs.__all__
