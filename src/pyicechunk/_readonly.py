"""Typed descriptors, and read-only public attributes over private state.

:class:`Descriptor` is the base of the package's typed descriptors (this module's
:class:`ReadOnly` and the config records' fields): named after the class attribute it is
assigned to, read on the class it is the descriptor itself, read on an instance it is
:meth:`Descriptor.raw` typed as its value.

The reference's value and handle classes (a conflict, a virtual chunk reference, the ancestry
graph, the repository) show fields that callers read but never assign. One line declares such a
field: ``offset = ReadOnly[int]("_offset", "Where the chunk starts in the object.")``. Read on
an instance it is the private attribute; assigning or deleting it fails with the words Python
uses for a property without a setter; the descriptor's ``__doc__`` documents the field
(``help()`` shows it).
"""

from __future__ import annotations

from typing import Any, Generic, NoReturn, TypeVar, cast, overload

__all__ = ["Descriptor", "ReadOnly", "no_setter"]

T = TypeVar("T")


def no_setter(name: str, obj: object, what: str = "setter") -> AttributeError:
    """The error of assigning (``what="deleter"``: deleting) the read-only attribute ``name``,
    in the words Python uses for a property without a setter (deleter)."""
    return AttributeError(f"property {name!r} of {type(obj).__name__!r} object has no {what}")


class Descriptor(Generic[T]):
    """A typed descriptor: itself on the class, :meth:`raw` on an instance."""

    name: str  # the class attribute's name, once assigned in a class body

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> Descriptor[T]: ...
    @overload
    def __get__(self, obj: object, owner: type) -> T: ...
    def __get__(self, obj: object | None, owner: type) -> Descriptor[T] | T:
        if obj is None:
            return self
        return cast(T, self.raw(obj))

    def raw(self, obj: object) -> Any:
        """The value stored on ``obj``, never copied."""
        raise NotImplementedError


class ReadOnly(Descriptor[T]):
    """A public read-only attribute whose value is the private attribute ``attribute``.

    Parameters
    ----------
    attribute
        The name of the private attribute holding the value.
    doc
        The field's documentation.
    """

    def __init__(self, attribute: str, doc: str) -> None:
        self._attribute = attribute
        self.__doc__ = doc
        self.name = attribute

    def raw(self, obj: object) -> Any:
        return getattr(obj, self._attribute)

    def __set__(self, obj: object, value: Any) -> NoReturn:
        raise no_setter(self.name, obj)

    def __delete__(self, obj: object) -> NoReturn:
        raise no_setter(self.name, obj, "deleter")
