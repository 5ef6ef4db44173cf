"""Byte-layout arithmetic shared by the flatbuffer writers and readers.

The manifest and transaction-log encoders do not build their buffers one object at a time:
they compute every position up front with cumulative sums, allocate the buffer once and fill
it with vectorised writes. These helpers are the pieces of that computation they share; the
vectorised reader uses :func:`gather_index` too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pyicechunk.format.arrays import I64, U8

FILE_IDENTIFIER = b"Ichk"
"""The 4-byte file identifier Icechunk writes after the root offset (readers do not check it)."""

# Where the precomputed layouts put their vtables: right after the root offset and the file
# identifier.
_VTABLES_AT = 8


def align(x: int, a: int) -> int:
    """Round ``x`` up to a multiple of ``a`` (a power of two)."""
    return (x + (a - 1)) & ~(a - 1)


def align_all(x: I64, a: int) -> I64:
    """Round every element of ``x`` up to a multiple of ``a`` (a power of two)."""
    return (x + (a - 1)) & ~(a - 1)


def gather_index(starts: I64, lens: I64) -> I64:
    """Return the flat indices of the concatenated ranges ``[starts[i], starts[i] + lens[i])``.

    Parameters
    ----------
    starts, lens
        Start and length of each range.

    Returns
    -------
    numpy.ndarray
        ``lens.sum()`` int64 indices, range after range.
    """
    total = int(lens.sum()) if len(lens) else 0
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    seg_off = np.cumsum(lens) - lens
    out: I64 = np.arange(total, dtype=np.int64) + np.repeat(starts - seg_off, lens)
    return out


def vtable_block(vtables: Sequence[tuple[int, ...]]) -> tuple[bytes, list[int]]:
    """Serialise vtables for a precomputed layout.

    Parameters
    ----------
    vtables
        Each vtable as its u16 entries: vtable size, table size, then one offset per field.

    Returns
    -------
    tuple of (bytes, list of int)
        The vtables, each padded to 4 bytes, to be placed at byte 8 of the buffer (see
        :func:`new_buffer`), and the absolute position of each.
    """
    out = bytearray()
    positions = []
    for vt in vtables:
        positions.append(_VTABLES_AT + len(out))
        out += np.array(vt, dtype="<u2").tobytes()
        out += b"\0" * (align(len(out), 4) - len(out))
    return bytes(out), positions


def new_buffer(size: int, vtables: bytes, root: int, root_vtable: int) -> U8:
    """Allocate a zeroed buffer of ``size`` bytes with its fixed start written.

    Parameters
    ----------
    size
        Total size of the flatbuffer, a multiple of 4.
    vtables
        The block returned by :func:`vtable_block`.
    root
        Position of the root table.
    root_vtable
        Position of the root table's vtable.

    Returns
    -------
    numpy.ndarray
        The buffer with the root offset, the file identifier, the vtables and the root table's
        vtable offset in place.
    """
    buf = np.zeros(size, dtype=np.uint8)
    b32 = buf.view("<u4")
    b32[0] = root
    buf[4:8] = np.frombuffer(FILE_IDENTIFIER, dtype=np.uint8)
    buf[_VTABLES_AT : _VTABLES_AT + len(vtables)] = np.frombuffer(vtables, dtype=np.uint8)
    b32[root // 4] = root - root_vtable
    return buf
