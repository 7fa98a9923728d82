"""A foreign key that needs a unique key the same migration builds concurrently comes after it.

On a table with rows a new unique key is built as an index ``CONCURRENTLY`` and attached in the
deferred step (the revision that follows, when the migration is split). A foreign key that
references it (``tenant_foreign_key`` needs ``(tenant_id, id)`` on the referenced table) cannot
be created before: PostgreSQL refuses a foreign key without a unique key to reference. Such a
foreign key, on a new table or an existing one, is taken out of the transactional step and added
in the deferred one once the key is in place, ``NOT VALID`` and then validated (a scan that does
not block writes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alembic.operations import ops
from sqlalchemy import ForeignKeyConstraint

from alembic_extensions.ops import ConcurrentCreateIndexOp, ValidateConstraintOp

if TYPE_CHECKING:
    from collections.abc import Iterable

_Key = tuple[str | None, str, frozenset[str]]


class ForeignKeyAfterKeyOp(ops.CreateForeignKeyOp):
    """A foreign key added once the unique key it references exists; rendered as any other."""


def _name(column: Any) -> str:  # noqa: ANN401  # a name, a Column or an expression
    return str(getattr(column, "name", column))


def _new_keys(upgrade_ops: ops.UpgradeOps) -> set[_Key]:
    """``(schema, table, columns)`` of each unique index built concurrently on a table."""
    keys: set[_Key] = set()
    for container in upgrade_ops.ops:
        for op in getattr(container, "ops", ()):
            create = getattr(op, "create", None)
            if not isinstance(op, ConcurrentCreateIndexOp) or create is None:
                continue
            if create.unique and create.kw.get("postgresql_where") is None:
                columns = frozenset(_name(column) for column in create.columns)
                keys.add((create.schema, str(create.table_name), columns))
    return keys


def _referred(fk: ForeignKeyConstraint) -> _Key:
    targets = [element.target_fullname.split(".") for element in fk.elements]
    *schema, table, _column = targets[0]
    return (schema[0] if schema else None, table, frozenset(target[-1] for target in targets))


def _moved(fk: ForeignKeyConstraint, schema: str | None) -> list[ops.MigrateOperation]:
    """The foreign key of a new table as a deferred ``NOT VALID`` creation and its validation.

    The table is created empty by the same migration, so the validation may run in the
    transaction that added the key: it scans no rows.
    """
    create = ForeignKeyAfterKeyOp.from_constraint(fk)
    create.kw["postgresql_not_valid"] = True
    if schema is not None:
        create.kw.setdefault("source_schema", schema)
    name = str(create.constraint_name)
    return [create, ValidateConstraintOp(name, create.source_table, schema, new_table=True)]


def _from_new_tables(upgrade_ops: ops.UpgradeOps, keys: set[_Key]) -> list[ops.ModifyTableOps]:
    """Take such foreign keys out of ``create_table``; the operations that add them later."""
    later: list[ops.ModifyTableOps] = []
    for op in upgrade_ops.ops:
        if not isinstance(op, ops.CreateTableOp):
            continue
        found = [
            item
            for item in op.columns
            if isinstance(item, ForeignKeyConstraint) and item.name and _referred(item) in keys
        ]
        if not found:
            continue
        taken = {id(fk) for fk in found}  # identity: SQL objects overload ==
        op.columns = [item for item in op.columns if id(item) not in taken]
        moved = [step for fk in found for step in _moved(fk, op.schema)]
        later.append(ops.ModifyTableOps(op.table_name, moved, schema=op.schema))
    return later


def _on_existing_tables(upgrade_ops: ops.UpgradeOps, keys: set[_Key]) -> None:
    """``op.create_foreign_key`` to such a key: deferred like the key itself."""
    for container in upgrade_ops.ops:
        if not isinstance(container, ops.ModifyTableOps):
            continue
        container.ops = [_deferred(op, keys) for op in container.ops]


def _deferred(op: ops.MigrateOperation, keys: set[_Key]) -> ops.MigrateOperation:
    if not isinstance(op, ops.CreateForeignKeyOp) or isinstance(op, ForeignKeyAfterKeyOp):
        return op
    key = (op.kw.get("referent_schema"), op.referent_table, frozenset(op.remote_cols))
    if key not in keys:
        return op
    moved = ForeignKeyAfterKeyOp.from_constraint(op.to_constraint())
    moved.kw.update(op.kw)
    return moved


def after_new_keys(upgrade_ops: ops.UpgradeOps) -> None:
    """Defer every foreign key that references a unique key this migration builds concurrently."""
    keys = _new_keys(upgrade_ops)
    if not keys:
        return
    _on_existing_tables(upgrade_ops, keys)
    upgrade_ops.ops.extend(_from_new_tables(upgrade_ops, keys))


def split_late(
    deferred: Iterable[ops.MigrateOperation],
) -> tuple[list[ForeignKeyAfterKeyOp], list[ValidateConstraintOp]]:
    """``(foreign keys added after the keys, their validations)`` among deferred operations."""
    deferred = list(deferred)
    late = [op for op in deferred if isinstance(op, ForeignKeyAfterKeyOp)]
    names = {str(op.constraint_name) for op in late}
    checks = [
        op
        for op in deferred
        if isinstance(op, ValidateConstraintOp) and str(op.constraint_name) in names
    ]
    return late, checks
