"""Commit-property values (``Snapshot.metadata``): the JSON value the reference would see,
encoded as MessagePack in spec 1 (FORMAT-V1 §4.6) or as a FlexBuffer in spec 2 (FORMAT-V2 §6).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pyicechunk.format.header import SPEC_V1
from pyicechunk.format.snapshot.layout import layout

_I64_MIN = -(2**63)
_U64_MAX = 2**64 - 1


def _json_value(value: Any, where: str) -> Any:
    # Mirrors how the reference turns Python values into serde_json values: NaN and infinities
    # become null, integers beyond u64/i64 become floats, tuples become lists.
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if _I64_MIN <= value <= _U64_MAX else float(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [_json_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(
                    f"commit metadata {where} has a key {key!r} of type {type(key).__name__}; "
                    "keys must be strings"
                )
        return {k: _json_value(value[k], f"{where}[{k!r}]") for k in sorted(value)}
    raise TypeError(
        f"commit metadata {where} is of type {type(value).__name__}, which is not a JSON value; "
        "use str, int, float, bool, None, list or dict"
    )


def encode_metadata_value(value: Any, name: str = "value", spec_version: int = SPEC_V1) -> bytes:
    """Encode one commit-property value: MessagePack in spec 1 (FORMAT-V1 §4.6), a FlexBuffer
    in spec 2 (FORMAT-V2 §6), of the JSON value the reference would see.

    Dictionary keys are sorted recursively, which makes the bytes identical to the reference's.

    Parameters
    ----------
    value
        A JSON-compatible value: str, int, float, bool, None, list, tuple or dict with str keys.
    name
        The property name, used in error messages.
    spec_version
        The layout of the snapshot the value goes into.

    Returns
    -------
    bytes
        The encoded value.

    Raises
    ------
    TypeError
        If the value (or something nested in it) is not JSON-compatible.
    """
    json_value = _json_value(value, repr(name))
    return layout(spec_version).encode_value(json_value, name)


def decode_metadata_value(data: bytes, spec_version: int = SPEC_V1) -> Any:
    """Decode one commit-property value written by :func:`encode_metadata_value`.

    Raises
    ------
    IcechunkError
        If the bytes are not a single value in the version's encoding.
    """
    return layout(spec_version).decode_value(data)
