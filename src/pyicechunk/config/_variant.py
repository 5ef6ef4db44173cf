"""Variants: union-like configuration classes, one nested subclass per variant.

The reference exposes Rust enums as a base class whose variants are nested subclasses
(``ObjectStoreConfig.S3``, ``ManifestSplitCondition.AnyArray``); these compare by variant and
payload and support ``match`` through ``__match_args__``.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pyicechunk._repr import qualified

from ._formatting import _fmt

# The reference's static constructors for the variants whose name is not the snake-cased
# variant name.
_CONSTRUCTORS = {"Or": "or_conditions", "And": "and_conditions"}


def _constructor_name(variant: str) -> str:
    return _CONSTRUCTORS.get(variant) or re.sub(r"(?<!^)(?=[A-Z])", "_", variant).lower()


def _argument(value: object) -> str:
    if isinstance(value, str):
        return _fmt(value)
    return repr(value)  # numbers, None, lists of conditions (their own reprs)


class _Variant:
    """Base of the variant families; a variant's payload is what equality compares.

    Defining ``__eq__`` makes the variants unhashable unless a family defines ``__hash__``.
    """

    __match_args__: ClassVar[tuple[str, ...]] = ()

    def _payload(self) -> tuple[Any, ...]:
        return ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Variant):
            return NotImplemented
        return type(self) is type(other) and self._payload() == other._payload()

    def __repr__(self) -> str:
        # icechunk 2.x shows a variant as the call of its family's static constructor that
        # builds it (``icechunk.config.ManifestSplitCondition.path_matches("a")``); families
        # whose reference reprs differ override this.
        family, _, variant = type(self).__qualname__.rpartition(".")
        args = ", ".join(_argument(p) for p in self._payload())
        return f"{qualified(family)}.{_constructor_name(variant)}({args})"


class _TupleLike(_Variant):
    """Indexing and ``len`` over the payload, as pyo3 gives tuple-like variants."""

    def __len__(self) -> int:
        return len(self._payload())

    def __getitem__(self, index: int) -> object:
        return self._payload()[index]


class _Wrapper(_TupleLike):
    """A variant holding one value, exposed as ``_0`` like pyo3's tuple variants."""

    __match_args__ = ("_0",)
    _0: Any

    def _payload(self) -> tuple[Any, ...]:
        return (self._0,)


def _nest(outer: type, variants: dict[str, type]) -> None:
    """Install each variant as ``outer.<name>``, under that name."""
    for name, inner in variants.items():
        # Nested names make pickle and reprs find the variants as ``Outer.Variant``.
        inner.__name__ = name
        inner.__qualname__ = f"{outer.__qualname__}.{name}"
        setattr(outer, name, inner)
