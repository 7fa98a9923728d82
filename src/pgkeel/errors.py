"""The errors pgkeel raises: each one says what is wrong, where, and how to fix it."""

from __future__ import annotations


class PgkeelError(Exception):
    """Base class of every error pgkeel raises on purpose."""


class NamingError(PgkeelError, ValueError):
    """An identifier breaks the naming standard (for example, it is longer than 63 bytes)."""


class TenantNotSetError(PgkeelError):
    """A tenant-scoped query or write ran outside ``tenant_context``."""


class CrossTenantWriteError(PgkeelError):
    """A write targets a row that belongs to another tenant than the current one."""


class ReadRefusedError(PgkeelError):
    """PostgreSQL refused a read for row-level security reasons (``row_security = off``)."""


class UnfilteredReadError(PgkeelError):
    """A read pgkeel cannot filter by tenant or ``deleted_at`` (textual SQL), so it refuses it."""


class DatabaseNotFoundError(PgkeelError):
    """No PostgreSQL server could be found or started; the message lists what was tried."""


class DatabaseError(PgkeelError):
    """A PostgreSQL server was found but could not be used (bad URL, unreachable, bad directory)."""


class ModelDefinitionError(PgkeelError, TypeError):
    """A model class breaks a standard pgkeel checks when the class is defined."""


class SettingsError(PgkeelError, ValueError):
    """A project setting (``[tool.pgkeel]``, a ``run_migrations`` keyword) is not valid."""


class UnknownRuleError(SettingsError):
    """A rule id that pgkeel does not know, in an opt-out or a setting."""
