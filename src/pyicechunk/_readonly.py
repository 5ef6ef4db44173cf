"""Read-only public attributes over private state.

The reference's value and handle classes (a conflict, a virtual chunk reference, the ancestry
graph, the repository) show fields that callers read but never assign. One line declares such a
field: ``offset = ReadOnly[int]("_offset", "Where the chunk starts in the object.")``. Read on
an instance it is the private attribute; assigning or deleting it fails with the words Python
uses for a property without a setter; read on the class it is the descriptor, whose
``__doc__`` documents the field (``help()`` shows it).
"""

from __future__ import annotations

from typing import Any, Generic, NoReturn, TypeVar, overload

__all__ = ["ReadOnly"]

T = TypeVar("T")


class ReadOnly(Generic[T]):
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
        self._name = attribute

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: type) -> ReadOnly[T]: ...
    @overload
    def __get__(self, obj: object, owner: type) -> T: ...
    def __get__(self, obj: object | None, owner: type) -> ReadOnly[T] | T:
        if obj is None:
            return self
        value: T = getattr(obj, self._attribute)
        return value

    def __set__(self, obj: object, value: Any) -> NoReturn:
        raise AttributeError(self._refusal(obj, "setter"))

    def __delete__(self, obj: object) -> NoReturn:
        raise AttributeError(self._refusal(obj, "deleter"))

    def _refusal(self, obj: object, what: str) -> str:
        return f"property {self._name!r} of {type(obj).__name__!r} object has no {what}"
