"""Object identifiers: random 12- and 8-byte ids and their Crockford base32 text form.

Snapshots, manifests and chunks are named by 12 random bytes, nodes by 8 (spec §1). Object keys
are built from the canonical text form (uppercase, no padding), whose string order equals the byte
order of the ids because the Crockford alphabet is in ASCII order.
"""

from __future__ import annotations

import os
import re
import threading

__all__ = [
    "INITIAL_SNAPSHOT_ID",
    "check_id_length",
    "decode_id",
    "encode_id",
    "new_chunk_id",
    "new_manifest_id",
    "new_node_id",
    "new_snapshot_id",
]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Every 10-bit value as two symbols: encoding a 12-byte id (called for every chunk write) is then
# ten table lookups on one integer, several times faster than a per-symbol loop.
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]

# Every letter but U (I, L and O are accepted as aliases of 1, 1 and 0).
_VALID_TEXT = re.compile(r"[0-9A-TV-Za-tv-z]+")
_INT32_DIGITS = "0123456789abcdefghijklmnopqrstuv"
# Readers are lenient (spec §1.1): any case, and I/L read as 1, O read as 0.
_TO_INT32_DIGITS = str.maketrans(
    {
        **{c: _INT32_DIGITS[i] for i, c in enumerate(_CROCKFORD)},
        **{c.lower(): _INT32_DIGITS[i] for i, c in enumerate(_CROCKFORD)},
        "I": "1",
        "i": "1",
        "L": "1",
        "l": "1",
        "O": "0",
        "o": "0",
    }
)

INITIAL_SNAPSHOT_ID: bytes = bytes.fromhex("0B1CC8D6787580F0E33A6534")
"""Id of every repository's first snapshot; its text form is ``1CECHNKREP0F1RSTCMT0``."""


def encode_id(raw: bytes) -> str:
    """Encode an id as canonical Crockford base32 (uppercase, no padding).

    Parameters
    ----------
    raw
        The id bytes (12 for snapshots, manifests and chunks; 8 for nodes).

    Returns
    -------
    str
        20 characters for a 12-byte id, 13 for an 8-byte id.
    """
    p = _PAIRS
    if len(raw) == 12:
        # 96 bits padded with 4 zero bits on the right = 100 bits = 10 pairs.
        v = int.from_bytes(raw, "big") << 4
        return (
            p[v >> 90]
            + p[(v >> 80) & 1023]
            + p[(v >> 70) & 1023]
            + p[(v >> 60) & 1023]
            + p[(v >> 50) & 1023]
            + p[(v >> 40) & 1023]
            + p[(v >> 30) & 1023]
            + p[(v >> 20) & 1023]
            + p[(v >> 10) & 1023]
            + p[v & 1023]
        )
    nbits = len(raw) * 8
    nchars = (nbits + 4) // 5
    top = (nchars + 1) // 2 * 10
    v = int.from_bytes(raw, "big") << (top - nbits)
    return "".join([p[(v >> shift) & 1023] for shift in range(top - 10, -1, -10)])[:nchars]


def decode_id(text: str, nbytes: int) -> bytes:
    """Decode the text form of an id, leniently as the reference does.

    Parameters
    ----------
    text
        Crockford base32 text; case-insensitive, ``I``/``L`` read as 1 and ``O`` as 0.
    nbytes
        The expected id length in bytes (12 or 8).

    Returns
    -------
    bytes
        The raw id. Bits beyond ``nbytes`` bytes in the last character are ignored.

    Raises
    ------
    ValueError
        If the text contains characters outside the alphabet or does not hold exactly
        ``nbytes`` bytes.
    """
    if not _VALID_TEXT.fullmatch(text):
        raise ValueError(f"invalid id {text!r}: not Crockford base32 text")
    nbits = len(text) * 5
    if nbits // 8 != nbytes:
        raise ValueError(
            f"invalid id {text!r}: {len(text)} characters hold {nbits // 8} bytes, "
            f"expected {nbytes}"
        )
    value = int(text.translate(_TO_INT32_DIGITS), 32) >> (nbits - nbytes * 8)
    return value.to_bytes(nbytes, "big")


def check_id_length(value: bytes, size: int, what: str) -> bytes:
    """Return ``value`` if it is an id of ``size`` bytes, for writers of binary objects.

    Raises
    ------
    ValueError
        If it has another length; ``what`` names the id in the message.
    """
    if len(value) != size:
        raise ValueError(f"{what} must be {size} bytes, got {len(value)}")
    return value


# Fresh ids come from a buffer of operating-system randomness, refilled a block at a time. A
# chunk write needs one id, and ``os.urandom`` lets go of the interpreter lock for its system
# call: under a write load (zarr encoding on other threads) taking the lock back cost the event
# loop 0.2 to 0.5 ms a chunk. The bytes are the same kernel randomness, handed out once each; a
# forked child drops what it inherited, so parent and child never hand out the same bytes.
_RANDOM_BLOCK = 4096
_random_lock = threading.Lock()
_random_buffer = b""
_random_offset = 0


def _random_bytes(n: int) -> bytes:
    """``n`` random bytes (``n`` at most ``_RANDOM_BLOCK``) from the buffer."""
    global _random_buffer, _random_offset
    with _random_lock:
        start = _random_offset
        end = start + n
        if end > len(_random_buffer):
            _random_buffer = os.urandom(_RANDOM_BLOCK)
            start, end = 0, n
        _random_offset = end
        return _random_buffer[start:end]


def _forget_random_bytes() -> None:
    global _random_buffer, _random_offset, _random_lock
    _random_buffer, _random_offset = b"", 0
    _random_lock = threading.Lock()  # it may have been held by another thread at the fork


os.register_at_fork(after_in_child=_forget_random_bytes)


def new_snapshot_id() -> bytes:
    """Return a fresh random 12-byte snapshot id."""
    return _random_bytes(12)


def new_manifest_id() -> bytes:
    """Return a fresh random 12-byte manifest id."""
    return _random_bytes(12)


def new_chunk_id() -> bytes:
    """Return a fresh random 12-byte chunk id."""
    return _random_bytes(12)


def new_node_id() -> bytes:
    """Return a fresh random 8-byte node id."""
    return _random_bytes(8)
