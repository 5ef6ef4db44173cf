"""Records: configuration classes made of named, validated fields.

A record class declares each field once, as a class attribute built with :func:`_field`, in the
order of its constructor's parameters. That table is the single source for the constructor
(its signature, defaults and argument errors are Python's own), validation on assignment,
equality, the repr, merging, the effective defaults and pickling (fields live in the instance
``__dict__`` as ``_<name>``, in table order). Adding a field to a record is one line in its
class; the serde schema of the persisted forms (``config.yaml``, the spec-2 config FlexBuffer)
spells out its keys separately, in the reference's order.

A record read from a file may also carry keys this version does not know, written by a newer
writer (``_unknown``): they take no part in equality or the repr, survive copies, pickles and
merges, and are written back when the config is saved, so that saving never drops them.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Self, TypeVar, cast, dataclass_transform

from pyicechunk._readonly import Descriptor, no_setter
from pyicechunk._repr import Block, qualified

from ._formatting import _fmt

T = TypeVar("T")


class _NoDefault(enum.Enum):
    TOKEN = 0


_NO_DEFAULT = _NoDefault.TOKEN


@dataclasses.dataclass(eq=False, repr=False)
class _Field(Descriptor[T]):
    """One field of a record, validated by ``check`` on every assignment.

    Parameters
    ----------
    check
        Validates and converts a value; called with the field's name and the value.
    default
        The constructor's default; without one the parameter is required.
    init
        Whether the constructor takes the field; if not, it stores ``default``.
    kw_only
        Whether the constructor takes the field by keyword only (this and every later field).
    repr
        Whether the record's repr and ``str()`` show the field.
    show_effective
        Whether ``str()`` shows the effective default of the field while it is unset; the
        reference shows None for some (a preload condition, split sizes).
    nested
        Merge the value field by field (it is a record itself) instead of replacing it.
    unset_effective, effective_factory
        The value the library uses while the field is unset (``None``), or a function that
        makes it.
    """

    check: Callable[[str, object], T]
    _: dataclasses.KW_ONLY
    default: T | _NoDefault
    init: bool
    kw_only: bool
    repr: bool
    show_effective: bool
    nested: bool
    unset_effective: object
    effective_factory: Callable[[], object] | None
    name: str = dataclasses.field(default="", init=False)

    def __set__(self, obj: object, value: object) -> None:
        self.store(obj, value)

    def store(self, obj: object, value: object) -> None:
        """Validate ``value`` and store it on ``obj`` (also what the constructor does)."""
        obj.__dict__["_" + self.name] = self.check(self.name, value)

    def raw(self, obj: object) -> Any:
        """The stored value, never copied."""
        return obj.__dict__["_" + self.name]

    def effective(self, obj: object) -> Any:
        """A copy of the stored value, or the effective default where it is unset."""
        value = self.raw(obj)
        if value is not None:
            return copy.deepcopy(value)
        return self.effective_factory() if self.effective_factory else self.unset_effective

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
        raise no_setter(self.name, obj)

    def __delete__(self, obj: object) -> None:
        raise no_setter(self.name, obj, "deleter")


def _field(
    check: Callable[[str, object], T],
    *,
    default: T | _NoDefault = _NO_DEFAULT,
    init: bool = True,
    kw_only: bool = False,
    repr: bool = True,
    show_effective: bool = True,
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
        kw_only=kw_only,
        repr=repr,
        show_effective=show_effective,
        nested=nested,
        unset_effective=effective,
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
        if field.kw_only and "*" not in params:
            params.append("*")
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
    # The field names in order (the serde schema of the persisted forms must cover them all).
    _FIELDS: ClassVar[tuple[str, ...]] = ()
    # The order in which the reference shows the fields, where it is not the constructor's.
    _ORDER: ClassVar[tuple[str, ...]] = ()
    # Keys read from a file that this version does not know, by key, as the codec keeps them;
    # instances that have some hold their own dict.
    _unknown: Mapping[str, Any] = types.MappingProxyType({})
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

    def _shown(self) -> tuple[_Field[Any], ...]:
        """The fields the repr and ``str()`` show, in the reference's display order."""
        shown = {field.name: field for field in self._TABLE if field.repr}
        order = self._ORDER or tuple(shown)
        return tuple(shown[name] for name in order)

    def _repr_at(self, indent: str) -> str:
        """icechunk 2.x's repr: its constructor call, one field a line, nested calls indented."""
        inner = indent + "    "
        lines = "".join(
            f"{inner}{field.name}={repr_at(field.raw(self), inner)},\n" for field in self._shown()
        )
        return f"{qualified(type(self).__name__)}(\n{lines}{indent})"

    def __repr__(self) -> str:
        return self._repr_at("")

    def _repr_block(self) -> Block:
        """icechunk 2.x's ``str()`` of a config: every field, effective defaults marked."""
        fields: list[tuple[str, str | Block]] = []
        for field in self._shown():
            raw = field.raw(self)
            value = raw
            if raw is None and field.show_effective:
                value = field.effective(self)
                if value is None:
                    value = _default_nested(type(self), field.name)
            fields.append((field.name, _shown(value, default=raw is None)))
        return Block(qualified(type(self).__name__), fields)

    def __str__(self) -> str:
        return self._repr_block().text()

    def _repr_html_(self) -> str:
        return self._repr_block().html()

    @classmethod
    def _from_fields(
        cls, values: Mapping[str, object], unknown: Mapping[str, Any] | None = None
    ) -> Self:
        """A record with every field given by name (validated), the rest at their defaults.

        Unlike the constructor this also sets fields the constructor does not take; it is how
        the codecs and merging build records.
        """
        record = cls.__new__(cls)
        for field in cls._TABLE:
            value = values.get(field.name, field.default)
            if value is _NO_DEFAULT:
                raise TypeError(f"{cls.__name__} needs a value for {field.name!r}")
            field.store(record, value)
        if unknown:
            record._unknown = dict(unknown)
        return record

    def _merge(self, other: Self) -> Self:
        """A new record: ``other``'s fields where they are set, these elsewhere."""
        merged = {f.name: f.merged(f.raw(self), f.raw(other)) for f in self._TABLE}
        return self._from_fields(merged, {**self._unknown, **other._unknown})

    def _resolved(self) -> dict[str, Any]:
        """Every field by name (copied), with its effective default where it is unset."""
        return {field.name: field.effective(self) for field in self._TABLE}


