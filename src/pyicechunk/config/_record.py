"""Records: configuration classes made of named, validated fields.

A record class declares each field once, as a class attribute built with :func:`_field`, in the
order of its constructor's parameters. That table is the single source for the constructor
(its signature, defaults and argument errors are Python's own), validation on assignment,
equality, the repr, merging, the effective defaults and pickling (fields live in the instance
``__dict__`` as ``_<name>``, in table order). Adding a field to a record is one line in its
class; the ``config.yaml`` codec spells out its keys separately.
"""

from __future__ import annotations

import copy
import enum
import inspect
from collections.abc import Callable
from typing import Any, ClassVar, Generic, Self, TypeVar, cast, dataclass_transform, overload

from ._formatting import _fmt

T = TypeVar("T")


class _NoDefault(enum.Enum):
    TOKEN = 0


_NO_DEFAULT = _NoDefault.TOKEN


class _Field(Generic[T]):
    """One field of a record, validated by ``check`` on every assignment.

    Parameters
    ----------
    check
        Validates and converts a value; called with the field's name and the value.
    default
        The constructor's default; without one the parameter is required.
    init
        Whether the constructor takes the field; if not, it stores ``default``.
    repr
        Whether the record's repr shows the field.
    nested
        Merge the value field by field (it is a record itself) instead of replacing it.
    effective, effective_factory
        The value the library uses while the field is unset (``None``), or a function that
        makes it.
    """

    def __init__(
        self,
        check: Callable[[str, object], T],
        *,
        default: T | _NoDefault,
        init: bool,
        repr: bool,
        nested: bool,
        effective: object,
        effective_factory: Callable[[], object] | None,
    ) -> None:
        self._check = check
        self.default = default
        self.init = init
        self.repr = repr
        self.nested = nested
        self._effective = effective
        self._effective_factory = effective_factory
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> _Field[T]: ...
    @overload
    def __get__(self, obj: object, owner: type) -> T: ...
    def __get__(self, obj: object | None, owner: type) -> _Field[T] | T:
        if obj is None:
            return self
        return cast(T, self.raw(obj))

    def __set__(self, obj: object, value: object) -> None:
        self.store(obj, value)

    def store(self, obj: object, value: object) -> None:
        """Validate ``value`` and store it on ``obj`` (also what the constructor does)."""
        obj.__dict__["_" + self.name] = self._check(self.name, value)

    def raw(self, obj: object) -> Any:
        """The stored value, never copied."""
        return obj.__dict__["_" + self.name]

    def effective(self, obj: object) -> Any:
        """A copy of the stored value, or the effective default where it is unset."""
        value = self.raw(obj)
        if value is not None:
            return copy.deepcopy(value)
        return self._effective_factory() if self._effective_factory else self._effective

    def merged(self, mine: Any, theirs: Any) -> Any:
        """This field of two records merged: ``theirs`` wins where it is set."""
        if self.nested and mine is not None and theirs is not None:
            return mine._merge(theirs)
        return copy.deepcopy(theirs if theirs is not None else mine)


class _CopiedField(_Field[T]):
    """A field read as a deep copy and never assigned: the record's methods edit it."""

    def __get__(self, obj: object | None, owner: type) -> Any:
        if obj is None:
            return self
        return copy.deepcopy(self.raw(obj))

    def __set__(self, obj: object, value: object) -> None:
        # The same words as for a property without a setter, which this field replaces.
        raise AttributeError(
            f"property '{self.name}' of '{type(obj).__name__}' object has no setter"
        )

    def __delete__(self, obj: object) -> None:
        raise AttributeError(
            f"property '{self.name}' of '{type(obj).__name__}' object has no deleter"
        )


def _field(
    check: Callable[[str, object], T],
    *,
    default: T | _NoDefault = _NO_DEFAULT,
    init: bool = True,
    repr: bool = True,
    nested: bool = False,
    effective: object = None,
    effective_factory: Callable[[], object] | None = None,
    copied: bool = False,
) -> T:
    """Declare a field of a record; see :class:`_Field` (``copied``: see :class:`_CopiedField`).

    Typed as the field's value so that type checkers see a plain attribute and a constructor
    parameter of that type.
    """
    kind = _CopiedField if copied else _Field
    field = kind(
        check,
        default=default,
        init=init,
        repr=repr,
        nested=nested,
        effective=effective,
        effective_factory=effective_factory,
    )
    return cast(T, field)


def _constructor(cls: type[_Record]) -> Callable[..., None]:
    # Built from source text, like dataclasses' own, so that the signature, the defaults and
    # the errors for missing or extra arguments are those of a hand-written __init__.
    namespace: dict[str, Any] = {}
    params, body = [], []
    for i, field in enumerate(cls._TABLE):
        namespace[f"_f{i}"] = field
        if not field.init:
            body.append(f"    _f{i}.store(self, _f{i}.default)")
            continue
        no_default = field.default is _NO_DEFAULT
        params.append(field.name if no_default else f"{field.name}=_f{i}.default")
        body.append(f"    _f{i}.store(self, {field.name})")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body or ["    pass"])
    exec(source, namespace)
    init = cast(Callable[..., None], namespace["__init__"])
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    annotations = inspect.get_annotations(cls)
    init.__annotations__ = {f.name: annotations[f.name] for f in cls._TABLE if f.init}
    init.__annotations__["return"] = "None"
    return init


class _DefaultConstructor:
    """``default()``, for the records whose reference class has it."""

    @classmethod
    def default(cls) -> Self:
        """Return a config with every field unset.

        Returns
        -------
        Self
            A new config, equal to one built without arguments.
        """
        return cls()


@dataclass_transform(field_specifiers=(_field,))
class _Record:
    """Base of the records: the table of fields drives everything listed in the module doc.

    Records compare by value and are unhashable, like the reference's mutable classes.
    """

    _TABLE: ClassVar[tuple[_Field[Any], ...]] = ()
    # The field names in order; the config.yaml codec writes some records by this tuple.
    _FIELDS: ClassVar[tuple[str, ...]] = ()
    __hash__ = None  # type: ignore[assignment]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._TABLE = tuple(v for v in vars(cls).values() if isinstance(v, _Field))
        cls._FIELDS = tuple(field.name for field in cls._TABLE)
        if "__init__" not in vars(cls):
            cls.__init__ = _constructor(cls)  # type: ignore[method-assign]

    def _values(self) -> tuple[object, ...]:
        return tuple(field.raw(self) for field in self._TABLE)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    @staticmethod
    def _repr_value(value: object) -> str:
        return _fmt(value)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{field.name}={self._repr_value(field.raw(self))}"
            for field in self._TABLE
            if field.repr
        )
        return f"{type(self).__name__}({shown})"

    def _merge(self, other: Self) -> Self:
        """A new record: ``other``'s fields where they are set, these elsewhere."""
        merged = [field.merged(field.raw(self), field.raw(other)) for field in self._TABLE]
        return type(self)(*merged)

    def _resolved(self) -> dict[str, Any]:
        """Every field by name (copied), with its effective default where it is unset."""
        return {field.name: field.effective(self) for field in self._TABLE}
