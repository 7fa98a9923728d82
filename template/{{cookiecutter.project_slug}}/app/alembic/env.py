"""Alembic's entry point: pgkeel's plugin compares the models with the database and renders ops.

``run_migrations`` runs offline or online, names revision files ``0001_...``, ``0002_...``,
renders pgkeel's triggers, policies and indexes, and sets lock and statement timeouts.
"""

from alembic import context
from alembic.util import CommandError
from alembic_extensions import run_migrations
from pgkeel.errors import PgkeelError

from app.core.config import SettingsError, get_settings

try:  # a model pgkeel refuses as it is defined (a name over 63 bytes): its one paragraph
    from app.models import Base
except PgkeelError as exc:
    raise CommandError(str(exc)) from None

try:
    url = get_settings().migration_database_url
except SettingsError as exc:  # a malformed URL: one line from alembic, no traceback
    raise CommandError(str(exc)) from None
run_migrations(context, Base.metadata, url=url)