# For the persisted-config codecs (pyicechunk.format.config_serde), which build records from a
# file and write them back: the table and the unknown keys without reaching into the class.

R = TypeVar("R", bound=_Record)


def record_fields(cls: type[_Record]) -> tuple[str, ...]:
    """The names of a record class's fields, in the order of its constructor."""
    return cls._FIELDS


def record_from_fields(
    cls: type[R], values: Mapping[str, object], unknown: Mapping[str, Any] | None = None
) -> R:
    """A record of class ``cls`` with the named fields set (validated), the rest at their
    defaults, also fields the constructor does not take, and the ``unknown`` keys of a file."""
    return cls._from_fields(values, unknown)


def record_unknown_keys(record: _Record) -> Mapping[str, Any]:
    """The keys a record was read with that this version does not know (empty for most)."""
    return record._unknown


# Nested settings whose defaults depend on the storage in use: their str() shows None.
_PER_STORAGE = frozenset({("RepositoryConfig", "storage"), ("StorageSettings", "timeouts")})


def _default_nested(cls: type[_Record], name: str) -> _Record | None:
    """The record an unset field of a record type stands for (its own fields unset), if any."""
    if (cls.__name__, name) in _PER_STORAGE:
        return None
    hint = typing.get_type_hints(cls).get(name)
    for arg in typing.get_args(hint):
        if isinstance(arg, type) and issubclass(arg, _Record):
            return arg()
    return None


def _shown(value: object, *, default: bool) -> str | Block:
    """A field's value in a config's ``str()`` block; ``default`` marks an effective default."""
    if value is None:
        return "None"
    block = getattr(value, "_repr_block", None)
    if block is not None:  # records, and the object-store configs of virtual chunk containers
        return cast(Block, block())
    if isinstance(value, Mapping) and value and all(isinstance(v, _Record) for v in value.values()):
        # The virtual chunk containers: one nested block per key.
        return Block(None, [(str(k), v._repr_block()) for k, v in value.items()])
    text = repr_at(value, "")
    return f"{text} (default)" if default else text


# Enums the reference's config reprs name in full; the others show as their bare member name.
_QUALIFIED_ENUMS = frozenset({"ChecksumAlgorithm"})


def repr_at(value: object, indent: str) -> str:
    """A value inside a config's repr, as icechunk 2.x spells it; ``indent`` is the current
    line's, for the nested constructor calls of records."""
    nested = getattr(value, "_repr_at", None)
    if nested is not None:
        return cast(str, nested(indent))
    if isinstance(value, str):
        return _fmt(value)
    if isinstance(value, enum.Enum):
        name = type(value).__name__
        return f"icechunk.{name}.{value.name}" if name in _QUALIFIED_ENUMS else value.name
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        inner = indent + "    "
        items = "".join(
            f"{inner}{repr_at(k, inner)}: {repr_at(v, inner)},\n" for k, v in value.items()
        )
        return f"{{\n{items}{indent}}}"
    return repr(value)
