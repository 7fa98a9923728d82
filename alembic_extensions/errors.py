"""Errors that stop autogenerate: they carry the findings as data and say how to fix each."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alembic.util import CommandError

from alembic_extensions.rules import format_violations
from pgkeel.errors import PgkeelError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from alembic_extensions.rules import Violation


class StandardsError(PgkeelError, CommandError):
    """Findings that stop autogenerate; ``violations`` holds them, the message explains them."""

    heading = "pgkeel"

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations = tuple(violations)
        super().__init__(format_violations(self.violations, heading=self.heading))


class ModelRulesError(StandardsError):
    """The models break pgkeel's rules; nothing was generated."""

    heading = "pgkeel: the models break the standards, no migration was written"


class UnsafeMigrationError(StandardsError):
    """The migration would be unsafe on a live database; nothing was generated."""

    heading = "pgkeel: this migration would be unsafe on a table that has rows"
