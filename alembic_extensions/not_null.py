"""A column of a table that holds rows made NOT NULL without a scan under an exclusive lock.

``ALTER COLUMN ... SET NOT NULL`` reads the whole table while it holds an ACCESS EXCLUSIVE lock
(no read, no write), unless a valid ``CHECK (column IS NOT NULL)`` already proves it. So the
plugin writes, in one revision that can simply run again after a failure:

1. ``op.backfill(...)`` when ``-x backfill=table.column=<SQL>`` gives the old rows their value;
2. ``op.add_not_null_check(table, column)``: the check ``NOT VALID`` (a brief lock, no scan);
3. ``op.validate_constraint(...)`` in an autocommit block: the scan, under a SHARE UPDATE
   EXCLUSIVE lock that lets reads and writes go on, in a transaction of its own;
4. ``op.set_not_null(table, column)``: ``SET NOT NULL`` (PostgreSQL sees the valid check and
   skips the scan), then the check is dropped.

The check never outlives the revision that adds it, so the catalog between two revisions holds
no ``NOT VALID`` check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alembic.operations import MigrateOperation, ops
from psycopg import sql

from alembic_extensions.backfill import BackfillOp
from alembic_extensions.ops import AutocommitBlockOp, CommentOp, NoOp, ValidateConstraintOp
from pgkeel.dbobjects import qualified
from pgkeel.naming import fit_identifier

if TYPE_CHECKING:
    from collections.abc import Sequence

    from alembic.operations import Operations


def check_name(table_name: str, column_name: str) -> str:
    """``chk_<table>_<column>_not_null``, fitted to 63 bytes."""
    return fit_identifier(f"chk_{table_name}_{column_name}_not_null")


class AddNotNullCheckOp(MigrateOperation):
    """``ADD CONSTRAINT chk_<table>_<column>_not_null CHECK (column IS NOT NULL) NOT VALID``.

    A leftover of a run that stopped (the same check, maybe not valid) is replaced in the same
    statement, so the step runs again.
    """

    def __init__(self, table_name: str, column_name: str, schema: str | None = None) -> None:
        self.table_name = table_name
        self.column_name = column_name
        self.schema = schema

    @property
    def name(self) -> str:
        """The check's name."""
        return check_name(self.table_name, self.column_name)

    def reverse(self) -> MigrateOperation:
        """Nothing: ``set_not_null`` drops the check once NOT NULL holds."""
        return NoOp()

    def to_diff_tuple(self) -> tuple[Any, ...]:
        """``("add_not_null_check", table, column)``."""
        return ("add_not_null_check", self.table_name, self.column_name)

    @classmethod
    def add_not_null_check(
        cls, operations: Operations, table_name: str, column_name: str, *, schema: str | None = None
    ) -> None:
        """Add ``CHECK (column IS NOT NULL) NOT VALID``: a brief lock, no scan of the rows."""
        operations.invoke(cls(table_name, column_name, schema))

    def statement(self) -> sql.Composed:
        """One ``ALTER TABLE``: the leftover check dropped, the check added ``NOT VALID``."""
        name = sql.Identifier(self.name)
        return sql.SQL(
            "-- squawk-ignore ban-drop-constraint\n"
            "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}, ADD CONSTRAINT {} CHECK ({} IS NOT NULL)"
            " NOT VALID"
        ).format(
            qualified(self.schema, self.table_name), name, name, sql.Identifier(self.column_name)
        )


class SetNotNullOp(MigrateOperation):
    """``SET NOT NULL`` proven by the valid check of ``add_not_null_check``, then the check goes."""

    def __init__(self, alter: ops.AlterColumnOp) -> None:
        self.alter = alter

    @property
    def table_name(self) -> str:
        """The table."""
        return self.alter.table_name

    @property
    def column_name(self) -> str:
        """The column made NOT NULL."""
        return self.alter.column_name

    def reverse(self) -> ops.AlterColumnOp:
        """The column nullable again (``DROP NOT NULL``: the catalog only)."""
        return self.alter.reverse()

    def to_diff_tuple(self) -> Any:  # noqa: ANN401  # Alembic's diff tuples
        """The column's ``modify_nullable`` diff."""
        return self.alter.to_diff_tuple()

    @classmethod
    def set_not_null(
        cls, operations: Operations, table_name: str, column_name: str, *, schema: str | None = None
    ) -> None:
        """``SET NOT NULL`` once ``add_not_null_check``'s check is valid; then drop the check."""
        alter = ops.AlterColumnOp(table_name, column_name, schema=schema, modify_nullable=False)
        operations.invoke(cls(alter))

    def statements(self) -> list[sql.Composed]:
        """``SET NOT NULL``, then ``DROP CONSTRAINT IF EXISTS`` of the check that proved it.

        squawk is told that ``SET NOT NULL`` may run again (it then does nothing) in a revision
        that also runs outside a transaction.
        """
        table = qualified(self.alter.schema, self.table_name)
        name = check_name(self.table_name, self.column_name)
        return [
            sql.SQL(
                "-- squawk-ignore prefer-robust-stmts\nALTER TABLE {} ALTER COLUMN {} SET NOT NULL"
            ).format(table, sql.Identifier(self.column_name)),
            sql.SQL(
                "-- squawk-ignore ban-drop-constraint\nALTER TABLE {} DROP CONSTRAINT IF EXISTS {}"
            ).format(table, sql.Identifier(name)),
        ]


