"""Values and errors as JSON, the same way in the test process and in the oracle process.

Snippet parameters and results cross a process boundary to reach icechunk 2.3.0. So that a
scenario gives comparable values whichever implementation ran it, the in-process side sends its
values through the same encoding. JSON covers ``None``, ``bool``, ``int``, ``float`` (``NaN``
and infinities included), ``str``, lists and ``str``-keyed dicts; everything else is an object
tagged ``{"$t": <kind>, ...}``:

- ``tuple``, ``set``, ``frozenset``, dicts with other keys (``"dict"``, as a list of pairs);
- ``bytes``, ``bytearray`` (``memoryview`` arrives as ``bytes``), base64;
- numpy arrays (dtype descr, shape, raw bytes; object and variable-width string arrays element
  by element) and numpy scalars (their dtype kept);
- ``datetime`` (time zone kept as its UTC offset), ``date``, ``time``, ``timedelta``;
- ``pathlib`` paths (arrive as :class:`pathlib.Path`), :class:`enum.Enum` members (arrive as
  :class:`EnumMember`).

Anything else raises :class:`NotTransferable`: a snippet returns plain data, not live objects.
Stdlib and numpy only: this module runs under both interpreters.
"""

from __future__ import annotations

import base64
import datetime
import enum
import math
import pathlib
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

TAG = "$t"


class NotTransferable(TypeError):
    """A value that has no faithful encoding (a live object, say) was to cross the boundary."""


@dataclass(frozen=True)
class EnumMember:
    """An :class:`enum.Enum` member from the other side: its class name, name and value."""

    type: str
    name: str
    value: Any


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))


def _dtype_spec(dtype: np.dtype[Any]) -> Any:
    return np.lib.format.dtype_to_descr(dtype)


def _descr(spec: Any) -> Any:
    """A dtype descr whose tuples JSON turned into lists: ``[name, format, shape?]`` fields."""
    if isinstance(spec, str):
        return spec
    fields = []
    for name, fmt, *shape in spec:
        title_and_name = tuple(name) if isinstance(name, list) else name
        fields.append((title_and_name, _descr(fmt), *(tuple(s) for s in shape)))
    return fields


def _dtype_from(spec: Any) -> np.dtype[Any]:
    return np.lib.format.descr_to_dtype(_descr(spec))


def _elementwise(dtype: np.dtype[Any]) -> bool:
    """Arrays whose elements are Python objects or variable-width strings, not fixed bytes."""
    return dtype.hasobject or dtype.kind == "T"


