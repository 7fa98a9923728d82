"""The Alembic plugin: ``setup(plugin)`` registers pgkeel's autogenerate comparators.

Alembic calls ``setup`` for the ``alembic.plugins`` entry point ``pgkeel.autogenerate``; an
``env.py`` turns the plugin on by naming it in ``autogenerate_plugins`` (``run_migrations`` does).
The comparators, in the order they run:

- ``check_rules`` (autogenerate, first): the model rules; any violation stops autogenerate.
- ``cover_foreign_keys`` (each table, first): adds the index each foreign key needs.
- ``compare_index_predicates`` (each table, last): an index whose partial predicate changed, or
  that a failed ``CREATE INDEX CONCURRENTLY`` left INVALID: both are rebuilt.
- ``compare_server_defaults`` (each column, first): a plain server default compared as
  PostgreSQL stores it (``compare_server_default=True`` turns the comparison on).
- ``compare_collations`` (each column, last): a collation the model adds, removes or changes
  (Alembic compares one only when both sides name one); rendered as a type change.
- ``compare_check_constraints`` (each table, last): named CHECK constraints, new or changed.
- ``compare_primary_keys`` (each table, last): a primary key whose columns changed, and a
  column that becomes or stops being generated (Alembic only warns).
- ``compare_database_objects`` (schemas, last): trigger functions, triggers, RLS, policies.
- ``compare_enum_types`` (schemas, last): native enum types and their values.

Alembic imports this module whenever it is itself imported (any process, any command), so the
module imports nothing but ``alembic.util``: the comparators import what they use (pgkeel, the
rule engine, the rest of Alembic) when they first run. Those that run per table or per column
import only once a cheap test has not settled the item, and import a module as an attribute of
its package (``from alembic_extensions import checks``): ``from package.module import name``
first looks ``__path__`` up on the module, and the ``AttributeError`` that lookup raises costs a
microsecond and a half on every call.
"""

from __future__ import annotations

import logging
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from alembic.util import CommandError, DispatchPriority, PriorityDispatchResult

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from alembic.autogenerate.api import AutogenContext
    from alembic.operations.ops import AlterColumnOp, ModifyTableOps, UpgradeOps
    from alembic.runtime.plugins import Plugin
    from sqlalchemy import Column, Index, Table

    from alembic_extensions.catalog import Row
    from pgkeel.settings import Settings

CONTINUE = PriorityDispatchResult.CONTINUE
_LOG = logging.getLogger("alembic_extensions")
SETTINGS_OPTION = "pgkeel_settings"
"""``context.configure()`` option: the project's ``pgkeel.settings.Settings`` (``run_migrations``
reads them from ``[tool.pgkeel]``; without it the plugin reads the nearest pyproject.toml)."""
RULES_OPTION = "pgkeel_rules"
"""``context.configure()`` option: False turns the model rules off (``pgkeel check`` runs them
separately before the drift check)."""


_INCLUDED: WeakKeyDictionary[AutogenContext, list[Table]] = WeakKeyDictionary()


def included_tables(autogen_context: AutogenContext) -> list[Table]:
    """The model tables this autogenerate run compares (``include_object`` applied).

    Worked out once per run: the rules and both schema comparators ask for them.
    """
    cached = _INCLUDED.get(autogen_context)
    if cached is None:
        cached = [
            table
            for table in autogen_context.sorted_tables
            if autogen_context.run_object_filters(table, table.name, "table", False, None)  # noqa: FBT003
        ]
        _INCLUDED[autogen_context] = cached
    return list(cached)


def check_rules(
    autogen_context: AutogenContext, _upgrade_ops: UpgradeOps
) -> PriorityDispatchResult:
    """Stop autogenerate with every rule violation of the models, before anything is compared."""
    from alembic_extensions.errors import ModelRulesError  # noqa: PLC0415  # see the module doc
    from alembic_extensions.rules import check_tables, format_violations, split_by_level  # noqa: PLC0415
    from pgkeel.errors import SettingsError  # noqa: PLC0415

    if not autogen_context.opts.get(RULES_OPTION, True):
        return CONTINUE
    try:
        settings = project_settings(autogen_context)
        found = check_tables(included_tables(autogen_context), settings)
    except SettingsError as exc:
        raise CommandError(str(exc)) from None
    errors, warnings = split_by_level(found, settings)
    if errors:
        raise ModelRulesError(errors)
    if warnings and _LOG.isEnabledFor(logging.WARNING):
        heading = "pgkeel: warnings ([tool.pgkeel.rules] sets these rules to warn)"
        _LOG.warning("%s", format_violations(warnings, heading=heading))
    return CONTINUE


