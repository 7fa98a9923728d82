"""A table that already holds rows keeps every unique rule while a migration replaces it.

Autogenerate writes the replacement of a unique rule (soft delete's partial index, a rule that
now leads with ``tenant_id``, a unique index with a new predicate) as "drop the old rule, create
the new one". On a live table that leaves it without its rule for as long as the build takes,
and for good when the build fails. ``keep_unique_rules`` turns it around: the new index is
built ``CONCURRENTLY`` while the old rule still holds, and the old rule goes only once the new
one is valid. A new index that takes the old rule's name is built under a temporary name and
renamed after the old one is gone. A failed build (a lock timeout, a duplicate) leaves the old
rule in place, and the step can simply run again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alembic.operations import ops

from alembic_extensions.acknowledge import AcknowledgeOp
from alembic_extensions.dependents import (
    RuleShape,
    columns_used,
    definition_shape,
    replaces,
    rule_definition,
)
from alembic_extensions.ops import (
    ConcurrentCreateIndexOp,
    ConcurrentDropIndexOp,
    DropColumnAfterRulesOp,
    DroppedWithTableOp,
    DropReplacedRuleOp,
    RenameIndexOp,
    UniqueUsingIndexOp,
)
from pgkeel.naming import fit_identifier

if TYPE_CHECKING:
    from alembic.operations.ops import MigrateOperation

    from alembic_extensions.dependents import RuleDefinition

TEMPORARY_SUFFIX = "_new"
"""Appended to the name of a unique index built while the rule it replaces still has the name."""


def temporary_name(name: str) -> str:
    """The name a replacing index is built under (``<name>_new``, fitted to 63 bytes)."""
    return fit_identifier(f"{name}{TEMPORARY_SUFFIX}")


def _dropped_unique_name(op: MigrateOperation) -> str | None:
    """The name of the unique rule ``op`` drops, or None when it drops something else."""
    if isinstance(op, ops.DropConstraintOp) and op.constraint_type == "unique":
        return str(op.constraint_name)
    if isinstance(op, ConcurrentDropIndexOp):
        created = op.drop._reverse  # the dropped index, as autogenerate saw it
        if created is not None and created.unique:
            return str(op.drop.index_name)
    return None


def _unique_builds(operations: list[MigrateOperation]) -> dict[str, ConcurrentCreateIndexOp]:
    return {
        str(op.create.index_name): op
        for op in operations
        if isinstance(op, ConcurrentCreateIndexOp) and op.create.unique
    }


def _plain_builds(operations: list[MigrateOperation]) -> set[str]:
    """The names of the plain (not unique) indexes built: a unique one of that name is dropped.

    Such a rule was dropped on purpose (refused, then acknowledged): the index that takes its
    name is no replacement to wait for, and must not be dropped as the old rule later.
    """
    return {
        str(op.create.index_name)
        for op in operations
        if isinstance(op, ConcurrentCreateIndexOp) and not op.create.unique
    }


def _replaced(
    op: MigrateOperation, name: str, schema: str | None, replaced_by: list[str]
) -> DropReplacedRuleOp:
    """The drop of rule ``name`` as one that waits for its replacements to be valid."""
    if isinstance(op, ConcurrentDropIndexOp):
        return DropReplacedRuleOp(
            name,
            op.drop.table_name or "",
            replaced_by=replaced_by,
            index=True,
            schema=schema,
            _reverse=op.reverse(),
        )
    assert isinstance(op, ops.DropConstraintOp)  # noqa: S101  # _dropped_unique_name said so
    return DropReplacedRuleOp(
        name, op.table_name, replaced_by=replaced_by, schema=schema, _reverse=op.reverse()
    )


def keep_unique_rules(container: ops.ModifyTableOps) -> None:
    """Drop a table's replaced unique rules only after the new unique indexes are valid."""
    builds = _unique_builds(container.ops)
    made_plain = _plain_builds(container.ops)  # a rule that becomes a plain index: not replaced
    dropped = {name for op in container.ops if (name := _dropped_unique_name(op))} - made_plain
    if not builds or not dropped:
        return
    renames: list[MigrateOperation] = []
    for name in sorted(dropped & builds.keys()):
        build = builds[name]
        build.create.index_name = temporary_name(name)
        build.drop_leftover = True
        renames.append(RenameIndexOp(build.create.index_name, name, container.schema))
    shapes = {
        str(build.create.index_name): definition_shape(build.create) for build in builds.values()
    }
    kept: list[MigrateOperation] = []
    for op in container.ops:
        name = _dropped_unique_name(op)
        if name is None or name in made_plain:
            kept.append(op)
            continue
        replaced_by = _successors(name, rule_definition(op), shapes)
        kept.append(_replaced(op, name, container.schema, replaced_by))
    container.ops = [*kept, *renames]


