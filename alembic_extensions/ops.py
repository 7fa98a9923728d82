"""Reversible migration operations for pgkeel's database objects, and an autocommit block.

Each object operation holds a ``pgkeel.dbobjects`` value object and knows its reverse, so a
migration's downgrade is derived from its upgrade. In a migration they read as
``op.create_trigger_function(...)``, ``op.create_trigger(...)``,
``op.enable_row_level_security(...)``, ``op.create_policy(...)`` and their ``drop_``/``disable_``
counterparts, which take the same arguments (a drop keeps the definition for its reverse);
``op.replace_trigger_function(...)`` changes a function in place, because triggers depend on it.
They run ``dbobjects.create_statements`` / ``drop_sql``, the same DDL and pgkeel comment that
``create_all`` runs.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, NamedTuple

from alembic.operations import MigrateOperation, ops
from psycopg import sql

from pgkeel._values import replace
from pgkeel.dbobjects import (
    DatabaseObject,
    Policy,
    RowLevelSecurity,
    Trigger,
    TriggerFunction,
    qualified,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from alembic.operations import Operations


class OperationNames(NamedTuple):
    """How migrations name the operations on one kind of object."""

    source: str
    """The ``ObjectOp`` classmethod both operations call."""
    create: str
    drop: str


OBJECT_OPERATIONS = {
    "function": OperationNames(
        "trigger_function", "create_trigger_function", "drop_trigger_function"
    ),
    "trigger": OperationNames("trigger", "create_trigger", "drop_trigger"),
    "row_security": OperationNames(
        "row_level_security", "enable_row_level_security", "disable_row_level_security"
    ),
    "policy": OperationNames("policy", "create_policy", "drop_policy"),
}
"""The ``op.<name>`` that creates and the one that drops each kind of object, by kind."""


class ObjectOp(MigrateOperation):
    """An operation on one pgkeel database object.

    The classmethods below are the ``op.create_...``/``op.drop_...`` calls of a migration: each
    is registered twice, once for ``CreateObjectOp`` and once for ``DropObjectOp``, under the
    names in ``OBJECT_OPERATIONS``.
    """

    verb = ""

    def __init__(self, target: DatabaseObject) -> None:
        self.target = target

    def to_diff_tuple(self) -> tuple[Any, ...]:
        """``("add_trigger", obj)`` and the like, as ``alembic check`` reports it."""
        return (f"{self.verb}_{self.target.identity[0]}", self.target)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.target!r})"

    @classmethod
    def trigger_function(
        cls, operations: Operations, name: str, body: str, *, schema: str | None = None
    ) -> None:
        """A PL/pgSQL trigger function; ``body`` goes between BEGIN and END (kept by a drop)."""
        operations.invoke(cls(TriggerFunction(name=name, body=body, schema=schema)))

    @classmethod
    def trigger(  # noqa: PLR0913  # the operation's public signature
        cls,
        operations: Operations,
        table: str,
        name: str,
        *,
        function: str,
        timing: str = "BEFORE",
        events: Sequence[str] = ("UPDATE",),
        schema: str | None = None,
        function_schema: str | None = None,
    ) -> None:
        """A ``FOR EACH ROW`` trigger on ``table`` that runs ``function``."""
        trigger = Trigger(
            table=table,
            name=name,
            function=TriggerFunction(name=function, body="", schema=function_schema),  # by name
            timing=timing,
            events=tuple(events),
            schema=schema,
        )
        operations.invoke(cls(trigger))

    @classmethod
    def row_level_security(
        cls, operations: Operations, table: str, *, schema: str | None = None
    ) -> None:
        """Row-level security on ``table``: ENABLE and FORCE, or NO FORCE and DISABLE."""
        operations.invoke(cls(RowLevelSecurity(table=table, schema=schema)))

    @classmethod
    def policy(  # noqa: PLR0913  # the operation's public signature
        cls,
        operations: Operations,
        table: str,
        name: str,
        *,
        using: str,
        with_check: str,
        schema: str | None = None,
    ) -> None:
        """A permissive ``FOR ALL`` row-level security policy."""
        policy = Policy(table=table, name=name, using=using, with_check=with_check, schema=schema)
        operations.invoke(cls(policy))


class CreateObjectOp(ObjectOp):
    """Create a function, trigger or policy, or enable row-level security."""

    verb = "add"

    def reverse(self) -> DropObjectOp:
        """Dropping the same object."""
        return DropObjectOp(self.target)


class DropObjectOp(ObjectOp):
    """Drop a function, trigger or policy, or disable row-level security."""

    verb = "remove"

    def reverse(self) -> CreateObjectOp:
        """Creating the same object again."""
        return CreateObjectOp(self.target)


class ReplaceFunctionOp(ObjectOp):
    """Change a trigger function's body in place (triggers that use it keep working)."""

    verb = "modify"

    def __init__(self, target: TriggerFunction, old: TriggerFunction) -> None:
        super().__init__(target)
        self.old = old

    def reverse(self) -> ReplaceFunctionOp:
        """Putting the old body back."""
        return ReplaceFunctionOp(self.old, self.target)  # type: ignore[arg-type]

    @classmethod
    def replace_trigger_function(
        cls,
        operations: Operations,
        name: str,
        body: str,
        *,
        old_body: str,
        schema: str | None = None,
    ) -> None:
        """``CREATE OR REPLACE`` a trigger function with a new body."""
        new = TriggerFunction(name=name, body=body, schema=schema)
        operations.invoke(cls(new, replace(new, body=old_body)))


