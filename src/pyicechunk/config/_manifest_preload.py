"""Manifest preloading: which manifests a session loads as soon as it opens."""

from __future__ import annotations

from typing import ClassVar

from ._checks import _opt_instance, _opt_uint, _uint
from ._condition import _Combination, _Condition, _Pattern
from ._record import _field, _Record
from ._variant import _nest


class ManifestPreloadCondition(_Condition, family=True):
    """Which manifests to load when a session opens.

    Build conditions with the static constructors and combine them with ``&`` and ``|``.
    The variant classes are ``Or``, ``And``, ``PathMatches``, ``NameMatches``, ``NumRefs``,
    ``True`` and ``False``.
    """

    NumRefs: ClassVar[type[_PreNumRefs]]

    __hash__ = None  # type: ignore[assignment]

    @staticmethod
    def num_refs(from_refs: int | None, to_refs: int | None) -> ManifestPreloadCondition:
        """Match manifests with ``from_refs <= refs < to_refs`` chunk references.

        Parameters
        ----------
        from_refs
            Inclusive lower bound, or None for unbounded.
        to_refs
            Exclusive upper bound, or None for unbounded.

        Returns
        -------
        ManifestPreloadCondition
        """
        return _PreNumRefs(from_refs, to_refs)

    @staticmethod
    def true() -> ManifestPreloadCondition:
        """Match every manifest.

        Returns
        -------
        ManifestPreloadCondition
        """
        return _PreTrue()

    @staticmethod
    def false() -> ManifestPreloadCondition:
        """Match no manifest.

        Returns
        -------
        ManifestPreloadCondition
        """
        return _PreFalse()


class _PreOr(_Combination, ManifestPreloadCondition):
    pass


class _PreAnd(_PreOr):
    pass


class _PrePathMatches(_Pattern, ManifestPreloadCondition):
    pass


class _PreNameMatches(_PrePathMatches):
    pass


class _PreNumRefs(ManifestPreloadCondition):
    __match_args__ = ("from", "to")

    def __init__(self, from_: int | None, to: int | None) -> None:
        self._from = None if from_ is None else _uint("from", from_, 32)
        self.to = None if to is None else _uint("to", to, 32)

    def _payload(self) -> tuple[object, ...]:
        return (self._from, self.to)


# ``from`` is a keyword, so the attribute can only be installed (and read) with getattr.
setattr(_PreNumRefs, "from", property(lambda self: self._from))


class _PreTrue(ManifestPreloadCondition):
    pass


class _PreFalse(ManifestPreloadCondition):
    pass


_nest(
    ManifestPreloadCondition,
    {
        "Or": _PreOr,
        "And": _PreAnd,
        "PathMatches": _PrePathMatches,
        "NameMatches": _PreNameMatches,
        "NumRefs": _PreNumRefs,
        "True": _PreTrue,
        "False": _PreFalse,
    },
)


def _default_preload_condition() -> ManifestPreloadCondition:
    # Coordinate-variable names, after cf-xarray's criteria, as the reference uses them.
    names = [
        r"^\bt\b$|^(time|min|hour|day|week|month|year)[0-9]*$",
        r"^(z|nav_lev|gdep|lv_|[o]*lev|bottom_top|sigma|h(ei)?ght|altitude|depth|isobaric|pres|isotherm)[a-z_]*[0-9]*$",
        r"^(y|j|nlat|rlat|nj)$",
        r"^y?(nav_lat|lat|gphi)[a-z0-9]*$",
        r"^x?(nav_lon|lon|glam)[a-z0-9]*$",
        r"^(x|i|nlon|rlon|ni)$",
    ]
    # The reference's bound is "<= 1000", which is "< 1001" in the Python API's terms.
    return _PreAnd([_PreOr([_PreNameMatches(n) for n in names]), _PreNumRefs(None, 1001)])


class ManifestPreloadConfig(_Record):
    """Which manifests a session loads eagerly.

    Parameters
    ----------
    max_total_refs
        Stop preloading after this many chunk references; effective default 10_000.
    preload_if
        The condition; the effective default preloads small manifests of coordinate arrays.
    max_arrays_to_scan
        Look at no more than this many arrays for manifests to preload; effective default 50.
    """

    max_total_refs: int | None = _field(_opt_uint(32), default=None, effective=10_000)
    preload_if: ManifestPreloadCondition | None = _field(
        _opt_instance(ManifestPreloadCondition),
        default=None,
        effective_factory=_default_preload_condition,
        show_effective=False,
    )
    max_arrays_to_scan: int | None = _field(_opt_uint(32), default=None, effective=50)


def effective_preload(
    config: ManifestPreloadConfig | None,
) -> tuple[int, int, ManifestPreloadCondition]:
    """``(max_total_refs, max_arrays_to_scan, preload_if)`` of ``config``, defaults filled in."""
    resolved = (config or ManifestPreloadConfig())._resolved()
    return resolved["max_total_refs"], resolved["max_arrays_to_scan"], resolved["preload_if"]
