"""Variants: union-like configuration classes, one nested subclass per variant.

The reference exposes Rust enums as a base class whose variants are nested subclasses
(``ObjectStoreConfig.S3``, ``ManifestSplitCondition.AnyArray``); these compare by variant and
payload and support ``match`` through ``__match_args__``.
"""

from __future__ import annotations

from typing import Any, ClassVar


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
        # ``Family.Variant(payload...)``; families whose reference reprs differ override this.
        args = ", ".join(repr(p) for p in self._payload())
        return f"{type(self).__qualname__}({args})"


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
