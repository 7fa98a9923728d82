"""Alembic's entry point: pgkeel's plugin compares the models with the database and renders ops.

``run_migrations`` runs offline or online, names revision files ``0001_...``, ``0002_...``,
renders pgkeel's triggers, policies and indexes, and sets lock and statement timeouts.
"""

from alembic import context
from alembic_extensions import run_migrations

from app.core.config import get_settings
from app.models import Base

run_migrations(context, Base.metadata, url=get_settings().migration_database_url)
