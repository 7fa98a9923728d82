"""The report for a terminal: findings by section, then sizes and top queries."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pgkeel.doctor.render.common import (
    SECTIONS,
    by_section,
    counted,
    human_bytes,
    short_query,
)

if TYPE_CHECKING:
    from pgkeel.doctor.model import Finding, Report


def _finding(finding: Finding) -> list[str]:
    evidence = ", ".join(
        f"{key}={value}" for key, value in finding.evidence.items() if key != "query"
    )
    return [
        f"  {finding.severity.upper():<7} {finding.check}  {finding.object}",
        f"          {finding.message}",
        *([f"          evidence: {evidence}"] if evidence else []),
        f"          fix: {finding.fix}",
    ]


def _summary(report: Report) -> str:
    errors = sum(f.severity == "error" for f in report.findings)
    warnings = len(report.findings) - errors
    if not report.findings:
        return "No findings."
    return f"{counted(errors, 'error')}, {counted(warnings, 'warning')}."


def render_text(report: Report) -> str:
    """The report as plain text, one finding per block, the fix last."""
    lines = [
        (
            f"pgkeel doctor: database {report.database} (PostgreSQL {report.server_version}), "
            f"{report.generated_at}, {report.duration_s:.2f} s"
        ),
        _summary(report),
    ]
    grouped = by_section(report)
    for section, title in SECTIONS:
        lines += ["", f"{title}:"]
        findings = grouped.get(section, [])
        lines += [line for finding in findings for line in _finding(finding)] or ["  no findings"]
    lines += ["", "Not applicable or not run:"]
    lines += [f"  {n.check}: {n.status}: {n.reason}" for n in report.notes] or ["  none"]
    lines += ["", f"Largest tables (database: {human_bytes(report.database_bytes)}):"]
    lines += [f"  {human_bytes(t.bytes):>10}  {t.name}" for t in report.largest_tables]
    lines += ["", "Largest indexes:"]
    lines += [
        f"  {human_bytes(i.bytes):>10}  {i.name} on {i.table}" for i in report.largest_indexes
    ]
    for title, stats in (("total", report.top_by_total), ("mean", report.top_by_mean)):
        lines += ["", f"Top queries by {title} time:"]
        lines += [
            f"  {q.total_ms:>10.1f} ms total {q.mean_ms:>9.2f} ms mean {q.calls:>8} calls "
            f"{q.rows:>8} rows {q.share:>5.0%}  {short_query(q.query)}"
            for q in stats
        ] or ["  none (pg_stat_statements is not enabled, or has no statements yet)"]
    return "\n".join(lines) + "\n"
