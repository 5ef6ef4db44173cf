"""What spec 2 adds to manifests: compressed virtual locations (FORMAT-V2 §8).

A spec-2 manifest either says ``compression_algorithm = 0`` explicitly (slot 3 of the root;
its default is 1) and keeps plain locations, or carries a zstd dictionary (slot 2) and stores
every virtual location as a frame compressed with it, in ``ChunkRef`` slot 8 instead of slot 5.
Readers accept compressed locations in a manifest of either header version, as the reference
does, so the decoder uses :func:`location_decompressor` whatever the spec byte.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

import numpy as np
import zstandard

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.flatbuf import ColumnReader, TableFields
from pyicechunk.format.manifest.chunk_refs import VIRTUAL
from pyicechunk.format.manifest.model import ArrayManifest

# vtables: [vtable bytes, table bytes, field offsets...]
MANIFEST_VTABLE_PLAIN = (12, 24, 4, 16, 0, 20)  # id, arrays, -, compression_algorithm = 0
"""The root table of a spec-2 manifest without a dictionary."""
MANIFEST_VTABLE_DICTIONARY = (10, 24, 4, 16, 20)  # id, arrays, location_dictionary
"""The root table of a spec-2 manifest with a dictionary."""
VIRTUAL_VTABLES_COMPRESSED = (
    (22, 36, 4, 0, 8, 16, 0, 0, 28, 32, 24),  # the location vector in slot 8, with an etag
    (22, 36, 4, 0, 8, 16, 0, 0, 0, 32, 24),  # and without
)
"""Virtual refs with compressed locations, with and without an etag."""

# The reference refuses decompressed locations longer than this.
_MAX_LOCATION = 1024
_COMPRESSION_ZSTD = 1


@dataclass(frozen=True, slots=True)
class LocationCompression:
    """When and how spec-2 manifests compress virtual locations (FORMAT-V2 §8.2).

    The fields and defaults are those of the reference's
    ``manifest.virtual_chunk_location_compression`` config.
    """

    min_num_chunks: int = 1000
    dictionary_max_training_samples: int = 100
    dictionary_max_size_bytes: int = 2048
    compression_level: int = 3


def compress_locations(
    arrays: list[ArrayManifest], settings: LocationCompression, rng: random.Random | None
) -> tuple[list[ArrayManifest], bytes | None]:
    """Compress every virtual location with a dictionary trained on a sample of them.

    Parameters
    ----------
    arrays
        The arrays of the manifest being written.
    settings
        When to compress and how.
    rng
        Source of randomness for choosing the training samples (None: a fresh one, made
        only when there is something to sample).

    Returns
    -------
    tuple of (list of ArrayManifest, bytes or None)
        The arrays with their locations compressed and the dictionary; the arrays unchanged
        and None when the reference's rules say not to compress.
    """
    total = sum(len(a) for a in arrays)
    virtual = [a.kind == VIRTUAL for a in arrays]
    n_virtual = sum(int(m.sum()) for m in virtual)
    if total < settings.min_num_chunks or n_virtual < settings.min_num_chunks or not n_virtual:
        return arrays, None
    locations = [
        [a.blob[s : s + n].tobytes() for s, n in zip(a.data_start[m], a.data_len[m], strict=True)]
        for a, m in zip(arrays, virtual, strict=True)
    ]
    flat = [loc for locs in locations for loc in locs]
    samples = (rng or random.Random()).sample(
        flat, min(settings.dictionary_max_training_samples, len(flat))
    )
    # Mostly tiny locations do not compress; the reference skips them too.
    if 2 * sum(len(x) < 8 for x in samples) >= len(samples):
        return arrays, None
    size = sum(map(len, samples))
    if size < settings.dictionary_max_size_bytes:
        samples = samples * (settings.dictionary_max_size_bytes // size + 2)
    try:
        training: list[bytes | bytearray | memoryview] = list(samples)
        trained = zstandard.train_dictionary(settings.dictionary_max_size_bytes, training)
    except zstandard.ZstdError:
        return arrays, None  # plain locations are always valid
    compressor = zstandard.ZstdCompressor(
        dict_data=trained, level=settings.compression_level, write_content_size=True
    )
    out = []
    for a, m, locs in zip(arrays, virtual, locations, strict=True):
        if not locs:
            out.append(a)
            continue
        pieces = [compressor.compress(loc) for loc in locs]
        lens = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
        data_start = a.data_start.copy()
        data_len = a.data_len.copy()
        data_len[m] = lens
        data_start[m] = len(a.blob) + np.cumsum(lens) - lens
        blob = np.concatenate([a.blob, np.frombuffer(b"".join(pieces), dtype=np.uint8)])
        columns = a.columns()._replace(blob=blob, data_start=data_start, data_len=data_len)
        out.append(ArrayManifest(a.node_id, *columns))
    return out, trained.as_bytes()


class LocationDecompressor:
    """Decompresses virtual locations with a manifest's zstd dictionary (FORMAT-V2 §8.1).

    zstandard decompressors are not thread-safe, so each thread makes its own from the
    dictionary bytes.

    Parameters
    ----------
    dictionary
        The manifest's ``location_dictionary``.
    """

    __slots__ = ("_dictionary", "_local")

    def __init__(self, dictionary: bytes) -> None:
        self._dictionary = dictionary
        self._local = threading.local()

    def decompress(self, frame: bytes, what: str) -> bytes:
        """Decompress one location frame; ``what`` names the ref in messages.

        Raises
        ------
        IcechunkError
            If the frame is corrupt or decompresses to more than 1024 bytes.
        """
        dctx: zstandard.ZstdDecompressor | None = getattr(self._local, "dctx", None)
        try:
            if dctx is None:
                dictionary = zstandard.ZstdCompressionDict(self._dictionary)
                dctx = self._local.dctx = zstandard.ZstdDecompressor(dict_data=dictionary)
            out: bytes = dctx.decompress(frame, max_output_size=_MAX_LOCATION)
        except zstandard.ZstdError as exc:
            raise IcechunkError(
                f"invalid manifest: {what} cannot be decompressed ({exc}); the manifest is damaged",
                kind="deserialization",
            ) from None
        if len(out) > _MAX_LOCATION:
            raise IcechunkError(
                f"invalid manifest: {what} decompresses to more than {_MAX_LOCATION} bytes",
                kind="deserialization",
            )
        return out


def location_decompressor(r: ColumnReader, root: TableFields) -> LocationDecompressor | None:
    """The manifest's location decompressor, or None unless it declares zstd and a dictionary.

    Parameters
    ----------
    r
        The reader of the manifest.
    root
        The fields of its root table.
    """
    algorithm_pos = root.pos(3)
    algorithm = int(r.u8[algorithm_pos[0]]) if algorithm_pos[0] >= 0 else _COMPRESSION_ZSTD
    dict_pos = root.pos(2)
    if algorithm != _COMPRESSION_ZSTD or dict_pos[0] < 0:
        return None
    start, n = r.vector(dict_pos, 1, "Manifest.location_dictionary")
    return LocationDecompressor(r.u8[int(start[0]) : int(start[0] + n[0])].tobytes())
