"""Order the operations around dropped tables so both directions run, foreign key cycles too.

Upgrade: every foreign key that points at a dropped table (from a table that stays, or from
another dropped table) is dropped first, then the tables. The downgrade, derived by reversing
the upgrade, creates the tables first and adds those foreign keys after all of them exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alembic.operations import ops
from sqlalchemy import ForeignKeyConstraint, inspect

from alembic_extensions.acknowledge import DROP_TABLE, AcknowledgeOp

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.engine import Inspector

TableKey = tuple[str | None, str]


def _drop_refers_to(op: ops.MigrateOperation, dropped: set[TableKey]) -> bool:
    """Whether ``op`` drops a foreign key that points at a table in ``dropped``."""
    if not isinstance(op, ops.DropConstraintOp) or op.constraint_type != "foreignkey":
        return False
    add = op._reverse  # Alembic keeps the constraint's definition there
    if not isinstance(add, ops.CreateForeignKeyOp):
        return False
    schema = add.kw.get("referent_schema")
    return (schema, add.referent_table) in dropped or (None, add.referent_table) in dropped


def _reflected_foreign_keys(inspector: Inspector, drop: ops.DropTableOp) -> list[dict[str, Any]]:
    keys = inspector.get_foreign_keys(drop.table_name, schema=drop.schema)
    return [dict(key) for key in keys if key.get("name")]


def _constraint(key: dict[str, Any]) -> ForeignKeyConstraint:
    prefix = f"{key['referred_schema']}." if key.get("referred_schema") else ""
    remote = [f"{prefix}{key['referred_table']}.{column}" for column in key["referred_columns"]]
    options = {k: v for k, v in key.get("options", {}).items() if v is not None}
    return ForeignKeyConstraint(key["constrained_columns"], remote, name=key["name"], **options)


def _explicit_drop(drop: ops.DropTableOp, key: dict[str, Any]) -> ops.DropConstraintOp:
    options = {k: v for k, v in key.get("options", {}).items() if v is not None}
    create = ops.CreateForeignKeyOp(
        key["name"],
        drop.table_name,
        key["referred_table"],
        key["constrained_columns"],
        key["referred_columns"],
        source_schema=drop.schema,
        referent_schema=key.get("referred_schema"),
        **options,
    )
    return ops.DropConstraintOp(
        key["name"], drop.table_name, type_="foreignkey", schema=drop.schema, _reverse=create
    )


def _dropped_table_keys(
    inspector: Inspector, drop: ops.DropTableOp, dropped: set[TableKey]
) -> list[ops.DropConstraintOp]:
    """Give a dropped table back its foreign keys for the downgrade; return those to drop first.

    Alembic reflects a dropped table without its foreign keys, so the downgrade would recreate
    it without them. A key to a table that stays goes back into the table's definition; a key
    to another dropped table (a cycle, or just an order) is dropped explicitly before the
    tables, and the downgrade adds it once every table exists again.
    """
    create = drop._reverse  # the reflected definition the downgrade recreates
    if create is None:
        return []
    own = (drop.schema, drop.table_name)
    first: list[ops.DropConstraintOp] = []
    create.columns = [c for c in create.columns if not isinstance(c, ForeignKeyConstraint)]
    for key in _reflected_foreign_keys(inspector, drop):
        target = (key.get("referred_schema") or drop.schema, key["referred_table"])
        if target != own and target in dropped:
            first.append(_explicit_drop(drop, key))
        else:
            create.columns.append(_constraint(key))
    return first


def _foreign_key_drops_first(
    upgrade_ops: ops.UpgradeOps, dropped: set[TableKey]
) -> list[ops.ModifyTableOps]:
    """The foreign key drops of tables that stay, taken out of their table's operations."""
    first: list[ops.ModifyTableOps] = []
    for container in upgrade_ops.ops:
        if not isinstance(container, ops.ModifyTableOps):
            continue
        moved = [op for op in container.ops if _drop_refers_to(op, dropped)]
        if moved:
            container.ops = [op for op in container.ops if op not in moved]
            first.append(_acknowledged(container.table_name, container.schema, moved))
    return first


def _acknowledged(
    table: str, schema: str | None, drops: list[ops.DropConstraintOp] | list[ops.MigrateOperation]
) -> ops.ModifyTableOps:
    """Foreign key drops that go with a dropped table: part of the table's acknowledged drop."""
    steps: list[ops.MigrateOperation] = []
    for drop in drops:
        reason = "a foreign key between dropped tables, or to one"
        where = f"{table}.{getattr(drop, 'constraint_name', '')}"
        steps += [AcknowledgeOp(DROP_TABLE, where, reason), drop]
    return ops.ModifyTableOps(table, steps, schema=schema)


