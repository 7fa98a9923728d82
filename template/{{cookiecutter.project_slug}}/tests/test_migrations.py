"""The migrations and the models agree, and every migration can be undone on a live database."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

# Everything in a database that a migration could have created, outside PostgreSQL's own schemas.
LEFTOVERS = text(
    """
    select 'relation ' || c.oid::regclass::text
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname not in ('pg_catalog', 'information_schema')
      and n.nspname not like 'pg\\_%'
      and c.relname not in ('alembic_version', 'alembic_version_pkc')
    union all
    select 'function ' || p.oid::regprocedure::text
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname not in ('pg_catalog', 'information_schema')
    union all
    select 'type ' || t.oid::regtype::text
    from pg_type t join pg_namespace n on n.oid = t.typnamespace
    where n.nspname not in ('pg_catalog', 'information_schema')
      and t.typtype in ('e', 'd', 'r', 'm')
    union all
    select 'policy ' || polname from pg_policy
    union all
    select 'trigger ' || tgname from pg_trigger where not tgisinternal
    union all
    select 'schema ' || nspname from pg_namespace
    where nspname not in ('public', 'pg_catalog', 'information_schema')
      and nspname not like 'pg\\_%'
    union all
    select 'extension ' || extname from pg_extension where extname <> 'plpgsql'
    """
)


def _revisions_oldest_first(config: Config) -> list[str]:
    script = ScriptDirectory.from_config(config)
    return [revision.revision for revision in reversed(list(script.walk_revisions()))]


def test_there_is_a_single_head(alembic_config: Config) -> None:
    heads = ScriptDirectory.from_config(alembic_config).get_heads()
    assert len(heads) == 1, f"merge the heads {heads}: alembic merge heads -m 'merge'"


def test_upgrade_head_from_empty_matches_the_models(alembic_config: Config) -> None:
    command.upgrade(alembic_config, "head")
    command.check(alembic_config)  # raises when autogenerate would write any operation


def test_every_revision_goes_up_down_and_up_again(alembic_config: Config) -> None:
    for revision in _revisions_oldest_first(alembic_config):
        command.upgrade(alembic_config, revision)
        command.downgrade(alembic_config, "-1")
        command.upgrade(alembic_config, revision)


def test_downgrade_base_leaves_nothing(alembic_config: Config, empty_database_url: str) -> None:
    command.upgrade(alembic_config, "head")
    command.downgrade(alembic_config, "base")
    engine = create_engine(empty_database_url)
    try:
        with engine.connect() as connection:
            leftovers = connection.execute(LEFTOVERS).scalars().all()
    finally:
        engine.dispose()
    assert leftovers == []
