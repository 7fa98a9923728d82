"""Migration environment of the example projects: the one call, on the models alembic.ini names.

A service's env.py is the same call with its own import (``from app.models import Base``).
"""

import importlib

from alembic import context

from alembic_extensions import run_migrations

models = importlib.import_module(context.config.get_alembic_option("example_models") or "models")
settings = context.config.attributes.get("settings", {})  # the tests vary the timeouts
run_migrations(context, models.Base.metadata, **settings)
