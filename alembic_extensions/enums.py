"""PostgreSQL ENUM types: created before their tables, dropped after them, values added in place.

Autogenerate compares the native enum types of the models' columns with ``pg_enum``:

- a type the database lacks: ``op.create_enum_type(...)`` before the tables (the columns are
  rendered with ``create_type=False``), so the downgrade drops it after them;
- a type no model uses any more, whose every column this migration drops: dropped after them;
- new values: ``op.add_enum_value(...)`` in an autocommit block (``ALTER TYPE ... ADD VALUE``
  cannot be used in the transaction that adds it), each at its place in the list;
- a removed, renamed or reordered value: refused, with the recipe (PostgreSQL can rename a
  value in place; removing one means moving the rows off it and rebuilding the type).

Every change is an operation, so ``alembic check`` reports value drift too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alembic.operations import MigrateOperation, ops
from psycopg import sql
from sqlalchemy import ARRAY, Enum, TypeDecorator

from alembic_extensions.errors import UnsafeMigrationError
from alembic_extensions.rules import Violation
from pgkeel import rules
from pgkeel._values import Value
from pgkeel.dbobjects import qualified

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from alembic.operations import Operations
    from sqlalchemy import Column, Table
    from sqlalchemy.types import TypeEngine

    from alembic_extensions.catalog import Row
    from alembic_extensions.ops import NoOp

EnumKey = tuple[str | None, str]


class EnumType(Value):
    """A native enum type: its schema (``None``: the default one), name and values in order."""

    name: str
    values: tuple[str, ...]
    schema: str | None = None

    @property
    def key(self) -> EnumKey:
        """``(schema, name)``."""
        return (self.schema, self.name)


class EnumTypeOp(MigrateOperation):
    """An operation on one enum type."""

    verb = ""

    def __init__(self, target: EnumType) -> None:
        self.target = target

    def to_diff_tuple(self) -> tuple[Any, ...]:
        """``("add_enum", name, values)`` and the like, as ``alembic check`` reports it."""
        return (f"{self.verb}_enum", self.target.name, self.target.values)

    @classmethod
    def enum_type(
        cls,
        operations: Operations,
        name: str,
        values: Sequence[str],
        *,
        schema: str | None = None,
    ) -> None:
        """``CREATE TYPE name AS ENUM (values)`` or ``DROP TYPE name`` (values kept to reverse)."""
        operations.invoke(cls(EnumType(name, tuple(values), schema)))


class CreateEnumOp(EnumTypeOp):
    """``CREATE TYPE ... AS ENUM``."""

    verb = "add"

    def reverse(self) -> DropEnumOp:
        """Dropping the type."""
        return DropEnumOp(self.target)

    def statement(self) -> sql.Composed:
        """The ``CREATE TYPE`` statement."""
        values = sql.SQL(", ").join(sql.Literal(value) for value in self.target.values)
        name = qualified(self.target.schema, self.target.name)
        return sql.SQL("CREATE TYPE {} AS ENUM ({})").format(name, values)


class DropEnumOp(EnumTypeOp):
    """``DROP TYPE``."""

    verb = "remove"

    def reverse(self) -> CreateEnumOp:
        """Creating the type again, with its values."""
        return CreateEnumOp(self.target)

    def statement(self) -> sql.Composed:
        """The ``DROP TYPE`` statement."""
        return sql.SQL("DROP TYPE {}").format(qualified(self.target.schema, self.target.name))


class AddEnumValueOp(MigrateOperation):
    """``ALTER TYPE ... ADD VALUE IF NOT EXISTS`` (run in an autocommit block).

    PostgreSQL cannot take a value out of an enum type, so the downgrade keeps it; the upgrade
    adds it ``IF NOT EXISTS``, so upgrade, downgrade, upgrade works.
    """

    def __init__(  # the operation's public signature
        self,
        name: str,
        value: str,
        *,
        before: str | None = None,
        after: str | None = None,
        schema: str | None = None,
    ) -> None:
        self.name = name
        self.value = value
        self.before = before
        self.after = after
        self.schema = schema

    def reverse(self) -> NoOp:
        """Nothing: PostgreSQL cannot drop an enum value (see the class)."""
        from alembic_extensions.ops import NoOp  # noqa: PLC0415  # loaded when an op is built

        return NoOp()

    def to_diff_tuple(self) -> tuple[Any, ...]:
        """``("add_enum_value", type, value)``."""
        return ("add_enum_value", self.name, self.value)

    @classmethod
    def add_enum_value(  # noqa: PLR0913  # the operation's public signature
        cls,
        operations: Operations,
        name: str,
        value: str,
        *,
        before: str | None = None,
        after: str | None = None,
        schema: str | None = None,
    ) -> None:
        """Add ``value`` to enum type ``name``, before or after an existing value."""
        operations.invoke(cls(name, value, before=before, after=after, schema=schema))

    def statement(self) -> sql.Composed:
        """The ``ALTER TYPE ... ADD VALUE IF NOT EXISTS`` statement."""
        place: sql.Composable = sql.SQL("")
        if self.before is not None:
            place = sql.SQL(" BEFORE {}").format(sql.Literal(self.before))
        elif self.after is not None:
            place = sql.SQL(" AFTER {}").format(sql.Literal(self.after))
        return sql.SQL("ALTER TYPE {} ADD VALUE IF NOT EXISTS {}{}").format(
            qualified(self.schema, self.name), sql.Literal(self.value), place
        )


_MAY_HOLD_ENUM = (Enum, ARRAY, TypeDecorator)
"""The types a native enum can be or be inside; a tuple, where ``Enum | ARRAY | ...`` would
build a union at every column of every run."""


def native_enum(column: Column[Any]) -> Enum | None:
    """The column's native PostgreSQL enum type, if it has one (arrays of one included)."""
    type_ = column.type
    if not isinstance(type_, _MAY_HOLD_ENUM):  # nearly every column
        return None
    type_ = _item_type(type_)
    type_ = getattr(type_, "impl_instance", type_)
    if isinstance(type_, Enum) and type_.native_enum and type_.name:
        return type_
    return None