class ConcurrentCreateIndexOp(MigrateOperation):
    """Build an index ``CONCURRENTLY``, so that a run that failed half-way can simply run again.

    A failed concurrent build leaves an invalid index behind, which ``IF NOT EXISTS`` would
    then keep; so the rendered migration drops any leftover first (``IF EXISTS``), then builds.
    """

    def __init__(self, create: ops.CreateIndexOp, *, drop_leftover: bool = True) -> None:
        create.kw["postgresql_concurrently"] = True
        create.if_not_exists = True
        self.create = create
        self.drop_leftover = drop_leftover

    def leftover(self) -> ops.DropIndexOp:
        """``DROP INDEX CONCURRENTLY IF EXISTS`` of the index about to be built."""
        return ops.DropIndexOp(
            str(self.create.index_name),
            table_name=self.create.table_name,
            schema=self.create.schema,
            if_exists=True,
            postgresql_concurrently=True,
        )

    def reverse(self) -> ConcurrentDropIndexOp:
        """Dropping the index concurrently."""
        return ConcurrentDropIndexOp(self.create.reverse())

    def to_diff_tuple(self) -> tuple[Any, ...]:
        """The index's ``add_index`` diff."""
        return self.create.to_diff_tuple()


class ConcurrentDropIndexOp(MigrateOperation):
    """Drop an index ``CONCURRENTLY IF EXISTS`` (no lock that blocks queries on the table)."""

    def __init__(self, drop: ops.DropIndexOp) -> None:
        drop.kw["postgresql_concurrently"] = True
        drop.if_exists = True
        self.drop = drop

    def reverse(self) -> ConcurrentCreateIndexOp:
        """Building the index again, concurrently."""
        create = self.drop.reverse()
        create.kw.pop("postgresql_concurrently", None)
        return ConcurrentCreateIndexOp(create)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        """The index's ``remove_index`` diff."""
        return self.drop.to_diff_tuple()


class DroppedWithTableOp(MigrateOperation):
    """An index of a table (or column) the migration drops: the ``DROP`` removes it too.

    The downgrade builds it again; the upgrade has no ``DROP INDEX`` that would first take an
    ACCESS EXCLUSIVE lock on a table that is about to go anyway.
    """

    def __init__(self, drop: ops.DropIndexOp, column: str | None = None) -> None:
        self.drop = drop
        self.column = column
        """The dropped column the index goes with; ``None`` when it goes with its table."""

    def reverse(self) -> ops.CreateIndexOp:
        """Building the index on the table (or column) the downgrade creates again."""
        return self.drop.reverse()

    def to_diff_tuple(self) -> tuple[Any, ...]:
        """The index's ``remove_index`` diff."""
        return self.drop.to_diff_tuple()


