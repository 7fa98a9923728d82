"""``Base``: the declarative base whose metadata carries pgkeel's naming convention and type map.

Every mapped subclass gets a plural snake_case ``__tablename__`` (unless it sets one), its
docstring as the table comment, and checks at class definition: names written by the developer
fit 63 bytes, no timestamp is naive, no two mixins define the same column. Then each mixin in the
class's MRO that defines ``_pgkeel_setup_table(cls, table)`` adds what its table needs (a trigger,
a policy, a partial index), and ``_pgkeel_mapper_args(cls)`` contributes mapper arguments.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

from sqlalchemy import Column, DateTime, MetaData, Table
from sqlalchemy.orm import DeclarativeBase, MappedColumn, declared_attr, has_inherited_table

from pgkeel.errors import ModelDefinitionError
from pgkeel.naming import NAMING_CONVENTION, check_table_names, column_allows, table_name_for
from pgkeel.types import TYPE_ANNOTATION_MAP

NAIVE_TIMESTAMP_RULE = "timestamptz"


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


def _column_definers(cls: type) -> dict[str, list[type]]:
    """For each attribute name, the classes above ``cls`` that define it as a column."""
    definers: dict[str, list[type]] = {}
    for klass in cls.__mro__[1:]:
        for name, value in vars(klass).items():
            if isinstance(value, MappedColumn | Column):
                definers.setdefault(name, []).append(klass)
    return definers


def _most_derived(classes: list[type]) -> list[type]:
    """The classes of ``classes`` that no other one of them subclasses (an override is fine)."""
    return [k for k in classes if not any(o is not k and issubclass(o, k) for o in classes)]


def _check_column_collisions(cls: type) -> None:
    """Refuse two unrelated mixins that define the same column: Python would keep one silently."""
    for name, classes in _column_definers(cls).items():
        if name in cls.__dict__:
            continue
        unrelated = [
            k for k in classes if not any(o is not k and issubclass(o, k) for o in classes)
        ]
        if len(unrelated) > 1:
            owners = " and ".join(klass.__name__ for klass in unrelated)
            raise ModelDefinitionError(
                f"{cls.__name__}: column {name!r} is defined by both {owners}; only "
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


def _document(cls: type, table: Table) -> None:
    """The class docstring becomes the table comment, unless the table has one."""
    doc = cls.__dict__.get("__doc__")
    if table.comment is None and doc:
        table.comment = inspect.cleandoc(doc)


class PgkeelDeclarative:
    """pgkeel's declarative behaviour, for ``Base`` and for any other declarative base.

    ``class OtherBase(PgkeelDeclarative, DeclarativeBase)`` with its own ``metadata =
    new_metadata()`` gives a second, independent set of tables (another database, or an
    isolated set of models in tests) with every pgkeel rule and mixin working on it.
    """

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
        """Check the class, map it, then let each mixin complete its table."""
        _check_column_collisions(cls)
        _merge_user_mapper_args(cls)
        super().__init_subclass__(**kw)
        table = _own_table(cls)
        if table is None:
            return
        check_table_names(table)
        _check_timestamps(table)
        _document(cls, table)
        for setup in _mixin_hooks(cls, "_pgkeel_setup_table"):
            setup.__func__(cls, table)


def new_metadata() -> MetaData:
    """A ``MetaData`` with pgkeel's naming convention."""
    return MetaData(naming_convention=NAMING_CONVENTION)


class Base(PgkeelDeclarative, DeclarativeBase):
    """Declarative base of every pgkeel model: one naming convention, one type map."""

    metadata = new_metadata()
    type_annotation_map: ClassVar[dict[Any, Any]] = TYPE_ANNOTATION_MAP