def project_settings(autogen_context: AutogenContext) -> Settings:
    """The settings ``run_migrations`` passed, else ``[tool.pgkeel]`` of the nearest pyproject."""
    from pgkeel.settings import load_settings  # noqa: PLC0415

    given = autogen_context.opts.get(SETTINGS_OPTION)
    return given if given is not None else load_settings()


def cover_foreign_keys(
    _autogen_context: AutogenContext,
    _modify_table_ops: ModifyTableOps,
    _schema: str | None,
    _table_name: str,
    _conn_table: Table | None,
    metadata_table: Table | None,
) -> PriorityDispatchResult:
    """Give the model table the indexes its foreign keys need; Alembic then compares them.

    A table without foreign keys needs none: one attribute read decides it, with no import.
    """
    if metadata_table is None or not metadata_table.foreign_keys:
        return CONTINUE
    from pgkeel import indexes  # noqa: PLC0415  # see the module doc

    indexes.add_foreign_key_indexes(metadata_table)
    return CONTINUE


def compare_index_predicates(
    autogen_context: AutogenContext,
    modify_table_ops: ModifyTableOps,
    _schema: str | None,
    _table_name: str,
    conn_table: Table | None,
    metadata_table: Table | None,
) -> PriorityDispatchResult:
    """Rebuild an index whose ``WHERE`` predicate is all that changed, or that is INVALID."""
    if conn_table is None or metadata_table is None or not metadata_table.indexes:
        return CONTINUE
    from alembic_extensions import indexes  # noqa: PLC0415  # see the module doc

    reflected = {index.name: index for index in conn_table.indexes}
    touched = _touched_indexes(modify_table_ops)
    for index in sorted(metadata_table.indexes, key=_index_order):
        old = reflected.get(index.name)
        if old is None or index.name in touched:
            continue
        if not autogen_context.run_object_filters(index, index.name, "index", False, old):  # noqa: FBT003
            continue
        connection = autogen_context.connection
        if indexes.is_invalid(old) or indexes.predicate_changed(
            index, old, autogen_context.dialect, connection
        ):
            from alembic.operations.ops import CreateIndexOp, DropIndexOp  # noqa: PLC0415

            modify_table_ops.ops.append(DropIndexOp.from_index(old))
            modify_table_ops.ops.append(CreateIndexOp.from_index(index))
    return CONTINUE


def _index_order(index: Index) -> str:
    return str(index.name)


def _touched_indexes(modify_table_ops: ModifyTableOps) -> set[str | None]:
    """The names of the indexes Alembic already creates or drops on the table (usually none)."""
    if not modify_table_ops.ops:
        return set()
    from alembic.operations.ops import CreateIndexOp, DropIndexOp  # noqa: PLC0415

    index_ops = (CreateIndexOp, DropIndexOp)
    return {
        getattr(op, "index_name", None) for op in modify_table_ops.ops if isinstance(op, index_ops)
    }


def compare_check_constraints(
    autogen_context: AutogenContext,
    modify_table_ops: ModifyTableOps,
    _schema: str | None,
    _table_name: str,
    conn_table: Table | None,
    metadata_table: Table | None,
) -> PriorityDispatchResult:
    """Add the model's named CHECK constraints the table lacks; replace the changed ones.

    A new table gets its columns' checks, which Alembic's ``create_table`` leaves out.
    """
    if metadata_table is None or autogen_context.dialect is None:
        return CONTINUE
    from alembic_extensions import checks  # noqa: PLC0415  # see the module doc

    if conn_table is None:
        modify_table_ops.ops.extend(checks.new_table_column_checks(metadata_table))
        return CONTINUE
    modify_table_ops.ops.extend(
        checks.check_constraint_ops(
            metadata_table, conn_table, autogen_context.dialect, autogen_context.connection
        )
    )
    return CONTINUE


def compare_primary_keys(
    _autogen_context: AutogenContext,
    modify_table_ops: ModifyTableOps,
    _schema: str | None,
    _table_name: str,
    conn_table: Table | None,
    metadata_table: Table | None,
) -> PriorityDispatchResult:
    """A primary key whose columns changed, a column whose generation changed (both refused)."""
    if conn_table is None or metadata_table is None:
        return CONTINUE
    if _keys_and_generation_kept(metadata_table, conn_table):  # nearly every table
        return CONTINUE
    from alembic_extensions import generated, keys  # noqa: PLC0415  # see the module doc

    modify_table_ops.ops.extend(keys.primary_key_ops(metadata_table, conn_table))
    modify_table_ops.ops.extend(generated.generated_ops(metadata_table, conn_table))
    return CONTINUE


