"""FlexBuffers, the schemaless sibling of flatbuffers (FORMAT-V2 §6).

Spec-2 objects hold commit and repository metadata values and the repository config as
FlexBuffers. This module encodes JSON-like Python values (None, bool, int, float, str, list,
dict with str keys) the way icechunk 2.3 does with the Rust ``flexbuffers`` crate: non-negative
integers as UInt (so the whole u64 range works), negative ones as Int, floats in 4 bytes when
that is exact, maps with their keys sorted, scalars and offsets in the narrowest width that
fits. The §6.1 values come out byte for byte as the reference writes them.

Decoding accepts every encoding a FlexBuffers writer may produce (Int or UInt, typed, fixed
and untyped vectors, indirect scalars, blobs, any widths) and trusts nothing: every offset
is bounds-checked, nesting depth is limited and the work is bounded by the buffer size (shared
sub-vectors cannot blow up exponentially), so a hostile or truncated buffer raises
:class:`~pyicechunk.exceptions.IcechunkError`, never ``IndexError``, ``RecursionError`` or a
hang.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import Any

from pyicechunk.exceptions import IcechunkError

__all__ = ["MAX_DEPTH", "decode_flexbuffer", "encode_flexbuffer"]

MAX_DEPTH = 128
"""Deepest nesting of vectors and maps accepted, when writing and when reading."""

# Type codes (the high six bits of a packed type byte; the low two bits are the width code).
_NULL, _INT, _UINT, _FLOAT, _KEY, _STRING = 0, 1, 2, 3, 4, 5
_INDIRECT_INT, _INDIRECT_UINT, _INDIRECT_FLOAT = 6, 7, 8
_MAP, _VECTOR = 9, 10
_VECTOR_INT, _VECTOR_UINT, _VECTOR_FLOAT, _VECTOR_KEY, _VECTOR_STRING = 11, 12, 13, 14, 15
_BLOB, _BOOL, _VECTOR_BOOL = 25, 26, 36
# VECTOR_INT2 .. VECTOR_FLOAT4: fixed-length typed vectors of 2, 3 or 4 ints, uints or floats.
_FIXED_FIRST, _FIXED_LAST = 16, 24

_U64_MAX = (1 << 64) - 1
_I64_MIN = -(1 << 63)
_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")

# ---------------------------------------------------------------------------------------------
# encoding


def _width_u(u: int) -> int:
    """Width code (0..3 for 1, 2, 4, 8 bytes) of the narrowest unsigned field holding ``u``."""
    if u < 0x100:
        return 0
    if u < 0x10000:
        return 1
    if u < 0x100000000:
        return 2
    return 3


def _width_i(i: int) -> int:
    return _width_u(i << 1 if i >= 0 else ~(i << 1))


class _Value:
    """An entry of the builder's stack: an inline scalar or an offset to an object written."""

    __slots__ = ("inline", "type", "value", "width")

    def __init__(self, inline: bool, type_: int, value: Any, width: int) -> None:
        self.inline = inline
        self.type = type_
        self.value = value  # the scalar, or the object's absolute position
        self.width = width  # the value's own width code

    def elem_width(self, size: int, index: int) -> int:
        """Width code this value needs as element ``index`` of a vector starting at ``size``."""
        if self.inline:
            return self.width
        for code in range(4):
            byte_width = 1 << code
            slot = size + (-size % byte_width) + index * byte_width
            if _width_u(slot - self.value) <= code:
                return code
        raise AssertionError("an offset always fits in 8 bytes")  # pragma: no cover

    def packed_type(self, parent_width: int = 0) -> int:
        # Scalars stored inline take the width of the vector holding them; objects keep theirs.
        width = max(self.width, parent_width) if self.inline else self.width
        return self.type << 2 | width


