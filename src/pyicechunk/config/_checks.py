"""Argument checks of the configuration classes, failing with the messages pyo3 gives.

The reference's classes are Rust structs exposed through pyo3, so a wrong argument fails while
pyo3 converts it; these checks raise the same exception types with the same words.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

T = TypeVar("T")

U32_MAX = 2**32 - 1

_RANGE_ERROR = "out of range integral type conversion attempted"


def _type_name(value: object) -> str:
    return type(value).__name__


def _integer(name: str, value: object) -> int:
    if not isinstance(value, int):
        raise TypeError(
            f"argument '{name}': '{_type_name(value)}' object cannot be interpreted as an integer"
        )
    return int(value)


def _uint(name: str, value: object, bits: int, *, nonzero: bool = False) -> int:
    number = _integer(name, value)
    if bits == 64:
        # pyo3 converts u64 through the C API, whose messages differ from the narrower types'.
        if number < 0:
            raise OverflowError("can't convert negative int to unsigned")
        if number >= 2**64:
            raise OverflowError("int too big to convert")
    elif not 0 <= number < 2**bits:
        raise OverflowError(_RANGE_ERROR)
    if nonzero and number == 0:
        raise ValueError("invalid zero value")
    return number


def _opt_uint(bits: int, *, nonzero: bool = False) -> Callable[[str, object], int | None]:
    def check(name: str, value: object) -> int | None:
        return None if value is None else _uint(name, value, bits, nonzero=nonzero)

    return check


def _opt_int(bits: int) -> Callable[[str, object], int | None]:
    """A signed integer of ``bits`` bits, or None."""

    def check(name: str, value: object) -> int | None:
        if value is None:
            return None
        number = _integer(name, value)
        if not -(2 ** (bits - 1)) <= number < 2 ** (bits - 1):
            raise OverflowError(_RANGE_ERROR)
        return number

    return check


def _instance(name: str, value: object, cls: type[T], cls_name: str | None = None) -> T:
    if not isinstance(value, cls):
        shown = cls_name or cls.__name__
        raise TypeError(
            f"argument '{name}': '{_type_name(value)}' object cannot be cast as '{shown}'"
        )
    return value


def _opt_instance(cls: type[T], cls_name: str | None = None) -> Callable[[str, object], T | None]:
    def check(name: str, value: object) -> T | None:
        return None if value is None else _instance(name, value, cls, cls_name)

    return check


def _bool(name: str, value: object) -> bool:
    return _instance(name, value, bool)


def _str(name: str, value: object) -> str:
    return _instance(name, value, str)


_opt_bool = _opt_instance(bool)
_opt_str = _opt_instance(str)


def _str_map(name: str, value: object) -> dict[str, str] | None:
    if value is None:
        return None
    mapping = _instance(name, value, Mapping, "dict")  # type: ignore[type-abstract]
    return {_str(name, k): _str(name, v) for k, v in mapping.items()}


def _sequence(name: str, value: object) -> list[object]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise TypeError(f"argument '{name}': '{_type_name(value)}' object cannot be cast as 'list'")
    return list(value)


def _pair(name: str, value: object) -> tuple[object, object]:
    items = _sequence(name, value)
    if len(items) != 2:
        raise TypeError(f"argument '{name}': expected a pair, got {len(items)} items")
    return items[0], items[1]
