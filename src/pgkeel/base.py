"""``Base``: the declarative base whose metadata carries pgkeel's naming convention and type map.

Every mapped subclass gets a plural snake_case ``__tablename__`` (unless it sets one), its
docstring as the table comment, and checks at class definition: names written by the developer
fit 63 bytes, no timestamp is naive, no two mixins define the same column, no two objects get
the same name. Each mixin in the class's MRO that defines ``_pgkeel_setup_table(cls, table)``
adds what its table needs (a trigger, a policy, a partial index), and
``_pgkeel_mapper_args(cls)`` contributes mapper arguments. The own table of a joined-table
subclass gets ``_pgkeel_setup_inherited_table(cls, table, parent)`` instead.
"""

from __future__ import annotations

import inspect
import sys
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import CheckConstraint, Column, DateTime, Enum, MetaData, Table, event
from sqlalchemy.orm import (
    DeclarativeBase,
    DeclarativeBaseNoMeta,
    MappedColumn,
    MapperProperty,
    declared_attr,
    has_inherited_table,
)

from pgkeel import rules
from pgkeel.errors import ModelDefinitionError, NamingError, PgkeelError
from pgkeel.indexes import index_foreign_keys
from pgkeel.naming import (
    NAMING_CONVENTION,
    check_name_collisions,
    check_table_names,
    check_table_opt_outs,
    column_allows,
    snake_case,
    table_name_for,
)
from pgkeel.types import TYPE_ANNOTATION_MAP, json_container_type

if TYPE_CHECKING:
    from sqlalchemy.orm import registry

NAIVE_TIMESTAMP_RULE = rules.TIMESTAMPTZ
_MAPPED_ATTRIBUTES = (MappedColumn, Column, MapperProperty, declared_attr)


def _own_table(cls: type) -> Table | None:
    table = cls.__dict__.get("__table__")
    return table if isinstance(table, Table) else None


def _mixin_hooks(cls: type, hook: str) -> list[Any]:
    """Each class in ``cls``'s MRO that defines ``hook`` itself, base-most first."""
    return [klass.__dict__[hook] for klass in reversed(cls.__mro__) if hook in klass.__dict__]


def pgkeel_mapper_args(cls: type) -> dict[str, Any]:
    """The mapper arguments pgkeel's mixins need for ``cls`` (eager defaults, version column)."""
    args: dict[str, Any] = {}
    for contribute in _mixin_hooks(cls, "_pgkeel_mapper_args"):
        args.update(contribute.__func__(cls))
    return args


def _merge_user_mapper_args(cls: type) -> None:
    """Keep pgkeel's mapper arguments when a model sets its own ``__mapper_args__`` dict."""
    own = cls.__dict__.get("__mapper_args__")
    if isinstance(own, dict):
        user_args = dict(own)

        def merged(klass: type) -> dict[str, Any]:
            return {**pgkeel_mapper_args(klass), **user_args}

        cls.__mapper_args__ = declared_attr.directive(merged)  # type: ignore[attr-defined]


def _where(cls: type) -> str:
    """``module.Class (path/to/file.py)``: where a model is defined, for error messages."""
    path = getattr(sys.modules.get(cls.__module__), "__file__", None)
    location = f" ({path})" if path else ""
    return f"{cls.__module__}.{cls.__qualname__}{location}"


def _attribute_definers(cls: type) -> dict[str, list[type]]:
    """For each mapped attribute name, the classes above ``cls`` that define it."""
    definers: dict[str, list[type]] = {}
    for klass in cls.__mro__[1:]:
        for name, value in vars(klass).items():
            if not name.startswith("__") and isinstance(value, _MAPPED_ATTRIBUTES):
                definers.setdefault(name, []).append(klass)
    return definers


def _most_derived(classes: list[type]) -> list[type]:
    """The classes of ``classes`` that no other one of them subclasses (an override is fine)."""
    return [k for k in classes if not any(o is not k and issubclass(o, k) for o in classes)]


def _check_column_collisions(cls: type) -> None:
    """Refuse two unrelated mixins that define the same column: Python would keep one silently."""
    for name, classes in _attribute_definers(cls).items():
        unrelated = _most_derived(classes)
        if name in cls.__dict__ or len(unrelated) < 2:
            continue
        owners = " and ".join(klass.__name__ for klass in unrelated)
        raise ModelDefinitionError(
            f"{_where(cls)}: column {name!r} is defined by both {owners}; only "
            f"{unrelated[0].__name__}'s would be used, silently. Fix: keep one of these "
            f"mixins, or define {name!r} on {cls.__name__} itself to choose explicitly."
        )


def _check_timestamps(table: Table) -> None:
    """Refuse ``timestamp without time zone`` columns unless the column opts out."""
    for column in table.columns:
        naive = isinstance(column.type, DateTime) and not column.type.timezone
        if naive and not column_allows(column, NAIVE_TIMESTAMP_RULE):
            raise ModelDefinitionError(
                f"Column {table.name}.{column.name} is a timestamp without time zone: its values "
                "change meaning with the server's TimeZone. Fix: annotate it as Mapped[datetime] "
                "with no explicit type (pgkeel maps that to timestamptz) or use "
                f"DateTime(timezone=True); opt out with info=pgkeel.naming.allow("
                f"{NAIVE_TIMESTAMP_RULE!r})."
            )