def _successors(
    name: str, definition: RuleDefinition | None, new: dict[str, RuleShape | None]
) -> list[str]:
    """The new unique indexes the drop of rule ``name`` waits for.

    The one built in its place under its name, and those that enforce at least what it did
    (``replaces``); when none does (an acknowledged drop, a rule pgkeel cannot read), every new
    one: waiting is never less safe.
    """
    old = None if definition is None else definition_shape(definition)
    successor = temporary_name(name)
    paired = {
        built
        for built, shape in new.items()
        if built == successor or (old is not None and shape is not None and replaces(shape, old))
    }
    return sorted(paired or new)


def _held_columns(container: ops.ModifyTableOps, dropped: set[str]) -> set[str]:
    """The dropped columns that a replaced unique rule of ``container`` uses."""
    held: set[str] = set()
    for op in container.ops:
        definition = rule_definition(op) if isinstance(op, DropReplacedRuleOp) else None
        if definition is not None:
            held |= columns_used(definition) & dropped
    return held


def _goes_with_column(
    op: MigrateOperation, table: str, dropped: set[str], held: set[str]
) -> MigrateOperation:
    """An index drop that a column drop of this transaction makes: the comment that says so.

    The column goes in the migration's transaction unless it is held; ``DROP COLUMN`` then
    drops the index first, and the downgrade builds it again after adding the column back.
    """
    if not isinstance(op, ConcurrentDropIndexOp):
        return op
    definition = rule_definition(op)
    gone = columns_used(definition) & dropped - held if definition is not None else set()
    return DroppedWithTableOp(op.drop, f"{table}.{min(gone)}") if gone else op


def _acknowledges(op: MigrateOperation, container: ops.ModifyTableOps, column: str) -> bool:
    """Whether ``op`` is the acknowledgement written before the drop of ``column``."""
    where = ".".join(filter(None, (container.schema, container.table_name, column)))
    return isinstance(op, AcknowledgeOp) and op.where == where


def hold_column_drops(container: ops.ModifyTableOps) -> None:
    """Drop a column that a replaced unique rule uses only once that rule is replaced.

    ``DROP COLUMN`` drops every index that uses the column, in its key, an expression or its
    predicate: run in the migration's transaction, before the new unique index is built, it
    would leave the table without its rule (for good, if the build then fails). Such a column
    drop, with its acknowledgement, becomes a ``DropColumnAfterRulesOp`` that runs after the
    replacing index is valid and the old rule is dropped. Any other index that uses a dropped
    column goes with the column (a unique one's loss was refused or acknowledged).
    """
    dropped = {op.column_name for op in container.ops if isinstance(op, ops.DropColumnOp)}
    if not dropped:
        return
    held = _held_columns(container, dropped)
    table = container.table_name
    kept: list[MigrateOperation] = []
    for op in container.ops:
        if isinstance(op, ops.DropColumnOp) and op.column_name in held:
            acknowledged = bool(kept) and _acknowledges(kept[-1], container, op.column_name)
            kept.append(DropColumnAfterRulesOp([kept.pop()] if acknowledged else [], op))
        else:
            kept.append(_goes_with_column(op, table, dropped, held))
    container.ops = kept


def keep_indexes(container: ops.ModifyTableOps) -> None:
    """An index built again under its own name (new columns, INVALID) is built beside the old one.

    The new index is built as ``<name>_new`` while the old one still serves queries (and a
    foreign key's deletes), the old one is dropped once it is built, and the new one takes the
    name. Unique rules go through ``keep_unique_rules`` first.
    """
    dropped = {
        str(op.drop.index_name) for op in container.ops if isinstance(op, ConcurrentDropIndexOp)
    }
    renames: list[MigrateOperation] = []
    for op in container.ops:
        if not isinstance(op, ConcurrentCreateIndexOp):
            continue
        name = str(op.create.index_name)
        if name in dropped:
            op.create.index_name = temporary_name(name)
            op.drop_leftover = True
            renames.append(RenameIndexOp(op.create.index_name, name, container.schema))
            _wait_for(container, name, str(op.create.index_name))
    container.ops.extend(renames)


def _wait_for(container: ops.ModifyTableOps, name: str, built_as: str) -> None:
    """A rule drop that waits for index ``name`` checks it under the name it is built as.

    The rename to ``name`` comes after every drop of a replaced rule (``second_step``).
    """
    for op in container.ops:
        if isinstance(op, DropReplacedRuleOp) and name in op.replaced_by:
            op.replaced_by = [built_as if each == name else each for each in op.replaced_by]


def unique_constraint_concurrently(
    op: ops.CreateUniqueConstraintOp,
) -> list[MigrateOperation]:
    """A new unique constraint on a table with rows: its index concurrently, then attached.

    ``ADD CONSTRAINT ... UNIQUE`` would build the index while it blocks every write.
    """
    if op.constraint_name is None or op.kw.get("deferrable") or op.kw.get("initially"):
        return [op]
    options = {key: value for key, value in op.kw.items() if key.startswith("postgresql_")}
    create = ops.CreateIndexOp(
        str(op.constraint_name),
        op.table_name,
        list(op.columns),
        schema=op.schema,
        unique=True,
        **options,
    )
    attach = UniqueUsingIndexOp(str(op.constraint_name), op.table_name, op.schema)
    return [ConcurrentCreateIndexOp(create), attach]