def _keys_and_generation_kept(model: Table, reflected: Table) -> bool:
    """Whether the primary key's columns are the same and no column is generated, on both sides.

    ``keys`` and ``generated`` find no change then; the test spares their import in a run
    where no table has one.
    """
    model_key = [column.name for column in model.primary_key.columns]
    if model_key != [column.name for column in reflected.primary_key.columns]:
        return False
    return not _generated_columns(model) and not _generated_columns(reflected)


def _generated_columns(table: Table) -> list[Column[Any]]:
    return [column for column in table.columns if column.computed is not None]


def compare_server_defaults(
    autogen_context: AutogenContext,
    alter_column_op: AlterColumnOp,
    _schema: str | None,
    _table_name: str,
    _column_name: str,
    conn_col: Column[Any],
    metadata_col: Column[Any],
) -> PriorityDispatchResult:
    """A changed plain server default, compared as PostgreSQL stores it (no false difference).

    Most columns have a default on neither side: nothing changed, and two attribute reads and
    no import decide them, on every column of every run.
    """
    if autogen_context.dialect is None:
        return CONTINUE
    if conn_col.server_default is None and metadata_col.server_default is None:
        alter_column_op.existing_server_default = None
        return PriorityDispatchResult.STOP
    from alembic_extensions import defaults  # noqa: PLC0415  # see the module doc

    changed = defaults.default_changed(
        autogen_context.connection, autogen_context.dialect, conn_col, metadata_col
    )
    if changed is None:
        return CONTINUE
    alter_column_op.existing_server_default = conn_col.server_default
    if changed:
        alter_column_op.modify_server_default = metadata_col.server_default
    return PriorityDispatchResult.STOP


def compare_collations(
    autogen_context: AutogenContext,
    alter_column_op: AlterColumnOp,
    _schema: str | None,
    _table_name: str,
    _column_name: str,
    conn_col: Column[Any],
    metadata_col: Column[Any],
) -> PriorityDispatchResult:
    """A changed collation, as a change to the model's type (``compare_type=False``: none).

    Attribute reads and no import settle nearly every column, on every column of every run. A
    reflected type without a collation is no string type (a number, a timestamp, JSON), whose
    collation cannot change (``collation_changed``); it is read before the model's, as a type
    decorator reads its implementation's by raising and catching an ``AttributeError`` when it
    has none. Then most string columns name no collation on either side.
    """
    reflected = conn_col.type
    if not hasattr(reflected, "collation"):
        return CONTINUE
    if getattr(metadata_col.type, "collation", None) is getattr(reflected, "collation", None):
        return CONTINUE
    from alembic_extensions.columns import collation_changed  # noqa: PLC0415

    if autogen_context.opts.get("compare_type") is False or alter_column_op.modify_type is not None:
        return CONTINUE
    if collation_changed(conn_col, metadata_col):
        alter_column_op.existing_type = conn_col.type
        alter_column_op.modify_type = metadata_col.type
    return CONTINUE


def compare_database_objects(
    autogen_context: AutogenContext, upgrade_ops: UpgradeOps, schemas: set[str | None]
) -> PriorityDispatchResult:
    """Plan the trigger function, trigger, RLS and policy operations (from one catalog query)."""
    from alembic.operations.ops import DropTableOp  # noqa: PLC0415

    from alembic_extensions.catalog import read_catalog  # noqa: PLC0415
    from alembic_extensions.objects import Planner, desired_objects  # noqa: PLC0415

    default, tables, rows = _compared(autogen_context, schemas)
    catalog = read_catalog(rows, default)
    managed = {(_local(t.schema, default), t.name) for t in tables}
    dropped = {
        (_local(op.schema, default), op.table_name)
        for op in upgrade_ops.ops
        if isinstance(op, DropTableOp)
    }
    plan = Planner(catalog, managed, dropped).build(desired_objects(tables, default))
    upgrade_ops.ops[:0] = plan.before
    upgrade_ops.ops.extend(plan.after)
    _drop_runtime_info(upgrade_ops)
    return CONTINUE


