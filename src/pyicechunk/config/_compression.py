"""Compression of metadata files: the algorithm (Zstd, the only one) and its level."""

from __future__ import annotations

import enum
from typing import Any

from pyicechunk._enum import NamedIntEnum

from ._checks import _opt_instance, _opt_uint
from ._record import _DefaultConstructor, _field, _Record


class _CompressionAlgorithmMeta(enum.EnumMeta):
    # ``CompressionAlgorithm()`` is Zstd, as in the reference.
    def __call__(cls, value: object = 0, *args: Any, **kwargs: Any) -> Any:
        return super().__call__(value, *args, **kwargs)


class CompressionAlgorithm(NamedIntEnum, metaclass=_CompressionAlgorithmMeta):
    """The compression algorithm for metadata files; Zstd is the only one."""

    Zstd = 0

    @staticmethod
    def default() -> CompressionAlgorithm:
        """Return the default algorithm, ``CompressionAlgorithm.Zstd``.

        Returns
        -------
        CompressionAlgorithm
        """
        return CompressionAlgorithm.Zstd


class CompressionConfig(_DefaultConstructor, _Record):
    """Compression of metadata files (snapshots, manifests, transaction logs).

    Parameters
    ----------
    algorithm
        The algorithm; effective default Zstd.
    level
        The compression level (0-255); effective default 3.
    """

    algorithm: CompressionAlgorithm | None = _field(
        _opt_instance(CompressionAlgorithm), default=None, effective=CompressionAlgorithm.Zstd
    )
    level: int | None = _field(_opt_uint(8), default=None, effective=3)
