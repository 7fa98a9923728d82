"""What the formats share: section titles, grouping, and human-readable numbers."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pgkeel.doctor.model import Finding, Report

SECTIONS = (("schema", "Schema"), ("health", "Health"), ("queries", "Queries"))
_UNITS = ("B", "kB", "MB", "GB", "TB")


def section_of(check_id: str) -> str:
    """The section (schema, health, queries) a check id belongs to."""
    from pgkeel.doctor.run import CHECKS  # noqa: PLC0415  # the registry imports the renderers

    return next((c.section for c in CHECKS if c.id == check_id), "health")


def by_section(report: Report) -> dict[str, list[Finding]]:
    """The report's findings grouped by section."""
    grouped: dict[str, list[Finding]] = {}
    for finding in report.findings:
        grouped.setdefault(section_of(finding.check), []).append(finding)
    return grouped


def counted(count: int, noun: str) -> str:
    """``1 error``, ``2 errors``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def human_bytes(size: int) -> str:
    """``size`` in bytes as ``12.3 MB`` (powers of 1024)."""
    value = float(size)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def short_query(query: str, length: int = 100) -> str:
    """A statement on one line, cut to ``length`` characters."""
    flat = " ".join(query.split())
    return flat if len(flat) <= length else flat[: length - 1] + "…"
