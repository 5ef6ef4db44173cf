"""Compression of virtual chunk locations in spec-2 manifests (zstd with a trained dictionary)."""

from __future__ import annotations

from ._checks import _opt_int, _opt_uint
from ._record import _field, _Record


class ManifestVirtualChunkLocationCompressionConfig(_Record):
    """When and how a spec-2 manifest compresses the locations of its virtual chunks.

    Spec-1 repositories never compress them.

    Parameters
    ----------
    min_num_chunks
        Compress only manifests with at least this many virtual chunks; effective default 1000.
    dictionary_max_training_samples
        Locations used to train the dictionary; effective default 100.
    dictionary_max_size_bytes
        Largest dictionary; effective default 2048 bytes.
    compression_level
        The zstd level; effective default 3.
    """

    min_num_chunks: int | None = _field(_opt_uint(16), default=None, effective=1000)
    dictionary_max_training_samples: int | None = _field(
        _opt_uint(16), default=None, kw_only=True, effective=100
    )
    dictionary_max_size_bytes: int | None = _field(
        _opt_uint(32), default=None, kw_only=True, effective=2048
    )
    compression_level: int | None = _field(_opt_int(32), default=None, kw_only=True, effective=3)