def _mark_rebuilds(operations: Sequence[MigrateOperation]) -> None:
    """An index dropped and built again (a new predicate) needs no separate leftover drop."""
    for previous, current in itertools.pairwise(operations):
        if isinstance(previous, ConcurrentDropIndexOp) and isinstance(
            current, ConcurrentCreateIndexOp
        ):
            dropped, built = previous.drop, current.create
            same = (dropped.index_name, dropped.table_name) == (built.index_name, built.table_name)
            current.drop_leftover = current.drop_leftover and not same


class AutocommitBlockOp(MigrateOperation):
    """Operations that must run outside a transaction (``CREATE INDEX CONCURRENTLY``).

    Rendered as ``with op.get_context().autocommit_block():``; everything before it in the
    migration is committed first, which also makes it a separate step after ``NOT VALID``.
    """

    def __init__(self, ops: Sequence[MigrateOperation]) -> None:
        self.ops = list(ops)
        _mark_rebuilds(self.ops)

    def reverse(self) -> AutocommitBlockOp:
        """The reverse of each operation, in reverse order, in an autocommit block too."""
        reversed_ops = [op.reverse() for op in reversed(self.ops)]
        return AutocommitBlockOp([op for op in reversed_ops if not isinstance(op, NoOp)])

    def to_diff_tuple(self) -> tuple[Any, ...]:
        """Diffs of the operations inside (``alembic check`` walks ``ops``)."""
        return tuple(op.to_diff_tuple() for op in self.ops)


class ValidateConstraintOp(MigrateOperation):
    """``ALTER TABLE ... VALIDATE CONSTRAINT``: check existing rows without blocking writes."""

    def __init__(
        self,
        constraint_name: str,
        table_name: str,
        schema: str | None = None,
        *,
        new_table: bool = False,
    ) -> None:
        self.constraint_name = constraint_name
        self.table_name = table_name
        self.schema = schema
        self.new_table = new_table

    def reverse(self) -> NoOp:
        """Nothing: dropping the constraint is the reverse of adding it."""
        return NoOp()

    def to_diff_tuple(self) -> tuple[Any, ...]:
        """``("validate_constraint", table, name)``."""
        return ("validate_constraint", self.table_name, self.constraint_name)

    @classmethod
    def validate_constraint(
        cls,
        operations: Operations,
        constraint_name: str,
        table_name: str,
        *,
        schema: str | None = None,
        new_table: bool = False,
    ) -> None:
        """Validate a constraint added ``NOT VALID`` (takes only a SHARE UPDATE EXCLUSIVE lock).

        ``new_table=True``: the table was created empty by this migration, so validating in the
        transaction that added the constraint scans no rows and holds no lock for long.
        """
        operations.invoke(cls(constraint_name, table_name, schema, new_table=new_table))

    def statement(self) -> sql.Composed:
        """The ``ALTER TABLE ... VALIDATE CONSTRAINT`` statement.

        It tells squawk that it may run outside a transaction (in an autocommit block, where it
        holds its lock for its own scan only): validating a valid constraint again does nothing.
        On a table this migration created, it may also follow the ``NOT VALID`` addition in one
        transaction: the table is empty, the scan instant.
        """
        ignored = "prefer-robust-stmts"
        if self.new_table:  # no rows to scan while the lock of the NOT VALID addition is held
            ignored += ",constraint-missing-not-valid"
        return sql.SQL("-- squawk-ignore {}\nALTER TABLE {} VALIDATE CONSTRAINT {}").format(
            sql.SQL(ignored),
            qualified(self.schema, self.table_name),
            sql.Identifier(self.constraint_name),
        )


class NoOp(MigrateOperation):
    """An operation that does nothing and renders nothing (the reverse of a validation)."""

    def reverse(self) -> NoOp:
        """Still nothing."""
        return self

    def to_diff_tuple(self) -> tuple[Any, ...]:
        """No difference."""
        return ()


