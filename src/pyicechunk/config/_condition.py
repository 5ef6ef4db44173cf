"""The condition algebra shared by manifest preloading and manifest splitting.

Both families of conditions (:class:`ManifestPreloadCondition` and
:class:`ManifestSplitCondition`) match arrays by path or name and combine with ``or``/``and``.
A family is a public class declared with ``family=True``; its variants are nested in it and
subclass both it and the shared variant here (``_Combination`` for ``Or``/``And``,
``_Pattern`` for ``PathMatches``/``NameMatches``). What differs between the families (their
hashing, further variants) stays in the family's own module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Self, cast

from ._checks import _instance, _sequence, _str
from ._variant import _Variant, _Wrapper


class _Condition(_Variant):
    """Base of the condition families: the constructors and operators they share."""

    # The family's public class; combinations accept only conditions of their own family.
    _FAMILY: ClassVar[type[_Condition]]
    Or: ClassVar[type[_Combination]]
    And: ClassVar[type[_Combination]]
    PathMatches: ClassVar[type[_Pattern]]
    NameMatches: ClassVar[type[_Pattern]]

    def __init_subclass__(cls, *, family: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if family:
            cls._FAMILY = cls

    @classmethod
    def or_conditions(cls, conditions: Sequence[Self]) -> Self:
        """Match if any of ``conditions`` matches; ``a | b`` is the short form for two.

        Parameters
        ----------
        conditions
            The alternatives, each of this class.

        Returns
        -------
        ManifestPreloadCondition or ManifestSplitCondition
            An ``Or`` of the conditions.
        """
        return cast(Self, cls._FAMILY.Or(conditions))

    @classmethod
    def and_conditions(cls, conditions: Sequence[Self]) -> Self:
        """Match if every one of ``conditions`` matches; ``a & b`` is the short form for two.

        Parameters
        ----------
        conditions
            The requirements, all of them conditions of this class.

        Returns
        -------
        ManifestPreloadCondition or ManifestSplitCondition
            An ``And`` of the conditions.
        """
        return cast(Self, cls._FAMILY.And(conditions))

    def __and__(self, other: Self) -> Self:
        return self.and_conditions([self, self._operand(other)])

    def __or__(self, other: Self) -> Self:
        return self.or_conditions([self, self._operand(other)])

    def _operand(self, other: object) -> Self:
        return cast(Self, _instance("other", other, self._FAMILY))

    @classmethod
    def path_matches(cls, regex: str) -> Self:
        """Match arrays by their absolute path.

        Parameters
        ----------
        regex
            A regular expression, tested against the array's absolute path (``/group/array``).

        Returns
        -------
        ManifestPreloadCondition or ManifestSplitCondition
            A ``PathMatches`` condition.
        """
        return cast(Self, cls._FAMILY.PathMatches(regex))

    @classmethod
    def name_matches(cls, regex: str) -> Self:
        """Match arrays whose name, the last component of the path, matches ``regex``.

        Parameters
        ----------
        regex
            A regular expression, tested against names such as ``array`` in ``/group/array``.

        Returns
        -------
        ManifestPreloadCondition or ManifestSplitCondition
            A ``NameMatches`` condition.
        """
        return cast(Self, cls._FAMILY.NameMatches(regex))


class _Combination(_Wrapper, _Condition):
    """``Or`` and ``And``: a list of conditions of the same family, as ``_0``."""

    _0: list[Any]

    def __init__(self, _0: Sequence[_Condition]) -> None:
        self._0 = [_instance("conditions", c, self._FAMILY) for c in _sequence("conditions", _0)]


class _Pattern(_Condition):
    """``PathMatches`` and ``NameMatches``: a regular expression, as ``regex``."""

    __match_args__ = ("regex",)

    def __init__(self, regex: str) -> None:
        self.regex = _str("regex", regex)

    def _payload(self) -> tuple[Any, ...]:
        return (self.regex,)
