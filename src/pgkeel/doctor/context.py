"""What every check receives: the read-only connection, the thresholds, and where notes go."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from psycopg import sql
from sqlalchemy import text

from pgkeel.doctor.model import Evidence, Finding, Note, Severity
from pgkeel.errors import PgkeelError

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine import Connection, RowMapping
    from sqlalchemy.exc import DBAPIError

    from pgkeel.doctor.thresholds import Thresholds

USER_RELATION = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' "
    "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass "
    "AND d.objid = c.oid AND d.deptype = 'e')"
)
"""SQL condition on ``pg_class c`` joined with ``pg_namespace n``: the service's own relations."""
_PLAIN = re.compile(r"(idx|ix|uq|ck|fk|pk)_[a-z0-9_]+")
MARKER = "/* pgkeel doctor */ "
"""Leads every statement the doctor runs, so that its own statements stay out of its reports."""


class DoctorError(PgkeelError):
    """The doctor could not inspect the database (connection, privilege, timeout)."""


def connection_cause(exc: DBAPIError) -> str:
    """The driver's first line (the cause; libpq's hints follow it), without its period."""
    lines = str(exc.orig or exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__).rstrip(".")


@dataclass
class Context:
    """The connection (in a read-only transaction), the thresholds, and the notes so far."""

    connection: Connection
    thresholds: Thresholds
    runtime_url: str | None = None
    notes: list[Note] = field(default_factory=list)
    _memo: dict[str, list[RowMapping]] = field(default_factory=dict, repr=False)

    def rows(self, query: str, **params: object) -> list[RowMapping]:
        """The rows of ``query`` (a constant SQL text; values go in ``params``)."""
        return list(self.connection.execute(text(MARKER + query), params).mappings())

    def shared_rows(self, query: str, **params: object) -> list[RowMapping]:
        """The rows of ``query``, read once per run for the checks that share them."""
        key = f"{query} {sorted(params.items())}"
        if key not in self._memo:
            self._memo[key] = self.rows(query, **params)
        return self._memo[key]

    def value(self, query: str, **params: object) -> object:
        """The single value ``query`` returns."""
        return self.connection.execute(text(MARKER + query), params).scalar()

    def note(self, check: str, status: Literal["not-applicable", "not-run"], reason: str) -> None:
        """Record that ``check`` did not apply or could not run, and why."""
        self.notes.append(Note(check, status, reason))


@dataclass(frozen=True)
class Problem:
    """What a check function reports; the runner adds the check's id and severity."""

    object: str
    message: str
    evidence: Evidence
    fix: str


@dataclass(frozen=True)
class Check:
    """One check: its id, its section, its severity, what it looks for, and its function."""

    id: str
    section: Literal["schema", "health", "queries"]
    severity: Severity
    title: str
    run: Callable[[Context], list[Problem]]

    def finding(self, problem: Problem) -> Finding:
        """``problem`` as a finding of this check."""
        return Finding(
            self.id, self.severity, problem.object, problem.message, problem.evidence, problem.fix
        )


def ident(name: str) -> str:
    """A name pgkeel made (snake_case, prefixed) as an SQL identifier, quoted only if needed."""
    return name if _PLAIN.fullmatch(name) else sql.Identifier(name).as_string()
