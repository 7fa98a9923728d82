"""Explicit, idempotent registration of pgkeel's operations, renderers and Alembic plugin.

Nothing is registered when a module is imported: ``run_migrations`` calls
``ensure_registered()`` before migrations run, and before a revision that holds operations is
written; a comparison that finds nothing (a no-op ``alembic check``) needs only the plugin
(``ensure_plugin()``), and never imports the operations, their renderers or the safety rewrite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alembic.autogenerate import renderers
from alembic.operations import Operations
from alembic.runtime.plugins import Plugin
from psycopg import sql

from pgkeel.dbobjects import TriggerFunction, create_statements, ddl

if TYPE_CHECKING:
    from alembic_extensions import enums, ops
    from alembic_extensions.backfill import BackfillOp
    from alembic_extensions.not_null import AddNotNullCheckOp, SetNotNullOp

PLUGIN_NAME = "pgkeel.autogenerate"
"""The plugin's name in ``autogenerate_plugins`` (and of its ``alembic.plugins`` entry point)."""


def _create(operations: Operations, operation: ops.CreateObjectOp | ops.ReplaceFunctionOp) -> None:
    for statement in create_statements(operation.target):
        operations.execute(ddl(statement))


def _drop(operations: Operations, operation: ops.DropObjectOp) -> None:
    statement = operation.target.drop_sql()
    if isinstance(operation.target, TriggerFunction):
        # pgkeel drops its own trigger function once no table of the models uses it.
        statement = sql.SQL("-- squawk-ignore ban-drop-function\n") + statement
    operations.execute(ddl(statement))


def _validate(operations: Operations, operation: ops.ValidateConstraintOp) -> None:
    operations.execute(ddl(operation.statement()))


def _rename_index(operations: Operations, operation: ops.RenameIndexOp) -> None:
    operations.execute(ddl(operation.statement()))


def _unique_using_index(operations: Operations, operation: ops.UniqueUsingIndexOp) -> None:
    operations.execute(ddl(operation.statement()))


def _drop_replaced(operations: Operations, operation: ops.DropReplacedRuleOp) -> None:
    """Online, the check then the drop; offline, both in one statement (``offline_statement``)."""
    if operations.get_context().as_sql:
        operations.execute(ddl(operation.offline_statement()))
        return
    operations.execute(ddl(operation.check_statement()))
    operations.execute(ddl(operation.drop_statement()))


def _in_autocommit(operations: Operations) -> bool:
    options = operations.get_bind().get_execution_options()
    return options.get("isolation_level") == "AUTOCOMMIT"


def _backfill(operations: Operations, operation: BackfillOp) -> None:
    """Batches in their own transactions: inside an autocommit block, opened here if needed."""
    from alembic_extensions.backfill import run_backfill  # noqa: PLC0415  # see the module doc

    context = operations.get_context()
    if context.as_sql:
        with context.autocommit_block():
            operations.execute(ddl(operation.offline_statement()))
        return
    if _in_autocommit(operations):
        run_backfill(operations.get_bind(), operation)
        return
    with context.autocommit_block():
        run_backfill(operations.get_bind(), operation)


def _add_not_null_check(operations: Operations, operation: AddNotNullCheckOp) -> None:
    operations.execute(ddl(operation.statement()))


def _set_not_null(operations: Operations, operation: SetNotNullOp) -> None:
    for statement in operation.statements():
        operations.execute(ddl(statement))


def _nothing(_operations: Operations, _operation: ops.NoOp) -> None:
    """A no-op runs nothing."""


def _register_pair(names: ops.OperationNames) -> None:
    """``op.create_<kind>`` and ``op.drop_<kind>``, both from one ``ObjectOp`` classmethod."""
    from alembic_extensions import ops  # noqa: PLC0415  # see the module doc

    source = getattr(ops.ObjectOp, names.source).__func__
    doc = source.__doc__
    for name, op_class in ((names.create, ops.CreateObjectOp), (names.drop, ops.DropObjectOp)):
        source.__doc__ = doc  # Alembic rewrites the source's docstring when it registers it
        Operations.register_operation(name, names.source)(op_class)


def _register_table_renderers() -> None:
    """Renderers of the column and key changes Alembic's autogenerate cannot write."""
    from alembic_extensions import rendering  # noqa: PLC0415  # see the module doc
    from alembic_extensions.generated import GeneratedChangeOp, IdentityChangeOp  # noqa: PLC0415
    from alembic_extensions.keys import PrimaryKeyOp  # noqa: PLC0415

    renderers.dispatch_for(PrimaryKeyOp)(rendering.render_primary_key)
    renderers.dispatch_for(GeneratedChangeOp)(rendering.render_generated_change)
    renderers.dispatch_for(IdentityChangeOp)(rendering.render_identity_change)


