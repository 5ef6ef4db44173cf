"""The base of the package's integer enums."""

from __future__ import annotations

import enum

__all__ = ["NamedIntEnum"]


class NamedIntEnum(enum.IntEnum):
    """An integer enum whose repr and str are ``ClassName.member``, as the reference prints its
    enums (a plain IntEnum's str is the number)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"

    __str__ = __repr__
