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

from alembic_extensions.ops import (
    ConcurrentCreateIndexOp,
    ConcurrentDropIndexOp,
    DropReplacedRuleOp,
    RenameIndexOp,
    UniqueUsingIndexOp,
)
from pgkeel.naming import fit_identifier

if TYPE_CHECKING:
    from alembic.operations.ops import MigrateOperation

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
    dropped = {name for op in container.ops if (name := _dropped_unique_name(op))}
    if not builds or not dropped:
        return
    renames: list[MigrateOperation] = []
    for name in sorted(dropped & builds.keys()):
        build = builds[name]
        build.create.index_name = temporary_name(name)
        build.drop_leftover = True
        renames.append(RenameIndexOp(build.create.index_name, name, container.schema))
    new = {str(build.create.index_name) for build in builds.values()}
    kept: list[MigrateOperation] = []
    for op in container.ops:
        name = _dropped_unique_name(op)
        if name is None:
            kept.append(op)
            continue
        successor = temporary_name(name)  # the index built in its place, else every new one
        replaced_by = [successor] if successor in new else sorted(new)
        kept.append(_replaced(op, name, container.schema, replaced_by))
    container.ops = [*kept, *renames]


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
