"""The on-disk format versions: :class:`SpecVersion`, as icechunk 2 names them.

A repository's format version decides how its mutable state is stored (spec 1: ``refs/`` and
``config.yaml``; spec 2: the ``repo`` object) and which layout new objects get. The reference's
``SpecVersion`` is a native enum with two members that compare with ints; this class behaves the
same way (it is not constructible, compares with ints and with itself, and is unhashable), and
additionally pickles, because a pickled repository carries its version.
"""

from __future__ import annotations

from typing import Any, ClassVar, NoReturn

__all__ = ["SpecVersion", "parse_spec_version", "spec_version_member"]


class SpecVersion:
    """An Icechunk on-disk format version: ``SpecVersion.v1`` or ``SpecVersion.v2``.

    ``int(v)`` is the version number; members compare with each other and with ints.
    """

    v1: ClassVar[SpecVersion]
    v2: ClassVar[SpecVersion]
    __slots__ = ("_value",)
    __hash__ = None  # type: ignore[assignment]
    _value: int

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise TypeError("cannot create 'SpecVersion' instances")

    @classmethod
    def _member(cls, value: int) -> SpecVersion:
        member = object.__new__(cls)
        object.__setattr__(member, "_value", value)
        return member

    @staticmethod
    def current() -> SpecVersion:
        """The version new repositories get by default."""
        return SpecVersion.v2

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("SpecVersion members are read-only")

    def __int__(self) -> int:
        return self._value

    __index__ = __int__

    def _other(self, other: object) -> int | None:
        if isinstance(other, SpecVersion):
            return other._value
        if isinstance(other, int) and not isinstance(other, bool):
            return other
        return None

    def __eq__(self, other: object) -> bool:
        value = self._other(other)
        return NotImplemented if value is None else int(self) == value

    def __lt__(self, other: object) -> bool:
        value = self._other(other)
        return NotImplemented if value is None else int(self) < value

    def __le__(self, other: object) -> bool:
        value = self._other(other)
        return NotImplemented if value is None else int(self) <= value

    def __gt__(self, other: object) -> bool:
        value = self._other(other)
        return NotImplemented if value is None else int(self) > value

    def __ge__(self, other: object) -> bool:
        value = self._other(other)
        return NotImplemented if value is None else int(self) >= value

    def __repr__(self) -> str:
        current = " (current)" if self is SpecVersion.current() else ""
        return f"SpecVersion.v{int(self)}{current}"

    __str__ = __repr__

    def __reduce__(self) -> tuple[Any, ...]:
        return (spec_version_member, (int(self),))


SpecVersion.v1 = SpecVersion._member(1)
SpecVersion.v2 = SpecVersion._member(2)
_MEMBERS = {1: SpecVersion.v1, 2: SpecVersion.v2}


def spec_version_member(value: int) -> SpecVersion:
    """The member for a version number (what a pickled member is rebuilt with).

    Raises
    ------
    ValueError
        If there is no such version.
    """
    member = _MEMBERS.get(value)
    if member is None:
        raise ValueError(f"Unsupported version {value}")
    return member


def parse_spec_version(value: object, default: SpecVersion) -> int:
    """The version number a user asked for (a SpecVersion, an int, or None for ``default``).

    Raises
    ------
    ValueError
        For a number that is not a supported version ("Unsupported version 3", as the
        reference says).
    TypeError
        For anything else.
    """
    if value is None:
        return int(default)
    if isinstance(value, SpecVersion):
        return value._value
    if isinstance(value, int) and not isinstance(value, bool):
        return spec_version_member(value)._value
    raise TypeError(f"spec_version must be a SpecVersion or an int, not {type(value).__name__}")