def compare_enum_types(
    autogen_context: AutogenContext, upgrade_ops: UpgradeOps, schemas: set[str | None]
) -> PriorityDispatchResult:
    """Create, drop and extend native enum types (see ``alembic_extensions.enums``)."""
    from alembic_extensions import enums  # noqa: PLC0415

    default, tables, rows = _compared(autogen_context, schemas)
    plan = enums.plan_enums(
        enums.model_enums(tables, default),
        enums.database_enums(rows, default),
        enums.enum_columns(rows, default),
        upgrade_ops,
    )
    enums.apply_enum_plan(upgrade_ops, plan)
    _register_if_planned(upgrade_ops)
    return CONTINUE


def _register_if_planned(upgrade_ops: UpgradeOps) -> None:
    """Register pgkeel's operations and renderers once the comparison planned any operation.

    This is the last comparator: an ``env.py`` that lists the plugin without ``run_migrations``
    gets pgkeel's operations rendered, while a comparison that found nothing imports none of them.
    """
    from alembic_extensions.registration import ensure_registered  # noqa: PLC0415

    if not upgrade_ops.is_empty():
        ensure_registered()


def _compared(
    autogen_context: AutogenContext, schemas: set[str | None]
) -> tuple[str, list[Table], Mapping[str, list[Row]]]:
    """The default schema, the model tables and the catalog rows a schema comparator compares.

    The catalog is read once per run (one statement) for every comparator that asks.
    """
    from alembic_extensions.catalog import rows_of_run  # noqa: PLC0415

    dialect = autogen_context.dialect
    if autogen_context.connection is None or dialect is None:
        raise CommandError("pgkeel's comparators need a database connection.")
    default = str(dialect.default_schema_name)
    tables = included_tables(autogen_context)
    names = {schema or default for schema in schemas} | {t.schema or default for t in tables}
    return default, tables, rows_of_run(autogen_context, sorted(names))


def _drop_runtime_info(upgrade_ops: UpgradeOps) -> None:
    """Keep pgkeel's ``info`` entries (object descriptions, opt-outs) out of ``create_table``.

    Alembic writes a table's ``info`` into the migration; pgkeel's entries hold Python objects
    that the migration would not know (``NameError``) and that no migration needs.
    """
    from alembic.operations.ops import CreateTableOp  # noqa: PLC0415

    for op in upgrade_ops.ops:
        if isinstance(op, CreateTableOp) and op.info:
            op.info = {key: value for key, value in op.info.items() if not _is_pgkeel(key)}


def _is_pgkeel(key: object) -> bool:
    return isinstance(key, str) and key.startswith("pgkeel_")


def _local(schema: str | None, default: str) -> str:
    return "" if schema in (None, default) else str(schema)


def setup(plugin: Plugin) -> None:
    """Register pgkeel's comparators with ``plugin`` (called by Alembic, once per process)."""
    plugin.add_autogenerate_comparator(check_rules, "autogenerate", priority=DispatchPriority.FIRST)
    plugin.add_autogenerate_comparator(
        cover_foreign_keys, "table", "pgkeel_fk_indexes", priority=DispatchPriority.FIRST
    )
    plugin.add_autogenerate_comparator(
        compare_index_predicates, "table", "pgkeel_index_predicates", priority=DispatchPriority.LAST
    )
    plugin.add_autogenerate_comparator(
        compare_server_defaults, "column", "server_default", priority=DispatchPriority.FIRST
    )
    plugin.add_autogenerate_comparator(
        compare_collations, "column", "pgkeel_collation", priority=DispatchPriority.LAST
    )
    plugin.add_autogenerate_comparator(
        compare_check_constraints, "table", "pgkeel_checks", priority=DispatchPriority.LAST
    )
    plugin.add_autogenerate_comparator(
        compare_primary_keys, "table", "pgkeel_primary_keys", priority=DispatchPriority.LAST
    )
    plugin.add_autogenerate_comparator(
        compare_database_objects, "schema", "pgkeel_objects", priority=DispatchPriority.LAST
    )
    plugin.add_autogenerate_comparator(
        compare_enum_types, "schema", "pgkeel_enums", priority=DispatchPriority.LAST
    )


class _PluginModule(ModuleType):
    """This module, which also iterates as a collection holding itself.

    Alembic 1.18.0 to 1.20.0 iterate over what an ``alembic.plugins`` entry point loads (and so
    fail on a module, in every process that imports ``alembic.autogenerate``); later versions
    take the module itself. Being both, the entry point works with every Alembic >= 1.18.
    """

    def __iter__(self) -> Iterator[ModuleType]:
        return iter((self,))


sys.modules[__name__].__class__ = _PluginModule
