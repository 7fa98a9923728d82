"""Primary keys, which Alembic does not compare: a changed one is refused with the recipe.

Autogenerate says nothing when a model's primary key changes, so ``alembic check`` stays clean
while the database keeps the old key. pgkeel compares the key's columns and writes the change
as Alembic would (drop the key, add the new one), which ``make_safe`` refuses on a table that
already exists: ``ADD PRIMARY KEY`` builds its index while it blocks every read and write, and
scans for NULLs. Acknowledged, the operations are written as they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alembic.operations import ops
from sqlalchemy.sql.naming import conv

from alembic_extensions.rules import Violation

if TYPE_CHECKING:
    from alembic.operations import MigrateOperation
    from sqlalchemy import Table


class PrimaryKeyOp(ops.CreatePrimaryKeyOp):
    """Alembic's ``create_primary_key``, which pgkeel renders (Alembic's autogenerate cannot)."""

    def reverse(self) -> DropPrimaryKeyOp:
        """Dropping the key, with this operation as its reverse."""
        return DropPrimaryKeyOp(self.constraint_name, self.table_name, self)


class DropPrimaryKeyOp(ops.DropConstraintOp):
    """Alembic's ``drop_constraint`` of a primary key, whose reverse pgkeel can render."""

    def __init__(self, name: Any, table: str, added: PrimaryKeyOp) -> None:  # noqa: ANN401  # a name or conv
        super().__init__(name, table, type_="primary", schema=added.schema, _reverse=added)
        self.added = added

    def reverse(self) -> PrimaryKeyOp:
        """Adding the key back."""
        return self.added


def _columns(table: Table) -> list[str]:
    return [column.name for column in table.primary_key.columns]


def primary_key_ops(model: Table, reflected: Table) -> list[MigrateOperation]:
    """Drop the old primary key and add the model's, when their columns differ."""
    old, new = _columns(reflected), _columns(model)
    if not old or not new or old == new:
        return []
    old_name = conv(str(reflected.primary_key.name))
    new_name = model.primary_key.name
    add_old = PrimaryKeyOp(old_name, reflected.name, old, schema=reflected.schema)
    drop = DropPrimaryKeyOp(old_name, reflected.name, add_old)
    add = PrimaryKeyOp(new_name, model.name, new, schema=model.schema)
    return [drop, add]


def primary_key_violation(where: str, op: ops.CreatePrimaryKeyOp) -> Violation:
    """The refusal of a changed primary key on an existing table, with the recipe."""
    from alembic_extensions.acknowledge import PRIMARY_KEY_CHANGE, acknowledge_hint  # noqa: PLC0415

    columns = ", ".join(op.columns)
    return Violation(
        PRIMARY_KEY_CHANGE,
        where,
        f"the migration changes the primary key of {where} to ({columns}): ADD PRIMARY KEY "
        "builds its index and scans for NULLs under an ACCESS EXCLUSIVE lock that blocks every "
        "read and write until it ends, and DROP CONSTRAINT fails while foreign keys reference "
        "the old key.",
        "change it in steps, in revisions written by hand: (1) make each new key column NOT "
        "NULL (nullable=False in the model, without a long lock); (2) build the new key's "
        "index: op.create_index(name, table, "
        "[columns], unique=True, postgresql_concurrently=True) in "
        "op.get_context().autocommit_block(); (3) drop or re-point the foreign keys that "
        "reference the old key; (4) in one transaction, op.drop_constraint(old primary key) and "
        "op.execute('ALTER TABLE ... ADD CONSTRAINT <name> PRIMARY KEY USING INDEX <name>') (a "
        "brief lock, no build).",
        acknowledge_hint(where) + ", for a table known to be small",
    )
