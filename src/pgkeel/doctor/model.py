"""What a doctor run produces: findings, notes, sizes and query statistics, as plain values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["warning", "error"]
SEVERITIES: tuple[Severity, ...] = ("warning", "error")
Evidence = dict[str, int | float | str | bool | None]


@dataclass(frozen=True)
class Finding:
    """One problem on the live database, with the numbers that show it and the fix."""

    check: str
    """The check id, such as ``fk-without-index`` (docs/doctor.md lists them all)."""
    severity: Severity
    object: str
    """What the finding is about: ``schema.table``, ``schema.table.column``, an index, a pid."""
    message: str
    """One sentence saying what is wrong."""
    evidence: Evidence
    """The numbers behind the finding (sizes in bytes, durations in seconds, ratios 0..1)."""
    fix: str
    """The SQL to run or the setting to change."""


@dataclass(frozen=True)
class Note:
    """A check that did not apply to this database, or could not run, and why."""

    check: str
    status: Literal["not-applicable", "not-run"]
    reason: str


@dataclass(frozen=True)
class RelationSize:
    """The size of one table (with its indexes and TOAST) or of one index."""

    name: str
    bytes: int
    table: str | None = None
    """For an index: the table it belongs to."""


@dataclass(frozen=True)
class QueryStat:
    """One normalised statement from ``pg_stat_statements``."""

    query: str
    calls: int
    total_ms: float
    mean_ms: float
    rows: int
    share: float
    """This statement's share of the total execution time of the database (0..1)."""


@dataclass(frozen=True)
class Report:
    """Everything one ``diagnose`` run found on a database."""

    database: str
    server_version: str
    generated_at: str
    """ISO 8601 time (UTC) of the run."""
    duration_s: float
    findings: tuple[Finding, ...]
    notes: tuple[Note, ...] = ()
    database_bytes: int = 0
    largest_tables: tuple[RelationSize, ...] = ()
    largest_indexes: tuple[RelationSize, ...] = ()
    top_by_total: tuple[QueryStat, ...] = ()
    top_by_mean: tuple[QueryStat, ...] = ()
    thresholds: dict[str, int | float] = field(default_factory=dict)

    def at_or_above(self, severity: Severity) -> list[Finding]:
        """The findings of ``severity`` or worse (``error`` is worse than ``warning``)."""
        rank = SEVERITIES.index(severity)
        return [f for f in self.findings if SEVERITIES.index(f.severity) >= rank]

    def checks_found(self) -> list[str]:
        """The distinct check ids of the findings, in the order they were found."""
        return list(dict.fromkeys(f.check for f in self.findings))