class CommentOp(NoOp):
    """A note for the reader of the migration, written as ``# pgkeel: ...`` lines; runs nothing."""

    def __init__(self, text: str) -> None:
        self.text = text

    def reverse(self) -> NoOp:
        """Nothing: the note is about one direction."""
        return NoOp()


class RenameIndexOp(MigrateOperation):
    """``ALTER INDEX ... RENAME TO ...`` (a SHARE UPDATE EXCLUSIVE lock: reads and writes go on).

    A unique index that replaces a rule of the same name is built under a temporary name while
    the old rule still holds, and takes its name once the old one is gone.
    """

    def __init__(self, old_name: str, new_name: str, schema: str | None = None) -> None:
        self.old_name = old_name
        self.new_name = new_name
        self.schema = schema

    def reverse(self) -> RenameIndexOp:
        """Giving the index its old name back."""
        return RenameIndexOp(self.new_name, self.old_name, self.schema)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        """``("rename_index", old, new)``."""
        return ("rename_index", self.old_name, self.new_name)

    @classmethod
    def rename_index(
        cls, operations: Operations, old_name: str, new_name: str, *, schema: str | None = None
    ) -> None:
        """Rename an index without blocking reads or writes."""
        operations.invoke(cls(old_name, new_name, schema))

    def statement(self) -> sql.Composed:
        """The ``ALTER INDEX ... RENAME TO ...`` statement.

        It tells squawk to let its ``renaming-object`` rule pass here: no query names an index,
        so renaming one breaks no client (renaming a table, a column or a constraint can).
        """
        return sql.SQL("-- squawk-ignore renaming-object\nALTER INDEX {} RENAME TO {}").format(
            qualified(self.schema, self.old_name), sql.Identifier(self.new_name)
        )


class RenameConstraintOp(ops.ExecuteSQLOp):
    """``ALTER TABLE ... RENAME CONSTRAINT ... TO ...``, written as ``op.execute``, reversible.

    A check or foreign key whose column a migration renames stays on the column; only its name
    (from the naming convention) follows the column's.
    """

    def __init__(self, table_name: str, old_name: str, new_name: str, schema: str | None) -> None:
        self.table_name = table_name
        self.old_name = old_name
        self.new_name = new_name
        self.schema = schema
        statement = sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
            qualified(schema, table_name), sql.Identifier(old_name), sql.Identifier(new_name)
        )
        super().__init__(statement.as_string())

    def reverse(self) -> RenameConstraintOp:
        """Giving the constraint its old name back."""
        return RenameConstraintOp(self.table_name, self.new_name, self.old_name, self.schema)


class CreateSchemaOp(ops.ExecuteSQLOp):
    """``CREATE SCHEMA IF NOT EXISTS`` for a schema the models name and the database lacks.

    Alembic creates tables, not schemas: the first ``create_table(..., schema='sales')`` failed
    with ``schema "sales" does not exist``. The downgrade drops it only if it is empty again.
    """

    def __init__(self, schema: str) -> None:
        self.schema = schema
        statement = sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
        super().__init__(statement.as_string())

    def reverse(self) -> ops.ExecuteSQLOp:
        """``DROP SCHEMA IF EXISTS`` (RESTRICT: a schema that holds anything stays)."""
        statement = sql.SQL("DROP SCHEMA IF EXISTS {}").format(sql.Identifier(self.schema))
        return ops.ExecuteSQLOp(statement.as_string())


class UniqueUsingIndexOp(MigrateOperation):
    """``ALTER TABLE ... ADD CONSTRAINT name UNIQUE USING INDEX name``.

    The way to add a unique constraint to a table that holds rows: the index is built
    ``CONCURRENTLY`` first, then becomes the constraint with a brief lock and no scan.
    """

    def __init__(self, constraint_name: str, table_name: str, schema: str | None = None) -> None:
        self.constraint_name = constraint_name
        self.table_name = table_name
        self.schema = schema

    def reverse(self) -> ops.DropConstraintOp:
        """Dropping the constraint (its index goes with it)."""
        return ops.DropConstraintOp(
            self.constraint_name, self.table_name, type_="unique", schema=self.schema
        )

    def to_diff_tuple(self) -> tuple[Any, ...]:
        """``("add_unique_using_index", table, name)``."""
        return ("add_unique_using_index", self.table_name, self.constraint_name)

    @classmethod
    def create_unique_constraint_using_index(
        cls,
        operations: Operations,
        constraint_name: str,
        table_name: str,
        *,
        schema: str | None = None,
    ) -> None:
        """Turn the unique index ``constraint_name`` into a unique constraint of that name."""
        operations.invoke(cls(constraint_name, table_name, schema))

    def statement(self) -> sql.Composed:
        """The ``ALTER TABLE ... ADD CONSTRAINT ... UNIQUE USING INDEX ...`` statement."""
        name = sql.Identifier(self.constraint_name)
        return sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} UNIQUE USING INDEX {}").format(
            qualified(self.schema, self.table_name), name, name
        )