def _register_operations() -> None:
    from alembic_extensions import ops, rendering  # noqa: PLC0415  # see the module doc
    from alembic_extensions.acknowledge import AcknowledgeOp, run_acknowledge  # noqa: PLC0415
    from alembic_extensions.backfill import BackfillOp  # noqa: PLC0415
    from alembic_extensions.loss import AlterColumnUsingOp, RenameColumnOp  # noqa: PLC0415
    from alembic_extensions.not_null import (  # noqa: PLC0415
        AddNotNullCheckOp,
        NotNullStepsOp,
        SetNotNullOp,
    )

    for names in ops.OBJECT_OPERATIONS.values():
        _register_pair(names)
    Operations.register_operation("replace_trigger_function")(ops.ReplaceFunctionOp)
    Operations.register_operation("validate_constraint")(ops.ValidateConstraintOp)
    Operations.implementation_for(ops.CreateObjectOp)(_create)
    Operations.implementation_for(ops.DropObjectOp)(_drop)
    Operations.implementation_for(ops.ReplaceFunctionOp)(_create)
    Operations.implementation_for(ops.ValidateConstraintOp)(_validate)
    Operations.register_operation("rename_index")(ops.RenameIndexOp)
    Operations.register_operation("create_unique_constraint_using_index")(ops.UniqueUsingIndexOp)
    Operations.implementation_for(ops.RenameIndexOp)(_rename_index)
    Operations.implementation_for(ops.UniqueUsingIndexOp)(_unique_using_index)
    Operations.register_operation("drop_replaced_unique")(ops.DropReplacedRuleOp)
    Operations.implementation_for(ops.DropReplacedRuleOp)(_drop_replaced)
    Operations.register_operation("backfill")(BackfillOp)
    Operations.implementation_for(BackfillOp)(_backfill)
    Operations.implementation_for(ops.NoOp)(_nothing)
    Operations.register_operation("add_not_null_check")(AddNotNullCheckOp)
    Operations.implementation_for(AddNotNullCheckOp)(_add_not_null_check)
    Operations.register_operation("set_not_null")(SetNotNullOp)
    Operations.implementation_for(SetNotNullOp)(_set_not_null)
    renderers.dispatch_for(BackfillOp)(rendering.render_backfill)
    renderers.dispatch_for(AddNotNullCheckOp)(rendering.render_add_not_null_check)
    renderers.dispatch_for(SetNotNullOp)(rendering.render_set_not_null)
    renderers.dispatch_for(NotNullStepsOp)(rendering.render_not_null_steps)
    Operations.register_operation("acknowledge")(AcknowledgeOp)
    Operations.implementation_for(AcknowledgeOp)(run_acknowledge)
    renderers.dispatch_for(AcknowledgeOp)(rendering.render_acknowledge)
    _register_table_renderers()
    _register_enum_operations()
    renderers.dispatch_for(AlterColumnUsingOp)(rendering.render_alter_using)
    renderers.dispatch_for(RenameColumnOp)(rendering.render_rename_column)
    renderers.dispatch_for(ops.CreateObjectOp)(rendering.render_create)
    renderers.dispatch_for(ops.DropObjectOp)(rendering.render_drop)
    renderers.dispatch_for(ops.ReplaceFunctionOp)(rendering.render_replace)
    renderers.dispatch_for(ops.ValidateConstraintOp)(rendering.render_validate)
    renderers.dispatch_for(ops.AutocommitBlockOp)(rendering.render_autocommit_block)
    renderers.dispatch_for(ops.ConcurrentCreateIndexOp)(rendering.render_concurrent_create)
    renderers.dispatch_for(ops.ConcurrentDropIndexOp)(rendering.render_concurrent_drop)
    renderers.dispatch_for(ops.DroppedWithTableOp)(rendering.render_dropped_with_table)
    renderers.dispatch_for(ops.DropColumnAfterRulesOp)(rendering.render_column_drop_after_rules)
    renderers.dispatch_for(ops.NoOp)(rendering.render_nothing)
    renderers.dispatch_for(ops.CommentOp)(rendering.render_comment)
    renderers.dispatch_for(ops.DropReplacedRuleOp)(rendering.render_drop_replaced)
    renderers.dispatch_for(ops.RenameIndexOp)(rendering.render_rename_index)
    renderers.dispatch_for(ops.UniqueUsingIndexOp)(rendering.render_unique_using_index)


def _run_statement(
    operations: Operations,
    operation: enums.CreateEnumOp | enums.DropEnumOp | enums.AddEnumValueOp,
) -> None:
    operations.execute(ddl(operation.statement()))


def _register_enum_operations() -> None:
    from alembic_extensions import enums, rendering  # noqa: PLC0415  # see the module doc

    doc = enums.EnumTypeOp.enum_type.__func__.__doc__  # type: ignore[attr-defined]
    for name, op_class in (
        ("create_enum_type", enums.CreateEnumOp),
        ("drop_enum_type", enums.DropEnumOp),
    ):
        enums.EnumTypeOp.enum_type.__func__.__doc__ = doc  # type: ignore[attr-defined]
        Operations.register_operation(name, "enum_type")(op_class)
        Operations.implementation_for(op_class)(_run_statement)
    Operations.register_operation("add_enum_value")(enums.AddEnumValueOp)
    Operations.implementation_for(enums.AddEnumValueOp)(_run_statement)
    renderers.dispatch_for(enums.CreateEnumOp)(rendering.render_enum_type)
    renderers.dispatch_for(enums.DropEnumOp)(rendering.render_enum_type)
    renderers.dispatch_for(enums.AddEnumValueOp)(rendering.render_add_enum_value)


def operations_registered() -> bool:
    """Whether ``op.create_trigger`` and the other pgkeel operations exist already."""
    return hasattr(Operations, "create_trigger_function")


def _register_plugin() -> None:
    """Set the plugin up by hand when its entry point is not installed (a source checkout)."""
    from alembic_extensions import plugin  # noqa: PLC0415  # the plugin module imports this one

    try:
        Plugin.setup_plugin_from_module(plugin, PLUGIN_NAME)
    except ValueError:  # already set up from the entry point: Alembic refuses a second one
        return


def ensure_plugin() -> None:
    """Set the plugin's comparators up, once per process (the entry point usually has)."""
    _register_plugin()


def ensure_registered() -> None:
    """Register the operations, their renderers and the plugin, once per process."""
    if not operations_registered():
        _register_operations()
    _register_plugin()
