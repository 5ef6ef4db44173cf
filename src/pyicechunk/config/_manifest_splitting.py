"""Manifest splitting: how the chunk references of an array spread over several manifests.

A rule pairs a :class:`ManifestSplitCondition` (which arrays) with split sizes per dimension,
each dimension chosen by a :class:`ManifestSplitDimCondition`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ._checks import U32_MAX, _instance, _pair, _sequence, _str, _uint
from ._condition import _Combination, _Condition, _Pattern
from ._record import _field, _Record
from ._variant import _nest, _TupleLike, _Wrapper


class ManifestSplitCondition(_Condition, family=True):
    """Which arrays a manifest-splitting rule applies to. Hashable, compared by value.

    The variant classes are ``Or``, ``And``, ``PathMatches``, ``NameMatches`` and ``AnyArray``.
    """

    AnyArray: ClassVar[type[_SplitAnyArray]]

    def __hash__(self) -> int:
        payload = tuple(tuple(p) if isinstance(p, list) else p for p in self._payload())
        return hash((type(self).__name__, payload))


class _SplitOr(_Combination, ManifestSplitCondition):
    pass


class _SplitAnd(_SplitOr):
    pass


class _SplitPathMatches(_Pattern, ManifestSplitCondition):
    pass


class _SplitNameMatches(_SplitPathMatches):
    pass


class _SplitAnyArray(ManifestSplitCondition):
    def __len__(self) -> int:
        return 0


_nest(
    ManifestSplitCondition,
    {
        "Or": _SplitOr,
        "And": _SplitAnd,
        "PathMatches": _SplitPathMatches,
        "NameMatches": _SplitNameMatches,
        "AnyArray": _SplitAnyArray,
    },
)


class ManifestSplitDimCondition(_TupleLike):
    """Which dimension of an array a split size applies to: ``Axis(i)``, ``DimensionName(regex)``
    or ``Any()`` (every dimension not matched by an earlier rule)."""

    Axis: ClassVar[type[_DimAxis]]
    DimensionName: ClassVar[type[_DimName]]
    Any: ClassVar[type[_DimAny]]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._payload()))


class _DimAxis(_Wrapper, ManifestSplitDimCondition):
    _0: int

    def __init__(self, axis: int) -> None:
        self._0 = _uint("_0", axis, 64)


class _DimName(_Wrapper, ManifestSplitDimCondition):
    _0: str

    def __init__(self, regex: str) -> None:
        self._0 = _str("_0", regex)


class _DimAny(ManifestSplitDimCondition):
    pass


_nest(ManifestSplitDimCondition, {"Axis": _DimAxis, "DimensionName": _DimName, "Any": _DimAny})


SplitSizes = list[tuple[ManifestSplitCondition, list[tuple[ManifestSplitDimCondition, int]]]]


def _split_sizes(name: str, value: object) -> SplitSizes | None:
    if value is None:
        return None
    result: SplitSizes = []
    for entry in _sequence(name, value):
        cond, dims = _pair(name, entry)
        dim_list = []
        for dim_entry in _sequence(name, dims):
            dim, size = _pair(name, dim_entry)
            dim_list.append(
                (
                    _instance(name, dim, ManifestSplitDimCondition),
                    _uint(name, size, 32),
                )
            )
        result.append((_instance(name, cond, ManifestSplitCondition), dim_list))
    return result


def _default_split_sizes() -> SplitSizes:
    return [(_SplitPathMatches(".*"), [(_DimAny(), U32_MAX)])]


class ManifestSplittingConfig(_Record):
    """How the chunk references of an array are split over several manifests.

    Parameters
    ----------
    split_sizes
        A sequence of ``(ManifestSplitCondition, [(ManifestSplitDimCondition, num_chunks), ...])``.
        The first rule whose condition matches an array applies; within it, the first dimension
        condition matching each axis gives that axis's split size.
    """

    split_sizes: SplitSizes | None = _field(
        _split_sizes, default=None, effective_factory=_default_split_sizes, show_effective=False
    )

    # Written out because it accepts any sequences (the field stores them as lists).
    def __init__(self, split_sizes: Sequence[Any] | None = None) -> None:
        self.split_sizes = split_sizes  # type: ignore[assignment]

    @staticmethod
    def from_dict(
        split_sizes: Mapping[ManifestSplitCondition, Mapping[ManifestSplitDimCondition, int]],
    ) -> ManifestSplittingConfig:
        """Build a config from ``{condition: {dim_condition: num_chunks}}``, in insertion order.

        Parameters
        ----------
        split_sizes
            The rules.

        Returns
        -------
        ManifestSplittingConfig
        """
        return ManifestSplittingConfig([(k, list(v.items())) for k, v in split_sizes.items()])

    def to_dict(
        self,
    ) -> dict[ManifestSplitCondition, dict[ManifestSplitDimCondition, int]]:
        """Return the rules as ``{condition: {dim_condition: num_chunks}}``.

        Returns
        -------
        dict
        """
        return {cond: dict(dims) for cond, dims in self.split_sizes or []}