def restore_rule_statement(
    schema: str | None, table: str, name: str, constraint: str | None, index: str
) -> str:
    """The statement that brings a rule back as PostgreSQL printed it.

    ``constraint``: ``pg_get_constraintdef`` of the constraint behind the index (None for a
    plain unique index); ``index``: ``pg_get_indexdef`` of the index.
    """
    if constraint is None:
        return index
    statement = sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}")
    return statement.format(
        qualified(schema, table),
        sql.Identifier(name),
        sql.SQL(constraint),  # PostgreSQL's own text
    ).as_string()


class DropExclusionRuleOp(ops.DropConstraintOp):
    """``op.drop_constraint`` of an exclusion rule, whose downgrade adds it back as it was.

    Alembic does not reflect exclusion constraints, so a plain drop could not be reversed:
    ``restore`` is the statement that adds the rule back (``restore_rule_statement``).
    """

    def __init__(self, name: str, table_name: str, restore: str, schema: str | None) -> None:
        super().__init__(name, table_name, schema=schema)
        self.restore = restore

    def reverse(self) -> ops.ExecuteSQLOp:  # type: ignore[override]  # SQL, not a constraint
        """The rule back."""
        return ops.ExecuteSQLOp(self.restore)


class RuleBackOnDowngradeOp(NoOp):
    """A rule PostgreSQL drops with a column: nothing on the way up, the rule back on the way down.

    Placed before the column drop, its reverse runs after the column is added back.
    """

    def __init__(self, restore: str) -> None:
        self.restore = restore

    def reverse(self) -> ops.ExecuteSQLOp:  # type: ignore[override]  # the rule, not nothing
        """The rule back."""
        return ops.ExecuteSQLOp(self.restore)


