"""Frozen value classes that cost no more to define than a plain class.

pgkeel describes what a database must hold (``Trigger``, ``Policy``...), the settings it runs
with and the rules it reports as small immutable value objects. A ``@dataclass(frozen=True)``
compiles six methods from source text when its class is defined (``exec``: 0.45-0.6 ms a
class on Python 3.11 to 3.13, about 2.5M instructions), and the modules that every ``alembic``
command of a project loads defined fifteen dataclasses: on a 57-table schema their import cost
more than all of the plugin's own work in a run (docs/performance.md, 'A real schema').

A ``Value`` subclass shares one implementation of those methods instead. Its fields are its
annotations, read once when the class is defined; an instance is built, compared, hashed,
printed and copied with a change (``replace``) as a frozen dataclass's would be, and refuses
assignment with ``dataclasses.FrozenInstanceError``. Type checkers read a subclass as a frozen
dataclass (``dataclass_transform``). Records that are built up step by step stay plain classes,
and modules that load only for a command of their own (the doctor, the test plugin, the
cluster helpers) keep ``dataclasses``, whose ``asdict`` and ``fields`` they use.
"""

from __future__ import annotations

import inspect
from dataclasses import FrozenInstanceError
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast, dataclass_transform

if TYPE_CHECKING:
    from collections.abc import Callable

_T = TypeVar("_T")
_V = TypeVar("_V", bound="Value")
_NO_DEFAULT: Any = object()


class _Factory:
    """A default made anew for each instance (``field(default_factory=...)``)."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], object]) -> None:
        self.make = make


def field(*, default_factory: Callable[[], _T]) -> _T:
    """A field whose default ``default_factory()`` makes for each instance (a mutable default)."""
    return cast("_T", _Factory(default_factory))


def _is_class_variable(annotation: object) -> bool:
    """Whether an annotation (a string under postponed evaluation) declares a ``ClassVar``."""
    if isinstance(annotation, str):
        return annotation.startswith(("ClassVar", "typing.ClassVar"))
    return getattr(annotation, "__origin__", annotation) is ClassVar


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
class Value:
    """Base of an immutable value: fields from its annotations, equal when type and fields are.

    Fields without a default come first, as in a dataclass; positional and keyword arguments
    follow the order of the annotations (a subclass's fields after its base's).
    """

    __slots__ = ()
    _value_fields: ClassVar[tuple[str, ...]] = ()
    _value_defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:  # noqa: ANN401  # passed on unchanged
        """Read the new class's fields and defaults from its own annotations.

        Under postponed evaluation (every module of pgkeel) they are a dict of strings in the
        class's namespace, read as they are: ``inspect.get_annotations`` would copy it and the
        namespace first, on each class of each module imported by every command.
        """
        super().__init_subclass__(**kwargs)
        namespace = cls.__dict__
        annotations = namespace.get("__annotations__")
        if annotations is None:  # none, or lazily evaluated ones (Python 3.14, no __future__)
            annotations = inspect.get_annotations(cls)
        own = [name for name, kind in annotations.items() if not _is_class_variable(kind)]
        inherited = cls._value_fields
        defaults = dict(cls._value_defaults)
        for name in own:
            if name in namespace:
                default = defaults[name] = namespace[name]
                if isinstance(default, _Factory):
                    delattr(cls, name)
            elif defaults:
                message = f"{cls.__qualname__}: field {name!r} without a default follows one with"
                raise TypeError(message)
        cls._value_fields = (*inherited, *[name for name in own if name not in inherited])
        cls._value_defaults = defaults

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401  # the fields' types
        names = self._value_fields
        if len(args) > len(names):
            message = f"takes {len(names)} positional arguments but {len(args)} were given"
            raise TypeError(f"{type(self).__qualname__}() {message}")
        values = dict(zip(names, args, strict=False))
        for name, value in kwargs.items():
            if name in values or name not in names:
                raise TypeError(f"{type(self).__qualname__}() got {_unexpected(name, values)}")
            values[name] = value
        if len(values) < len(names):
            self._fill_defaults(values)
        object.__setattr__(self, "__dict__", values)

    def _fill_defaults(self, values: dict[str, Any]) -> None:
        """Add the default of each field ``values`` lacks; a field with none is an error."""
        defaults = self._value_defaults
        for name in self._value_fields:
            if name in values:
                continue
            default = defaults.get(name, _NO_DEFAULT)
            if default is _NO_DEFAULT:
                message = f"missing required argument: {name!r}"
                raise TypeError(f"{type(self).__qualname__}() {message}")
            values[name] = default.make() if isinstance(default, _Factory) else default

    def _field_values(self) -> tuple[Any, ...]:
        values = self.__dict__
        return tuple([values[name] for name in self._value_fields])

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._field_values() == other._field_values()

    def __hash__(self) -> int:
        return hash(self._field_values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self._named_values())
        return f"{type(self).__qualname__}({shown})"

    def _named_values(self) -> list[tuple[str, Any]]:
        return [(name, self.__dict__[name]) for name in self._value_fields]

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")


def _unexpected(name: str, given: dict[str, Any]) -> str:
    if name in given:
        return f"multiple values for argument {name!r}"
    return f"an unexpected keyword argument {name!r}"


def replace(value: _V, /, **changes: Any) -> _V:  # noqa: ANN401  # the fields' types
    """A copy of ``value`` with ``changes`` (``dataclasses.replace`` for a ``Value``)."""
    return type(value)(**(dict(value._named_values()) | changes))