class _Builder:
    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    def align(self, width: int) -> int:
        byte_width = 1 << width
        self.buf += bytes(-len(self.buf) % byte_width)
        return byte_width

    def write(self, value: _Value, byte_width: int) -> None:
        buf = self.buf
        if not value.inline:
            buf += (len(buf) - value.value).to_bytes(byte_width, "little")
        elif value.type == _FLOAT:
            buf += (_F32 if byte_width == 4 else _F64).pack(value.value)
        elif value.type == _INT:
            buf += value.value.to_bytes(byte_width, "little", signed=True)
        else:  # UINT, BOOL, NULL
            buf += value.value.to_bytes(byte_width, "little")

    def blob(self, data: bytes, type_: int, trailing: bytes) -> _Value:
        width = _width_u(len(data))
        byte_width = self.align(width)
        self.buf += len(data).to_bytes(byte_width, "little")
        position = len(self.buf)
        self.buf += data + trailing
        return _Value(False, type_, position, width)

    def key(self, name: str) -> _Value:
        data = name.encode("utf-8")
        if b"\0" in data:
            raise ValueError(f"map key {name!r} contains a NUL character")
        position = len(self.buf)
        self.buf += data + b"\0"
        return _Value(False, _KEY, position, 0)

    def vector(self, elems: list[_Value], typed: bool, keys: _Value | None = None) -> _Value:
        size = len(self.buf)
        width = _width_u(len(elems))
        prefix = 1
        if keys is not None:
            width = max(width, keys.elem_width(size, 0))
            prefix = 3
        for i, elem in enumerate(elems):
            width = max(width, elem.elem_width(size, i + prefix))
        byte_width = self.align(width)
        if keys is not None:
            self.write(keys, byte_width)
            self.buf += (1 << keys.width).to_bytes(byte_width, "little")
        self.buf += len(elems).to_bytes(byte_width, "little")
        position = len(self.buf)
        for elem in elems:
            self.write(elem, byte_width)
        if not typed:
            self.buf += bytes([elem.packed_type(width) for elem in elems])
        kind = _MAP if keys is not None else (_VECTOR_KEY if typed else _VECTOR)
        return _Value(False, kind, position, width)

    def value(self, value: Any, depth: int) -> _Value:
        if value is None:
            return _Value(True, _NULL, 0, 0)
        if value is True or value is False:
            return _Value(True, _BOOL, int(value), 0)
        if isinstance(value, int):
            if value >= 0:
                if value > _U64_MAX:
                    raise ValueError(f"integer {value} does not fit in 64 bits")
                return _Value(True, _UINT, value, _width_u(value))
            if value < _I64_MIN:
                raise ValueError(f"integer {value} does not fit in 64 bits")
            return _Value(True, _INT, value, _width_i(value))
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"{value} is not a JSON number")
            try:
                exact = _F32.unpack(_F32.pack(value))[0] == value
            except OverflowError:
                exact = False
            return _Value(True, _FLOAT, value, 2 if exact else 3)
        if isinstance(value, str):
            return self.blob(value.encode("utf-8"), _STRING, b"\0")
        if depth >= MAX_DEPTH:
            raise ValueError(f"value nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, list | tuple):
            return self.vector([self.value(v, depth + 1) for v in value], typed=False)
        if isinstance(value, Mapping):
            for name in value:
                if not isinstance(name, str):
                    raise TypeError(f"map key {name!r} is not a string")
            names = sorted(value)
            keys = self.vector([self.key(name) for name in names], typed=True)
            return self.vector([self.value(value[n], depth + 1) for n in names], False, keys)
        raise TypeError(f"{type(value).__name__} is not a JSON value")


def encode_flexbuffer(value: Any) -> bytes:
    """Encode a JSON-like value as a complete FlexBuffer.

    Parameters
    ----------
    value
        None, bool, int (within the u64 / i64 range), finite float, str, list or tuple, or a
        mapping with str keys, nested at most :data:`MAX_DEPTH` levels.

    Returns
    -------
    bytes
        The FlexBuffer: the root value last, then its packed type and its byte width.

    Raises
    ------
    TypeError
        If something in the value is not JSON-like (or a map key is not a string).
    ValueError
        If an integer does not fit in 64 bits, a float is NaN or infinite, a key contains a
        NUL character, or the value is nested too deeply.
    """
    b = _Builder()
    root = b.value(value, 0)
    byte_width = b.align(root.elem_width(len(b.buf), 0))
    b.write(root, byte_width)
    b.buf.append(root.packed_type())
    b.buf.append(byte_width)
    return bytes(b.buf)


# ---------------------------------------------------------------------------------------------
# decoding


class _Reader:
    __slots__ = ("budget", "buf", "size")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.size = len(buf)
        # Each element of an honest buffer owns at least one byte, so visiting more elements
        # than there are bytes means sub-vectors are shared to multiply the work.
        self.budget = len(buf) + 1

    def fail(self, problem: str) -> IcechunkError:
        return IcechunkError(
            f"invalid FlexBuffer ({self.size} bytes): {problem}", kind="deserialization"
        )

    def uint(self, pos: int, width: int) -> int:
        if pos < 0 or pos + width > self.size:
            raise self.fail(f"read of {width} bytes at {pos} is out of bounds")
        return int.from_bytes(self.buf[pos : pos + width], "little")

    def indirect(self, pos: int, width: int) -> int:
        target = pos - self.uint(pos, width)
        if target < 0:
            raise self.fail(f"offset at {pos} points before the buffer")
        return target

    def scalar(self, type_: int, pos: int, width: int) -> Any:
        if width not in (1, 2, 4, 8):
            raise self.fail(f"invalid scalar width {width}")
        if pos < 0 or pos + width > self.size:
            raise self.fail(f"read of {width} bytes at {pos} is out of bounds")
        data = self.buf[pos : pos + width]
        if type_ == _INT:
            return int.from_bytes(data, "little", signed=True)
        if type_ == _FLOAT:
            if width == 4:
                return _F32.unpack(data)[0]
            if width == 8:
                return _F64.unpack(data)[0]
            raise self.fail(f"a float cannot be {width} bytes wide")
        value = int.from_bytes(data, "little")
        return bool(value) if type_ == _BOOL else value

    def text(self, pos: int, length: int) -> str:
        if length < 0 or pos + length > self.size:
            raise self.fail(f"string at {pos} runs past the end of the buffer")
        try:
            return str(self.buf[pos : pos + length], "utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"string at {pos} is not valid UTF-8") from None

    def key(self, pos: int) -> str:
        end = self.buf.find(b"\0", pos)
        if pos < 0 or end < 0:
            raise self.fail(f"key at {pos} is not NUL-terminated")
        return self.text(pos, end - pos)

    def length(self, pos: int, byte_width: int) -> int:
        n = self.uint(pos - byte_width, byte_width)
        self.budget -= n
        if self.budget < 0:
            raise self.fail("it refers to the same data too many times")
        if pos + n * byte_width > self.size:
            raise self.fail(f"vector at {pos} runs past the end of the buffer")
        return n

    def value(self, pos: int, parent_width: int, packed: int, depth: int) -> Any:
        type_ = packed >> 2
        width = 1 << (packed & 3)
        if type_ == _NULL:
            return None
        if type_ in (_INT, _UINT, _FLOAT, _BOOL):
            return self.scalar(type_, pos, parent_width)
        target = self.indirect(pos, parent_width)
        if type_ in (_INDIRECT_INT, _INDIRECT_UINT, _INDIRECT_FLOAT):
            return self.scalar(type_ - _INDIRECT_INT + _INT, target, width)
        if type_ == _KEY:
            return self.key(target)
        if type_ in (_STRING, _BLOB):
            n = self.uint(target - width, width)
            if type_ == _BLOB:
                if target + n > self.size:
                    raise self.fail(f"blob at {target} runs past the end of the buffer")
                return bytes(self.buf[target : target + n])
            return self.text(target, n)
        if depth >= MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH} levels")
        if type_ == _MAP:
            return self.map(target, width, depth + 1)
        if type_ == _VECTOR:
            n = self.length(target, width)
            types = target + n * width
            if types + n > self.size:
                raise self.fail(f"vector at {target} runs past the end of the buffer")
            return [
                self.value(target + i * width, width, self.buf[types + i], depth + 1)
                for i in range(n)
            ]
        return self.typed_vector(type_, target, width)

    def typed_vector(self, type_: int, pos: int, width: int) -> list[Any]:
        if _VECTOR_INT <= type_ <= _VECTOR_STRING or type_ == _VECTOR_BOOL:
            n = self.length(pos, width)
            elem = _BOOL if type_ == _VECTOR_BOOL else type_ - _VECTOR_INT + _INT
        elif _FIXED_FIRST <= type_ <= _FIXED_LAST:
            n = (type_ - _FIXED_FIRST) // 3 + 2
            elem = (type_ - _FIXED_FIRST) % 3 + _INT
            self.budget -= n
            if self.budget < 0 or pos + n * width > self.size:
                raise self.fail(f"vector at {pos} runs past the end of the buffer")
        else:
            raise self.fail(f"unknown value type {type_}")
        if elem == _KEY:
            return [self.key(self.indirect(pos + i * width, width)) for i in range(n)]
        if elem == _STRING:
            # Deprecated typed string vectors: lengths use the vector's width.
            out = []
            for i in range(n):
                target = self.indirect(pos + i * width, width)
                out.append(self.text(target, self.uint(target - width, width)))
            return out
        return [self.scalar(elem, pos + i * width, width) for i in range(n)]

    def map(self, pos: int, width: int, depth: int) -> dict[str, Any]:
        n = self.length(pos, width)
        keys_pos = self.indirect(pos - 3 * width, width)
        keys_width = self.uint(pos - 2 * width, width)
        if keys_width not in (1, 2, 4, 8):
            raise self.fail(f"map at {pos} has keys of invalid width {keys_width}")
        if self.uint(keys_pos - keys_width, keys_width) != n:
            raise self.fail(f"map at {pos} has a different number of keys and values")
        if keys_pos + n * keys_width > self.size:
            raise self.fail(f"keys of the map at {pos} run past the end of the buffer")
        types = pos + n * width
        if types + n > self.size:
            raise self.fail(f"map at {pos} runs past the end of the buffer")
        out: dict[str, Any] = {}
        for i in range(n):
            name = self.key(self.indirect(keys_pos + i * keys_width, keys_width))
            if name in out:
                raise self.fail(f"map at {pos} has the key {name!r} twice")
            out[name] = self.value(pos + i * width, width, self.buf[types + i], depth)
        return out


def decode_flexbuffer(data: bytes | bytearray | memoryview) -> Any:
    """Decode a complete FlexBuffer into Python values.

    Maps become dicts, vectors lists, Int and UInt ints, floats floats, booleans bools, null
    None, strings and keys str, blobs bytes.

    Parameters
    ----------
    data
        The FlexBuffer.

    Returns
    -------
    Any
        The root value.

    Raises
    ------
    IcechunkError
        If the buffer is empty, truncated or otherwise malformed (offsets out of bounds,
        unknown types, invalid UTF-8, duplicate map keys, nesting deeper than
        :data:`MAX_DEPTH`, shared data visited more often than the buffer is long).
    """
    buf = bytes(data)
    reader = _Reader(buf)
    if len(buf) < 3:
        raise reader.fail("too short to hold a root value")
    byte_width = buf[-1]
    if byte_width not in (1, 2, 4, 8):
        raise reader.fail(f"invalid root width {byte_width}")
    return reader.value(len(buf) - 2 - byte_width, byte_width, buf[-2], 0)