def _check_unnamed_checks(table: Table) -> None:
    """Refuse CHECK constraints left without a name by a type (``Enum(create_constraint=True)``)."""
    for constraint in table.constraints:
        if isinstance(constraint, CheckConstraint) and not isinstance(constraint.name, str):
            columns = ", ".join(column.name for column in constraint.columns)
            raise NamingError(
                f"Table {table.name!r}: the CHECK constraint a type creates on ({columns}) has "
                "no name; the convention chk_<table>_<name> needs one. Fix: pass name= to the "
                "type, for example Boolean(create_constraint=True, name='is_active')."
            )


def _name_enum_types(table: Table) -> None:
    """Name each enum type SQLAlchemy named after its class (``orderstatus``) in snake_case.

    An explicit ``Enum(..., name=...)`` other than SQLAlchemy's default is kept.
    """
    for column in table.columns:
        type_ = column.type
        enum_class = getattr(type_, "enum_class", None)
        if not isinstance(type_, Enum) or enum_class is None:
            continue
        if type_.name == enum_class.__name__.lower():
            type_.name = snake_case(enum_class.__name__)


def _document(cls: type, table: Table) -> None:
    """The class docstring becomes the table comment, unless the table has one."""
    doc = cls.__dict__.get("__doc__")
    if table.comment is None and doc:
        table.comment = inspect.cleandoc(doc)


def _inherited_table(cls: type) -> Table | None:
    """The table of the nearest mapped base class (joined-table inheritance), if any."""
    return next((t for k in cls.__mro__[1:] if (t := _own_table(k)) is not None), None)


def _setup_hooks(cls: type, parent: Table | None) -> list[tuple[Any, tuple[Table, ...]]]:
    """The mixin hooks that complete ``cls``'s own table, with their extra arguments.

    A joined-table subclass inherits its mixins' columns on the parent's table, which they
    already completed: its own table gets ``_pgkeel_setup_inherited_table`` of each instead
    (row-level security that follows the parent's rows, for example).
    """
    if parent is None:
        return [(hook, ()) for hook in _mixin_hooks(cls, "_pgkeel_setup_table")]
    return [(hook, (parent,)) for hook in _mixin_hooks(cls, "_pgkeel_setup_inherited_table")]


def _complete_table(cls: type, table: Table) -> None:
    """Check the new table, document it, let each mixin add to it, then check its names."""
    _name_enum_types(table)
    check_table_names(table)
    check_table_opt_outs(table)
    _check_timestamps(table)
    _check_unnamed_checks(table)
    _document(cls, table)
    for setup, args in _setup_hooks(cls, _inherited_table(cls)):
        setup.__func__(cls, table, *args)
    check_name_collisions(table)


def _is_declarative_base(cls: type) -> bool:
    return DeclarativeBase in cls.__bases__ or DeclarativeBaseNoMeta in cls.__bases__


def _install_type_resolver(reg: registry) -> None:
    """Map every ``dict[...]``/``list[...]`` annotation to JSONB (SQLAlchemy >= 2.1 event).

    A 2.0 registry has no events at all (no ``dispatch``); there the type map's entries apply.
    """
    if hasattr(getattr(reg, "dispatch", None), "resolve_type_annotation"):
        event.listen(reg, "resolve_type_annotation", json_container_type)


class PgkeelDeclarative:
    """pgkeel's declarative behaviour, for ``Base`` and for any other declarative base.

    ``class OtherBase(PgkeelDeclarative, DeclarativeBase): pass`` gives a second, independent
    set of tables (another database, or an isolated set of models in tests) with its own
    ``MetaData`` carrying the naming convention, pgkeel's type map, and every rule and mixin.
    """

    type_annotation_map: ClassVar[dict[Any, Any]] = TYPE_ANNOTATION_MAP

    @declared_attr.directive
    def __tablename__(cls) -> str | None:  # noqa: N805  # declared_attr receives the class
        """Plural snake case of the class name; ``None`` for single-table inheritance."""
        if has_inherited_table(cls):  # type: ignore[arg-type]
            return None
        return table_name_for(cls.__name__)  # type: ignore[attr-defined]

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805  # declared_attr receives the class
        """What pgkeel's mixins need from the mapper."""
        return pgkeel_mapper_args(cls)  # type: ignore[arg-type]

    def __init_subclass__(cls, **kw: object) -> None:
        """Set up a new base, or check a model, map it, then let each mixin complete its table."""
        is_base = _is_declarative_base(cls)
        if is_base and "metadata" not in cls.__dict__:
            cls.metadata = new_metadata()  # type: ignore[attr-defined]
        _check_column_collisions(cls)
        _merge_user_mapper_args(cls)
        try:
            super().__init_subclass__(**kw)
        except NamingError as exc:
            exc.args = (f"{_where(cls)}: {exc}",)
            raise
        if is_base:
            _install_type_resolver(cls.registry)  # type: ignore[attr-defined]
        table = _own_table(cls)
        if table is None:
            return
        try:
            _complete_table(cls, table)
        except Exception as exc:
            table.metadata.remove(table)  # a refused class leaves no table behind for create_all
            if isinstance(exc, PgkeelError):
                exc.args = (f"{_where(cls)}: {exc}",)
            raise


def new_metadata() -> MetaData:
    """A ``MetaData`` with pgkeel's naming convention; ``create_all`` indexes foreign keys."""
    return index_foreign_keys(MetaData(naming_convention=NAMING_CONVENTION))


class Base(PgkeelDeclarative, DeclarativeBase):
    """Declarative base of every pgkeel model: one naming convention, one type map."""

    metadata = new_metadata()
    type_annotation_map: ClassVar[dict[Any, Any]] = TYPE_ANNOTATION_MAP
