"""Repository status and feature flags of spec-2 repositories, as icechunk 2.x presents them.

:class:`RepoStatus` says whether a repository accepts changes (:class:`RepoAvailability`),
since when and why; :class:`FeatureFlag` describes one switch that turns an operation off for
the whole repository. Both are views of what the ``repo`` object stores
(:mod:`pyicechunk.format.repo_info`); the functions at the end convert between the two.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

from pyicechunk._time import datetime_to_micros, micros_to_datetime, now_micros
from pyicechunk.config import rust_debug_str
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format import repo_info as stored

__all__ = [
    "FeatureFlag",
    "RepoAvailability",
    "RepoStatus",
    "feature_flag_id",
    "feature_flags_of",
    "not_an_instance",
    "py_datetime",
    "rust_datetime",
    "rust_option_str",
    "status_from_stored",
    "status_to_stored",
]


class RepoAvailability(enum.IntEnum):
    """Whether a repository accepts changes: ``online`` (0) or ``read_only`` (1)."""

    online = 0
    read_only = 1

    def __repr__(self) -> str:
        return f"RepoAvailability.{self.name}"

    __str__ = __repr__

    @property
    def rust_name(self) -> str:
        """The value's name inside the reference's reprs (``Online``, ``ReadOnly``)."""
        return "Online" if self is RepoAvailability.online else "ReadOnly"


def not_an_instance(value: Any, expected: str) -> TypeError:
    """The reference's error for an argument of the wrong type."""
    return TypeError(f"'{type(value).__name__}' object is not an instance of '{expected}'")


def _utc_micros(when: dt.datetime) -> int:
    """A status time as stored; like the reference, only UTC datetimes are accepted."""
    micros = datetime_to_micros(when, "set_at")
    if when.utcoffset() != dt.timedelta(0):
        raise ValueError("expected datetime.timezone.utc")
    return micros


def py_datetime(when: dt.datetime) -> str:
    """The reference's rendering of a datetime inside a repr block."""
    fields = ",".join(
        str(v)
        for v in (
            when.year,
            when.month,
            when.day,
            when.hour,
            when.minute,
            when.second,
            when.microsecond,
        )
    )
    return f"datetime.datetime({fields}, tzinfo=datetime.timezone.utc)"


def rust_datetime(micros: int) -> str:
    """A stored time as Rust's chrono prints it in debug output (3, 6 or no fraction digits)."""
    when = micros_to_datetime(micros)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if when.microsecond % 1000 == 0 and when.microsecond:
        text += f".{when.microsecond // 1000:03d}"
    elif when.microsecond:
        text += f".{when.microsecond:06d}"
    return text + "Z"


def rust_option_str(text: str | None) -> str:
    """An optional string as Rust's debug output shows it (``Some("...")`` or ``None``)."""
    return "None" if text is None else f"Some({rust_debug_str(text)})"


@dataclass(frozen=True, slots=True, init=False)
class RepoStatus:
    """The status of a repository: availability, when it was set and why.

    Parameters
    ----------
    availability
        ``RepoAvailability.online`` or ``RepoAvailability.read_only``.
    set_at
        When the status was set, a UTC datetime; now when None.
    limited_availability_reason
        Why the repository is not fully available, for the people it turns away.

    Raises
    ------
    TypeError
        For an argument of the wrong type, or a naive ``set_at``.
    ValueError
        For a ``set_at`` in a time zone other than UTC (as the reference).
    """

    availability: RepoAvailability
    set_at: dt.datetime
    limited_availability_reason: str | None

    def __init__(
        self,
        availability: RepoAvailability,
        set_at: dt.datetime | None = None,
        limited_availability_reason: str | None = None,
    ) -> None:
        if not isinstance(availability, RepoAvailability):
            raise not_an_instance(availability, "RepoAvailability")
        if limited_availability_reason is not None and not isinstance(
            limited_availability_reason, str
        ):
            raise not_an_instance(limited_availability_reason, "str")
        micros = now_micros() if set_at is None else _utc_micros(set_at)
        object.__setattr__(self, "availability", availability)
        object.__setattr__(self, "set_at", micros_to_datetime(micros))
        object.__setattr__(self, "limited_availability_reason", limited_availability_reason)

    def debug_text(self) -> str:
        """The one-line form the reference uses inside an ops-log entry's repr."""
        micros = datetime_to_micros(self.set_at, "set_at")
        return (
            f"RepoStatus(availability={self.availability.rust_name}, "
            f"set_at={rust_datetime(micros)}, "
            f"limited_availability_reason={rust_option_str(self.limited_availability_reason)})"
        )

    def __repr__(self) -> str:
        return (
            "<icechunk.repository.RepoStatus>\n"
            f"availability: {self.availability.rust_name}\n"
            f"set_at: {py_datetime(self.set_at)}\n"
            f"limited_availability_reason: {self.limited_availability_reason}\n"
        )

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class FeatureFlag:
    """A repository-wide switch for one operation (read-only; see ``Repository.feature_flags``).

    Parameters
    ----------
    id
        The flag's number, as stored.
    name
        Its name (``"move_node"``, ``"create_tag"``, ``"delete_tag"``).
    default_enabled
        Whether the operation is allowed when the flag was never set.
    setting
        True or False once set explicitly, None otherwise.
    """

    id: int
    name: str
    default_enabled: bool
    setting: bool | None

    @property
    def enabled(self) -> bool:
        """Whether the operation is allowed: the setting if there is one, else the default."""
        return self.default_enabled if self.setting is None else self.setting

    def __repr__(self) -> str:
        return (
            "<icechunk.config.FeatureFlag>\n"
            f"id: {self.id}\nname: {self.name}\ndefault_enabled: {self.default_enabled}\n"
            f"setting: {self.setting}\nenabled: {self.enabled}\n"
        )

    __str__ = __repr__


# -- conversions from and to the stored form ---------------------------------------------------


def status_from_stored(status: stored.RepoStatus) -> RepoStatus:
    """The public view of a stored status (any stored value but read-only reads as online,
    as 2.3.0 treats it)."""
    availability = RepoAvailability.online if status.is_online else RepoAvailability.read_only
    return RepoStatus(
        availability, micros_to_datetime(status.set_at), status.limited_availability_reason
    )


def status_to_stored(status: RepoStatus) -> stored.RepoStatus:
    """The stored form of a status."""
    return stored.RepoStatus(
        int(status.availability),
        datetime_to_micros(status.set_at, "set_at"),
        status.limited_availability_reason,
    )


def feature_flag_id(name: str) -> int:
    """The id of the flag called ``name``.

    Raises
    ------
    IcechunkError
        For a name no flag has (kind ``invalid-feature-flag``).
    """
    for flag in stored.FeatureFlag:
        if flag.name.lower() == name:
            return int(flag)
    raise IcechunkError(f"invalid feature flag name: {name}", kind="invalid-feature-flag")


def feature_flags_of(info: stored.RepoInfo) -> list[FeatureFlag]:
    """Every known flag with its state in ``info``, ordered by name."""
    enabled = set(info.enabled_feature_flags or ())
    disabled = set(info.disabled_feature_flags or ())
    flags = []
    for flag in sorted(stored.FeatureFlag, key=lambda f: f.name):
        setting = True if flag in enabled else False if flag in disabled else None
        flags.append(FeatureFlag(int(flag), flag.name.lower(), True, setting))
    return flags