_DECORATOR_FALLBACK = TypeDecorator.__getattr__


def _item_type(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    """An array's element type, else ``type_``: ``getattr(type_, "item_type", type_)``.

    A type decorator without an ``item_type`` of its own falls back on its implementation's
    (``TypeDecorator.__getattr__``), which is read here directly: the fallback raises and
    catches an ``AttributeError`` when the implementation has none (a timestamp, JSON), two
    microseconds on each such column of every run.
    """
    if (
        isinstance(type_, TypeDecorator)
        and type(type_).__getattr__ is _DECORATOR_FALLBACK
        and "item_type" not in vars(type_)
        and not hasattr(type(type_), "item_type")
    ):
        return getattr(type_.impl_instance, "item_type", type_)
    return getattr(type_, "item_type", type_)


def model_enums(tables: Iterable[Table], default: str) -> dict[EnumKey, EnumType]:
    """The native enum types the models' columns use, by ``(schema, name)``."""
    found: dict[EnumKey, EnumType] = {}
    for table in tables:
        for column in table.columns:
            if not isinstance(column.type, _MAY_HOLD_ENUM):  # nearly every column: no call
                continue
            type_ = native_enum(column)
            if type_ is None:
                continue
            schema = type_.schema or table.schema
            local = None if schema in (None, default) else schema
            found[(local, str(type_.name))] = EnumType(str(type_.name), tuple(type_.enums), local)
    return found


def _local(schema: str, default: str) -> str | None:
    return None if schema == default else schema


def database_enums(rows: Mapping[str, list[Row]], default: str) -> dict[EnumKey, EnumType]:
    """The enum types of the catalog rows (``catalog.rows_of_run``), with their values in order."""
    return {
        (_local(row["nspname"], default), row["typname"]): EnumType(
            row["typname"], tuple(row["labels"]), _local(row["nspname"], default)
        )
        for row in rows["enum_types"]
    }


def enum_columns(
    rows: Mapping[str, list[Row]], default: str
) -> dict[EnumKey, set[tuple[str | None, str, str]]]:
    """For each enum type of the catalog rows, the ``(schema, table, column)`` that use it."""
    users: dict[EnumKey, set[tuple[str | None, str, str]]] = {}
    for row in rows["enum_columns"]:
        local = _local(row["nspname"], default)
        users.setdefault((local, row["typname"]), set()).add(
            (local, row["relname"], row["attname"])
        )
    return users


def _changed_values_violation(old: EnumType, new: EnumType) -> Violation:
    removed = [value for value in old.values if value not in new.values]
    added = [value for value in new.values if value not in old.values]
    name = ".".join(filter(None, (old.schema, old.name)))
    if len(removed) == 1 and len(added) == 1:
        recipe = (
            f'if {removed[0]!r} was renamed to {added[0]!r}, write op.execute("ALTER TYPE '
            f"{name} RENAME VALUE '{removed[0]}' TO '{added[0]}'\") in a migration of its own "
            "(instant, no rewrite); "
        )
    else:
        recipe = ""
    return Violation(
        rules.ENUM_VALUES,
        name,
        f"the models change the values of enum type {name} from {list(old.values)} to "
        f"{list(new.values)}: values are removed, renamed or reordered, which PostgreSQL "
        "cannot do by adding values.",
        recipe + "to remove a value: (1) deploy code that no longer writes it; (2) a migration "
        "UPDATEs the rows that hold it to another value, in batches; (3) a migration creates "
        "the new type, changes each column to it (ALTER COLUMN ... TYPE new USING "
        "col::text::new: a table rewrite), and drops the old type; values are only ever "
        "appended, never reordered.",
        "none: write the steps above by hand; once the database has the new values, "
        "autogenerate sees no difference.",
    )


def _additions(old: EnumType, new: EnumType) -> list[AddEnumValueOp] | None:
    """The ``ADD VALUE`` steps from ``old`` to ``new``; ``None`` unless values were only added."""
    kept = [value for value in new.values if value in old.values]
    if kept != list(old.values):
        return None
    additions: list[AddEnumValueOp] = []
    for index, value in enumerate(new.values):
        if value in old.values:
            continue
        following = next((v for v in new.values[index + 1 :] if v in old.values), None)
        previous = new.values[index - 1] if index else None
        additions.append(
            AddEnumValueOp(
                new.name,
                value,
                before=following,
                after=previous if following is None else None,
                schema=new.schema,
            )
        )
    return additions


class EnumPlan:
    """The enum operations of one autogenerate run, gathered as the types are compared."""

    def __init__(self) -> None:
        self.before: list[MigrateOperation] = []
        self.after: list[MigrateOperation] = []
        self.refused: list[Violation] = []


def _dropped_columns(upgrade_ops: ops.UpgradeOps) -> set[tuple[str | None, str, str]]:
    """``(schema, table, column)`` of every column the migration drops (with its table)."""
    gone: set[tuple[str | None, str, str]] = set()
    for op in upgrade_ops.ops:
        if isinstance(op, ops.DropTableOp):
            table = op.to_table()
            gone |= {(op.schema, op.table_name, column.name) for column in table.columns}
        elif isinstance(op, ops.ModifyTableOps):
            gone |= {
                (op.schema, op.table_name, item.column_name)
                for item in op.ops
                if isinstance(item, ops.DropColumnOp)
            }
    return gone


def plan_enums(
    models: dict[EnumKey, EnumType],
    database: dict[EnumKey, EnumType],
    users: dict[EnumKey, set[tuple[str | None, str, str]]],
    upgrade_ops: ops.UpgradeOps,
) -> EnumPlan:
    """Compare the models' enum types with the database's."""
    plan = EnumPlan()
    additions: list[MigrateOperation] = []
    for key, wanted in sorted(models.items(), key=lambda item: str(item[0])):
        existing = database.get(key)
        if existing is None:
            plan.before.append(CreateEnumOp(wanted))
        elif existing.values != wanted.values:
            added = _additions(existing, wanted)
            if added is None:
                plan.refused.append(_changed_values_violation(existing, wanted))
            else:
                additions.extend(added)
    if additions:
        from alembic_extensions.ops import AutocommitBlockOp  # noqa: PLC0415  # loaded when an op is built

        plan.before.insert(0, AutocommitBlockOp(additions))
    gone = _dropped_columns(upgrade_ops)
    for key, existing in sorted(database.items(), key=lambda item: str(item[0])):
        used_by = users.get(key, set())
        if key not in models and used_by and used_by <= gone:
            plan.after.append(DropEnumOp(existing))
    return plan


def apply_enum_plan(upgrade_ops: ops.UpgradeOps, plan: EnumPlan) -> None:
    """Put the plan's operations around the others, or stop with the refusals."""
    if plan.refused:
        raise UnsafeMigrationError(plan.refused)
    upgrade_ops.ops[:0] = plan.before
    upgrade_ops.ops.extend(plan.after)
