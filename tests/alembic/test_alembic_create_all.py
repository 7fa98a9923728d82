"""create_all and the migrations build the same database: either way, autogenerate finds nothing.

A database made with ``Base.metadata.create_all`` (as test template databases often are) holds
the same tables, indexes, functions, triggers, row-level security, policies and comments as one
made by ``alembic upgrade head``; and ``drop_all`` removes what the migrations made.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest
from alembic.autogenerate import produce_migrations
from alembic.migration import MigrationContext
from alembic.operations.ops import UpgradeOps
from alembic_project import Project, load_models
from sqlalchemy import Column, Connection, MetaData, Table, Text

from alembic_extensions.environment import migrated_tables
from alembic_extensions.plugin import RULES_OPTION
from alembic_extensions.registration import PLUGIN_NAME, ensure_registered
from pgkeel.dbobjects import Policy, RowLevelSecurity, Trigger, TriggerFunction, attach

MakeProject = Callable[[str], Project]
EXAMPLES = ["tenancy", "soft_delete", "fk_index", "safe_ddl", "custom_types", "objects"]

CATALOG = {
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), col_description(c.oid, a.attnum)
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0
          AND c.relname <> 'alembic_version'
    """,
    "tables": """
        SELECT relname, relrowsecurity, relforcerowsecurity, obj_description(c.oid, 'pg_class')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'r' AND relname <> 'alembic_version'
    """,
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace AND conname <> 'alembic_version_pkc'
    """,
    "indexes": """
        SELECT indexname, indexdef FROM pg_indexes
        WHERE schemaname = 'public' AND indexname <> 'alembic_version_pkc'
    """,
    "functions": """
        SELECT proname, prosrc, obj_description(oid, 'pg_proc') FROM pg_proc
        WHERE pronamespace = 'public'::regnamespace
    """,
    "triggers": """
        SELECT tgname, pg_get_triggerdef(oid), obj_description(oid, 'pg_trigger')
        FROM pg_trigger WHERE NOT tgisinternal
    """,
    "policies": """
        SELECT polname, polrelid::regclass::text, polcmd, polpermissive, polroles::text,
               pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid),
               obj_description(oid, 'pg_policy')
        FROM pg_policy
    """,
}


def metadata_of(example: str) -> MetaData:
    """The example's models' metadata (the module the project's env.py imports)."""
    metadata: MetaData = importlib.import_module(load_models(example)).Base.metadata
    return metadata


def catalog(project: Project) -> dict[str, list[tuple[Any, ...]]]:
    """What the database holds, as the catalog describes it (alembic_version left out)."""

    def read(connection: Connection) -> dict[str, list[tuple[Any, ...]]]:
        rows = {kind: connection.exec_driver_sql(sql).all() for kind, sql in CATALOG.items()}
        return {kind: sorted(tuple(row) for row in found) for kind, found in rows.items()}

    return project.run(read)


@pytest.mark.parametrize("example", EXAMPLES)
def test_create_all_builds_what_the_migrations_build(
    make_project: MakeProject, example: str
) -> None:
    migrated = make_project(example)
    migrated.revision("create")
    migrated.upgrade()
    created = make_project(example)  # DATABASE_URL, which Alembic uses, is now this one's
    tables = migrated_tables(metadata_of(example))  # not those marked pgkeel_migrate=False
    created.run(lambda connection: metadata_of(example).create_all(connection, tables))
    assert catalog(created) == catalog(migrated)
    created.check()  # autogenerate against the create_all database finds nothing to do


@pytest.mark.parametrize("example", EXAMPLES)
def test_drop_all_removes_what_the_migrations_made(make_project: MakeProject, example: str) -> None:
    project = make_project(example)
    project.revision("create")
    project.upgrade()
    project.run(metadata_of(example).drop_all)
    assert project.leftovers() == {}


def test_create_all_sends_colons_and_percents_as_written(make_project: MakeProject) -> None:
    """Expressions and bodies reach PostgreSQL untouched: no bind-parameter parsing on the way."""
    project = make_project("tenancy")
    metadata = MetaData()
    notes = Table("notes", metadata, Column("note", Text), Column("owner", Text))
    shout = TriggerFunction(name="notes_shout", body="RAISE NOTICE '% :x', NEW.note;\nRETURN NEW;")
    attach(
        notes,
        shout,
        Trigger(table="notes", name="trg_notes_shout", function=shout),
        RowLevelSecurity(table="notes"),
        Policy(table="notes", name="p", using="note LIKE '%:x%'", with_check="owner::text = note"),
    )
    ensure_registered()

    def create_all_then_compare(connection: Connection) -> UpgradeOps | None:
        metadata.create_all(connection)
        context = MigrationContext.configure(
            connection,
            opts={
                "target_metadata": metadata,
                "autogenerate_plugins": [PLUGIN_NAME],
                RULES_OPTION: False,  # a bare table, to compare its objects only
            },
        )
        return produce_migrations(context, metadata).upgrade_ops

    upgrade = project.run(create_all_then_compare)
    assert upgrade is not None
    assert upgrade.as_diffs() == []
    assert project.query("SELECT pg_get_expr(polqual, polrelid) FROM pg_policy") == [
        "(note ~~ '%:x%'::text)"
    ]