def encode(value: Any, where: str = "value") -> Any:
    """The JSON-able form of ``value`` (see the module docstring).

    Raises
    ------
    NotTransferable
        For a value of a type without an encoding; ``where`` names its place in the structure.
    """
    if value is None:
        return value
    # Enums and numpy scalars before the primitives: IntEnum is an int, np.float64 a float.
    if isinstance(value, enum.Enum):
        return {
            TAG: "enum",
            "type": type(value).__qualname__,
            "name": value.name,
            "value": encode(value.value, f"{where}.value"),
        }
    if isinstance(value, EnumMember):  # one that came from the other side, going back
        return {TAG: "enum", "type": value.type, "name": value.name, "value": encode(value.value)}
    if isinstance(value, np.generic):
        return {
            TAG: "npscalar",
            "dtype": _dtype_spec(value.dtype),
            "b64": _b64(np.asarray(value).tobytes()),
        }
    if isinstance(value, bool | int | str | float):
        return value
    if isinstance(value, list):
        return [encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and TAG not in value:
            return {k: encode(v, f"{where}[{k!r}]") for k, v in value.items()}
        return {
            TAG: "dict",
            "items": [
                [encode(k, f"{where} key"), encode(v, f"{where}[{k!r}]")] for k, v in value.items()
            ],
        }
    if isinstance(value, tuple):
        return {TAG: "tuple", "items": [encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, set | frozenset):
        items = [encode(v, f"{where} item") for v in value]
        items.sort(key=repr)  # sets have no order; a fixed one makes encodings comparable
        return {TAG: type(value).__name__, "items": items}
    if isinstance(value, bytes | memoryview):
        return {TAG: "bytes", "b64": _b64(bytes(value))}
    if isinstance(value, bytearray):
        return {TAG: "bytearray", "b64": _b64(bytes(value))}
    if isinstance(value, np.ndarray):
        if _elementwise(value.dtype):
            return {
                TAG: "ndarray",
                "dtype": "T" if value.dtype.kind == "T" else "O",
                "shape": list(value.shape),
                "items": [encode(v, f"{where} element") for v in value.ravel().tolist()],
            }
        return {
            TAG: "ndarray",
            "dtype": _dtype_spec(value.dtype),
            "shape": list(value.shape),
            "b64": _b64(np.ascontiguousarray(value).tobytes()),
        }
    if isinstance(value, datetime.datetime):
        return {TAG: "datetime", "iso": value.isoformat()}
    if isinstance(value, datetime.date):
        return {TAG: "date", "iso": value.isoformat()}
    if isinstance(value, datetime.time):
        return {TAG: "time", "iso": value.isoformat()}
    if isinstance(value, datetime.timedelta):
        return {TAG: "timedelta", "dsu": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, pathlib.PurePath):
        return {TAG: "path", "str": str(value)}
    raise NotTransferable(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which cannot be sent "
        "between implementations; return plain data from the snippet (str(), list(), a dict "
        "of the fields the test compares, numpy arrays, ...)"
    )


def decode(data: Any) -> Any:
    """The value :func:`encode` made ``data`` from."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    tag = data.get(TAG)
    if tag is None:
        return {k: decode(v) for k, v in data.items()}
    if tag == "tuple":
        return tuple(decode(v) for v in data["items"])
    if tag == "set":
        return {decode(v) for v in data["items"]}
    if tag == "frozenset":
        return frozenset(decode(v) for v in data["items"])
    if tag == "dict":
        return {decode(k): decode(v) for k, v in data["items"]}
    if tag == "bytes":
        return _unb64(data["b64"])
    if tag == "bytearray":
        return bytearray(_unb64(data["b64"]))
    if tag == "ndarray":
        shape = tuple(data["shape"])
        if "items" in data:
            items = [decode(v) for v in data["items"]]
            if data["dtype"] == "O":
                out = np.empty(len(items), dtype=object)
                out[:] = items
                return out.reshape(shape)
            return np.array(items, dtype=np.dtypes.StringDType()).reshape(shape)
        dtype = _dtype_from(data["dtype"])
        return np.frombuffer(_unb64(data["b64"]), dtype=dtype).reshape(shape).copy()
    if tag == "npscalar":
        return np.frombuffer(_unb64(data["b64"]), dtype=_dtype_from(data["dtype"]))[0]
    if tag == "datetime":
        return datetime.datetime.fromisoformat(data["iso"])
    if tag == "date":
        return datetime.date.fromisoformat(data["iso"])
    if tag == "time":
        return datetime.time.fromisoformat(data["iso"])
    if tag == "timedelta":
        days, seconds, micros = data["dsu"]
        return datetime.timedelta(days=days, seconds=seconds, microseconds=micros)
    if tag == "path":
        return pathlib.Path(data["str"])
    if tag == "enum":
        return EnumMember(data["type"], data["name"], decode(data["value"]))
    raise ValueError(f"unknown tag {tag!r} in an oracle message")


def equal(a: Any, b: Any) -> bool:
    """Deep equality of decoded values: arrays by dtype, shape and content, NaN equal to NaN."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if _elementwise(a.dtype):
            pairs = zip(a.ravel().tolist(), b.ravel().tolist(), strict=True)
            return all(equal(x, y) for x, y in pairs)
        # Bytes, not values: NaN payloads and -0.0 count, and every dtype compares.
        return bool(np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes())
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    return bool(a == b)


SNIPPET_FILE = "<snippet>"


def _from_the_snippet(exc: BaseException) -> str:
    """``exc``'s traceback without the harness's frames above the snippet's first one."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != SNIPPET_FILE:
        tb = tb.tb_next
    if tb is None:  # raised before the snippet ran (while decoding, say): keep it all
        tb = exc.__traceback__
    return "".join(traceback.format_exception(type(exc), exc, tb))


def error_record(exc: BaseException) -> dict[str, Any]:
    """What the other side needs to rebuild ``exc`` as an ``ImplError``: names, kind, texts."""
    cls = type(exc)
    kind = getattr(exc, "kind", None)
    if isinstance(kind, enum.Enum):
        kind = kind.value
    message = getattr(exc, "message", None)
    return {
        "type": cls.__name__,
        "module": cls.__module__,
        "mro": [c.__name__ for c in cls.__mro__],
        "kind": None if kind is None else str(kind),
        "message": message if isinstance(message, str) else str(exc),
        "text": str(exc),
        "notes": [str(n) for n in getattr(exc, "__notes__", ())],
        "traceback": _from_the_snippet(exc),
    }
