"""Time as the format stores it: microseconds since the Unix epoch, UTC."""

from __future__ import annotations

import datetime as dt
import time

__all__ = ["datetime_to_micros", "micros_to_datetime", "now_micros"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def now_micros() -> int:
    """The current time."""
    return time.time_ns() // 1000


def micros_to_datetime(micros: int) -> dt.datetime:
    """A stored time as a timezone-aware datetime."""
    return _EPOCH + dt.timedelta(microseconds=micros)


def datetime_to_micros(value: dt.datetime, arg: str) -> int:
    """A user's timezone-aware datetime as a stored time.

    Raises
    ------
    TypeError
        If ``value`` (the argument called ``arg``) is not a datetime, or is naive.
    """
    if not isinstance(value, dt.datetime):
        raise TypeError(f"argument '{arg}': expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise TypeError(f"argument '{arg}': expected a datetime with non-None tzinfo")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