class NotNullStepsOp(MigrateOperation):
    """The steps that make one column NOT NULL on a table with rows, in order (see the module)."""

    def __init__(
        self, steps: Sequence[MigrateOperation], table_name: str, schema: str | None
    ) -> None:
        self.ops = list(steps)
        self.table_name = table_name
        self.schema = schema

    def reverse(self) -> NotNullStepsOp:
        """Each step's reverse, last first (the column nullable again, the backfill's reverse)."""
        turned = [op.reverse() for op in reversed(self.ops)]
        return NotNullStepsOp(
            [op for op in turned if not isinstance(op, NoOp)], self.table_name, self.schema
        )

    def to_diff_tuple(self) -> tuple[Any, ...]:
        """The diffs of the steps (``alembic check`` walks ``ops``)."""
        return tuple(op.to_diff_tuple() for op in self.ops)


def makes_not_null(op: MigrateOperation) -> bool:
    """Whether ``op`` turns a nullable column into a NOT NULL one."""
    return (
        isinstance(op, ops.AlterColumnOp)
        and op.modify_nullable is False
        and op.existing_nullable is not False
    )


def makes_nullable(op: MigrateOperation) -> bool:
    """Whether ``op`` turns a NOT NULL column into a nullable one (its reverse: NOT NULL)."""
    return (
        isinstance(op, ops.AlterColumnOp)
        and op.modify_nullable is True
        and op.existing_nullable is False
    )


def downgrade_not_null_steps(
    alter: ops.AlterColumnOp, backfill: str | None, *, answered: bool
) -> tuple[ops.AlterColumnOp | None, NotNullStepsOp]:
    """A downgrade's NOT NULL (the reverse of a column made nullable) as the upgrade's steps.

    ``backfill``: the ``-x downgrade_backfill=`` SQL for the NULL rows; without it, and
    ``answered`` (acknowledged), a comment says that a NULL stops the downgrade.
    """
    rest, steps = not_null_steps(alter, backfill)
    if backfill is None and answered:
        where = ".".join(filter(None, (alter.schema, alter.table_name, alter.column_name)))
        name = check_name(alter.table_name, alter.column_name)
        steps.ops.insert(
            0,
            CommentOp(
                f"{where} becomes NOT NULL again with no value for its NULLs (acknowledged): "
                f"while a row holds NULL the validation of {name} stops this downgrade, before "
                "anything else changed; give those rows a value, then run it again."
            ),
        )
    return rest, steps


def _nullability(alter: ops.AlterColumnOp) -> ops.AlterColumnOp:
    """The part of ``alter`` that makes the column NOT NULL, alone."""
    return ops.AlterColumnOp(
        alter.table_name,
        alter.column_name,
        schema=alter.schema,
        existing_type=alter.modify_type or alter.existing_type,
        existing_server_default=alter.existing_server_default,
        existing_comment=alter.existing_comment,
        existing_nullable=True,
        modify_nullable=False,
    )


def _rest(alter: ops.AlterColumnOp) -> ops.AlterColumnOp | None:
    """``alter`` without its nullability change; None when that was all it did."""
    alter.modify_nullable = None
    alter.existing_nullable = True
    return alter if alter.has_changes() else None


def not_null_steps(
    alter: ops.AlterColumnOp, backfill: str | None
) -> tuple[ops.AlterColumnOp | None, NotNullStepsOp]:
    """``alter`` split: its other changes (or None), and the steps that make the column NOT NULL.

    ``backfill`` is the SQL that gives the old rows their value (``-x backfill=``), if any.
    """
    table, column, schema = alter.table_name, alter.column_name, alter.schema
    nullability = _nullability(alter)
    steps: list[MigrateOperation] = []
    if backfill is not None:
        steps.append(
            BackfillOp(table, {column: backfill}, where=f"{column} IS NULL", schema=schema)
        )
    steps += [
        AddNotNullCheckOp(table, column, schema),
        AutocommitBlockOp([ValidateConstraintOp(check_name(table, column), table, schema)]),
        SetNotNullOp(nullability),
    ]
    return _rest(alter), NotNullStepsOp(steps, table, schema)