class DropReplacedRuleOp(MigrateOperation):
    """Drop a unique rule that new unique indexes replace, and only once they are all valid.

    The statement first checks in the database that each index of ``replaced_by`` exists and
    is valid, and stops the migration otherwise: the table is never left without its rule, by a
    generated migration or by one edited by hand. A constraint is dropped in the migration's
    transaction; an index (``index=True``) ``CONCURRENTLY``, in an autocommit block.
    """

    def __init__(  # the operation's public signature
        self,
        name: str,
        table_name: str,
        *,
        replaced_by: Sequence[str],
        index: bool = False,
        schema: str | None = None,
        _reverse: MigrateOperation | None = None,
    ) -> None:
        self.name = name
        self.table_name = table_name
        self.replaced_by = list(replaced_by)
        self.index = index
        self.schema = schema
        self._reverse = _reverse

    def reverse(self) -> MigrateOperation:
        """The rule back, as autogenerate saw it."""
        if self._reverse is None:
            raise ValueError(f"drop_replaced_unique({self.name!r}): the rule's definition is lost")
        return self._reverse

    def to_diff_tuple(self) -> tuple[Any, ...]:
        """``("remove_replaced_unique", table, name, replaced_by)``."""
        return ("remove_replaced_unique", self.table_name, self.name, tuple(self.replaced_by))

    @classmethod
    def drop_replaced_unique(  # noqa: PLR0913  # the operation's public signature
        cls,
        operations: Operations,
        name: str,
        table_name: str,
        *,
        replaced_by: Sequence[str],
        index: bool = False,
        schema: str | None = None,
    ) -> None:
        """Drop unique constraint (or index) ``name`` once every ``replaced_by`` index is valid."""
        operations.invoke(
            cls(name, table_name, replaced_by=replaced_by, index=index, schema=schema)
        )

    def _guard(self) -> sql.Composed:
        """PL/pgSQL that raises unless every replacing index exists and is valid."""
        names = [
            sql.SQL(".").join(sql.Identifier(part) for part in (self.schema, name) if part)
            for name in self.replaced_by
        ]
        wanted = sql.SQL(", ").join(sql.Literal(name.as_string()) for name in names)
        message = (
            f"pgkeel: {self.name} on {self.table_name} is not dropped: the unique index that "
            f"replaces it ({', '.join(self.replaced_by)}) is missing or not valid (a build that "
            "failed). Fix: run the migration again; it builds the index, then drops the old rule."
        )
        return sql.SQL(
            "IF EXISTS (SELECT FROM unnest(ARRAY[{}]::text[]) AS wanted(name) WHERE NOT "
            "coalesce((SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(wanted.name)"
            "), false)) THEN RAISE EXCEPTION {}; END IF;"
        ).format(wanted, sql.Literal(message))

    def check_statement(self) -> sql.Composed:
        """A ``DO`` block that raises unless every replacing index exists and is valid."""
        return _do(sql.SQL("BEGIN {} END").format(self._guard()))

    def offline_statement(self) -> sql.Composed:
        """The check and the drop in one ``DO`` block, for the offline SQL.

        A script run by a client that goes on after an error (``psql`` without
        ``ON_ERROR_STOP``) must not drop the rule after the check failed: the drop runs only in
        the check's own statement. ``CONCURRENTLY`` cannot run in a ``DO`` block, so an index
        is dropped with a plain ``DROP INDEX``: an ACCESS EXCLUSIVE lock on the table for as
        long as the drop takes, and no longer than ``lock_timeout`` waiting for it.
        """
        return _do(sql.SQL("BEGIN {} {}; END").format(self._guard(), self._drop(in_block=True)))

    def _drop(self, *, in_block: bool = False) -> sql.Composed:
        if self.index:
            concurrently = sql.SQL("" if in_block else " CONCURRENTLY")
            return sql.SQL("DROP INDEX{} IF EXISTS {}").format(
                concurrently, qualified(self.schema, self.name)
            )
        return sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
            qualified(self.schema, self.table_name), sql.Identifier(self.name)
        )

    def drop_statement(self) -> sql.Composed:
        """``DROP INDEX CONCURRENTLY IF EXISTS`` or ``ALTER TABLE ... DROP CONSTRAINT IF EXISTS``.

        It tells squawk that this drop is intended: the rule stays, under the new index.
        """
        if self.index:
            return self._drop()
        return sql.SQL("-- squawk-ignore ban-drop-constraint\n") + self._drop()


def _do(body: sql.Composable) -> sql.Composed:
    """``DO '<body>'``: an anonymous PL/pgSQL block."""
    return sql.SQL("DO {}").format(sql.Literal(body.as_string()))


class DropColumnAfterRulesOp(MigrateOperation):
    """A column drop held back until the unique rules that replace the column's rules are valid.

    ``DROP COLUMN`` drops every index that uses the column (as a key, in an expression or in a
    predicate), unique ones included. When the migration replaces such a rule, the column (with
    its acknowledgement) is dropped after the replacing index is built and the old rule is
    dropped, never before: the table keeps a unique rule throughout. It runs after autocommit
    blocks, so it is written ``IF EXISTS``: a run stopped after it can run again.
    """

    def __init__(self, steps: Sequence[MigrateOperation], drop: ops.DropColumnOp) -> None:
        drop.if_exists = True
        self.ops = [*steps, drop]
        self.drop = drop

    def reverse(self) -> ops.AddColumnOp:
        """The column back (before the downgrade builds the old rules on it again)."""
        return self.drop.reverse()

    def to_diff_tuple(self) -> tuple[Any, ...]:
        """The column's ``remove_column`` diff."""
        return self.drop.to_diff_tuple()
