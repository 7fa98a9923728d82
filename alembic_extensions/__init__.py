"""Alembic plugin that makes autogenerate write migrations following pgkeel's standards.

``env.py`` needs one call::

    from alembic import context
    from alembic_extensions import run_migrations
    from app.models import Base

    run_migrations(context, Base.metadata)

Alembic imports the plugin module (``alembic_extensions.plugin``) while it is itself being
imported, so this package imports nothing from Alembic until ``run_migrations`` is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alembic_extensions.environment import run_migrations

__all__ = ["run_migrations"]


def __getattr__(name: str) -> Any:  # noqa: ANN401  # module attributes resolved lazily
    if name == "run_migrations":
        from alembic_extensions.environment import run_migrations  # noqa: PLC0415

        return run_migrations
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