def order_drops(upgrade_ops: ops.UpgradeOps, connection: Connection | None) -> None:
    """Drop the foreign keys that point at dropped tables before the tables themselves."""
    drops = [op for op in upgrade_ops.ops if isinstance(op, ops.DropTableOp)]
    if not drops:
        return
    dropped = {(op.schema, op.table_name) for op in drops}
    first = _foreign_key_drops_first(upgrade_ops, dropped)
    inspector = inspect(connection) if connection is not None else None
    for drop in drops:
        taken = _dropped_table_keys(inspector, drop, dropped) if inspector is not None else []
        if taken:
            first.append(_acknowledged(drop.table_name, drop.schema, list(taken)))
    upgrade_ops.ops = [
        *first,
        *(op for op in upgrade_ops.ops if not (isinstance(op, ops.ModifyTableOps) and not op.ops)),
    ]


def _is_foreign_key_drop(op: ops.MigrateOperation) -> bool:
    return isinstance(op, ops.DropConstraintOp) and op.constraint_type == "foreignkey"


def _added_again(container: ops.ModifyTableOps) -> set[str]:
    """The foreign keys ``container`` adds: a drop of one of them is a replacement, left alone."""
    return {
        str(op.constraint_name)
        for op in container.ops
        if isinstance(op, ops.CreateForeignKeyOp) and op.constraint_name
    }


def _taken_out(container: ops.ModifyTableOps) -> list[ops.MigrateOperation]:
    """Take the foreign key drops out of ``container`` (each with its acknowledgement)."""
    replaced = _added_again(container)
    taken: list[ops.MigrateOperation] = []
    kept: list[ops.MigrateOperation] = []
    for op in container.ops:
        if _is_foreign_key_drop(op) and str(op.constraint_name) not in replaced:  # type: ignore[attr-defined]
            if kept and isinstance(kept[-1], AcknowledgeOp):
                taken.append(kept.pop())
            taken.append(op)
        else:
            kept.append(op)
    container.ops = kept
    return taken


def foreign_key_drops_first(upgrade_ops: ops.UpgradeOps) -> None:
    """Drop the foreign keys before anything else: each depends on its target's unique index.

    A column drop or a unique rule's drop on the target table fails while a key that the
    migration also drops still uses the index (``constraint ... depends on index ...``), and
    autogenerate writes the tables in name order, not in that one.
    """
    leading: list[ops.MigrateOperation] = []
    for container in upgrade_ops.ops:
        if isinstance(container, ops.ModifyTableOps) and any(
            map(_is_foreign_key_drop, container.ops)
        ):
            taken = _taken_out(container)
            if taken:
                leading.append(
                    ops.ModifyTableOps(container.table_name, taken, schema=container.schema)
                )
    if leading:
        rest = [
            op for op in upgrade_ops.ops if not (isinstance(op, ops.ModifyTableOps) and not op.ops)
        ]
        upgrade_ops.ops = [*leading, *rest]


def dropped_columns(container: ops.ModifyTableOps) -> set[str]:
    """The columns ``container`` drops."""
    return {op.column_name for op in container.ops if isinstance(op, ops.DropColumnOp)}


def _later_or_deferred(
    constraint: ForeignKeyConstraint, own: int, positions: dict[TableKey, int]
) -> bool:
    """Whether a new table's foreign key must wait until after its target is created."""
    if constraint.use_alter:
        return True
    target = constraint.elements[0].column.table if constraint.elements else None
    if target is None:
        return False
    return positions.get((target.schema, target.name), -1) > own


def _add_foreign_key(constraint: ForeignKeyConstraint) -> ops.CreateForeignKeyOp:
    add = ops.CreateForeignKeyOp.from_constraint(constraint)
    add.kw.pop("use_alter", None)  # it is the separate step use_alter asks for
    return add


def order_creates(upgrade_ops: ops.UpgradeOps) -> None:
    """Add a new table's foreign key to a table created later (a cycle) after both exist.

    Alembic's ``create_table`` leaves out a ``use_alter`` foreign key altogether, and one to a
    table created later fails; both become ``op.create_foreign_key`` after the last new table
    (and the downgrade drops them before the tables).
    """
    creates = [op for op in upgrade_ops.ops if isinstance(op, ops.CreateTableOp)]
    positions = {(op.schema, op.table_name): index for index, op in enumerate(creates)}
    later: list[ops.MigrateOperation] = []
    for index, create in enumerate(creates):
        moved = [
            item
            for item in create.columns
            if isinstance(item, ForeignKeyConstraint) and _later_or_deferred(item, index, positions)
        ]
        if moved:
            moved_ids = {id(item) for item in moved}
            create.columns = [item for item in create.columns if id(item) not in moved_ids]
            adds: list[ops.MigrateOperation] = [_add_foreign_key(item) for item in moved]
            later.append(ops.ModifyTableOps(create.table_name, adds, schema=create.schema))
    if later:
        last = upgrade_ops.ops.index(creates[-1])
        upgrade_ops.ops[last + 1 : last + 1] = later