def _table_of(op: MigrateOperation) -> tuple[str | None, str] | None:
    """The table (schema, name) a replacement-step operation works on."""
    if isinstance(op, ConcurrentCreateIndexOp):
        return op.create.schema, str(op.create.table_name)
    if isinstance(op, ConcurrentDropIndexOp):
        return op.drop.schema, str(op.drop.table_name)
    if isinstance(op, ops.DropConstraintOp | UniqueUsingIndexOp | DropReplacedRuleOp):
        return op.schema, op.table_name
    return None


def _restored(op: DropReplacedRuleOp) -> list[MigrateOperation]:
    """The replaced rule ``op`` dropped, built again without blocking writes."""
    rule = op.reverse()
    if isinstance(rule, ops.CreateUniqueConstraintOp):
        return unique_constraint_concurrently(rule)
    if isinstance(rule, ConcurrentCreateIndexOp):
        rule.drop_leftover = True
        return [rule]
    return [rule]


def _dropped_build(op: ConcurrentCreateIndexOp, final_name: str) -> ConcurrentDropIndexOp:
    """The drop of the index ``op`` built, under the name it ends up with."""
    drop = op.create.reverse()
    if final_name != str(drop.index_name):  # renamed once built; else keep op.f() naming
        drop.index_name = final_name
        if drop._reverse is not None:  # Alembic's record of the dropped index
            drop._reverse.index_name = final_name
    return ConcurrentDropIndexOp(drop)


def _dropped_constraint(
    op: UniqueUsingIndexOp, builds: dict[str, ConcurrentCreateIndexOp]
) -> ops.DropConstraintOp:
    """The drop of the constraint ``op`` attached, knowing its columns (for its reverse)."""
    drop = op.reverse()
    build = builds.get(op.constraint_name)
    if build is not None:
        columns = [str(column) for column in build.create.columns]
        drop._reverse = ops.CreateUniqueConstraintOp(
            op.constraint_name, op.table_name, columns, schema=op.schema
        )
    return drop


def _mirrored(deferred: list[MigrateOperation]) -> list[MigrateOperation]:
    """Each operation of ``deferred`` turned around: old rules back, new rules to drop."""
    final = {op.old_name: op.new_name for op in deferred if isinstance(op, RenameIndexOp)}
    attached = {op.constraint_name for op in deferred if isinstance(op, UniqueUsingIndexOp)}
    builds = {
        final.get(name, name): op
        for op in deferred
        if isinstance(op, ConcurrentCreateIndexOp) and (name := str(op.create.index_name))
    }
    creates = [op.create for op in deferred if isinstance(op, ConcurrentCreateIndexOp)]
    built = {str(create.index_name) for create in creates}
    turned: list[MigrateOperation] = []
    for op in deferred:
        if isinstance(op, DropReplacedRuleOp):
            turned.extend(_restored(op))
        elif isinstance(op, UniqueUsingIndexOp):
            turned.append(_dropped_constraint(op, builds))  # its index goes with it
        elif isinstance(op, ConcurrentCreateIndexOp):
            name = str(op.create.index_name)
            if final.get(name, name) not in attached:
                turned.append(_dropped_build(op, final.get(name, name)))
        elif not isinstance(op, RenameIndexOp) or op.old_name not in built:
            turned.append(op.reverse())  # a rename of no build: a rule that followed its column
    return turned


def restore_unique_rules(deferred: list[MigrateOperation]) -> list[MigrateOperation]:
    """The reverse of a second step: every rule it dropped is back before its replacement goes.

    Reversing each operation would drop the new rule first and add the old constraint with
    ``ADD CONSTRAINT ... UNIQUE`` (an index build that blocks writes). Here the old rules are
    built ``CONCURRENTLY`` (under a temporary name when the new rule has theirs) and attached,
    and the new ones are dropped only once those are valid: the same path as the upgrade.
    Operations on tables with no replacement come first, last given first.
    """
    by_table: dict[tuple[str | None, str], list[MigrateOperation]] = {}
    others: list[MigrateOperation] = []
    for op in _mirrored(deferred):
        table = _table_of(op)
        if table is None:
            others.append(op)
        else:
            by_table.setdefault(table, []).append(op)
    turned: list[MigrateOperation] = []
    for (schema, name), table_ops in by_table.items():
        container = ops.ModifyTableOps(name, table_ops, schema=schema)
        keep_unique_rules(container)
        keep_indexes(container)  # an index rebuilt under its name: beside the other one
        turned.extend(container.ops)
    return [*reversed(others), *turned]
