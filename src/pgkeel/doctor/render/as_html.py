"""The report as one self-contained HTML page: findings, notes, and charts of sizes and queries.

Everything is inline (CSS, SVG); the page loads nothing, runs no script, and opens from disk.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from pgkeel.doctor.render.charts import bar_chart
from pgkeel.doctor.render.common import (
    SECTIONS,
    by_section,
    counted,
    human_bytes,
    short_query,
)

if TYPE_CHECKING:
    from pgkeel.doctor.model import Finding, QueryStat, Report

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;
background:#f5f6f8}
header{background:#1d2330;color:#fff;padding:18px 32px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#c9cfdb}main{padding:8px 32px 40px;max-width:1100px}
h2{margin:28px 0 10px;font-size:18px}
section{background:#fff;border-radius:8px;padding:4px 18px 14px;margin-bottom:16px;
box-shadow:0 1px 2px rgba(0,0,0,.08)}
.summary span{display:inline-block;margin-right:12px;padding:4px 10px;border-radius:12px;
font-weight:600}.error{background:#fde2e1;color:#a4161a}.warning{background:#fff1cc;color:#7a4d00}
.ok{background:#dcf5e3;color:#146c2e}
.finding{border-top:1px solid #e6e8ec;padding:10px 0}.finding:first-of-type{border-top:0}
.badge{font-size:11px;font-weight:700;text-transform:uppercase;padding:2px 7px;border-radius:4px;
margin-right:6px}.check{font-family:ui-monospace,Menlo,monospace;font-weight:600}
.object{font-family:ui-monospace,Menlo,monospace;color:#3b4660}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:6px 0;font-size:13px}
dt{color:#5b6478}dd{margin:0;font-family:ui-monospace,Menlo,monospace;word-break:break-all}
pre{background:#f0f2f5;padding:8px 10px;border-radius:6px;white-space:pre-wrap;margin:6px 0 0;
font-size:12.5px}table{border-collapse:collapse;width:100%;font-size:13px}
td,th{text-align:left;padding:5px 8px;border-bottom:1px solid #e6e8ec;vertical-align:top}
figure{margin:10px 0}figcaption{font-weight:600;margin-bottom:4px}
svg text{font:12px ui-monospace,Menlo,monospace;fill:#1d2330}.empty,.none{color:#5b6478}
"""


def _summary(report: Report) -> str:
    errors = sum(f.severity == "error" for f in report.findings)
    warnings = len(report.findings) - errors
    if not report.findings:
        return '<p class="summary"><span class="ok">No findings</span></p>'
    return (
        f'<p class="summary"><span class="error">{counted(errors, "error")}</span>'
        f'<span class="warning">{counted(warnings, "warning")}</span></p>'
    )


def _finding(finding: Finding) -> str:
    evidence = "".join(
        f"<dt>{escape(key)}</dt><dd>{escape(str(value))}</dd>"
        for key, value in finding.evidence.items()
    )
    return (
        f'<div class="finding"><span class="badge {finding.severity}">{finding.severity}</span>'
        f'<span class="check">{escape(finding.check)}</span> '
        f'<span class="object">{escape(finding.object)}</span>'
        f"<p>{escape(finding.message)}</p><dl>{evidence}</dl>"
        f"<pre><code>{escape(finding.fix)}</code></pre></div>"
    )


def _findings(report: Report) -> str:
    grouped = by_section(report)
    parts = []
    for section, title in SECTIONS:
        findings = grouped.get(section, [])
        body = "".join(_finding(f) for f in findings) or '<p class="none">No findings.</p>'
        parts.append(f"<h2>{title}</h2><section>{body}</section>")
    return "".join(parts)


def _notes(report: Report) -> str:
    rows = "".join(
        f"<tr><td class='check'>{escape(n.check)}</td><td>{escape(n.status)}</td>"
        f"<td>{escape(n.reason)}</td></tr>"
        for n in report.notes
    )
    body = f"<table>{rows}</table>" if rows else '<p class="none">None.</p>'
    return f"<h2>Not applicable or not run</h2><section>{body}</section>"


def _query_rows(stats: tuple[QueryStat, ...], *, mean: bool) -> list[tuple[str, float, str]]:
    return [
        (
            short_query(q.query, 60),
            q.mean_ms if mean else q.total_ms,
            f"{q.mean_ms:.1f} ms, {q.calls} calls"
            if mean
            else f"{q.total_ms:.0f} ms, {q.share:.0%}",
        )
        for q in stats
    ]


def _charts(report: Report) -> str:
    tables = [(t.name, float(t.bytes), human_bytes(t.bytes)) for t in report.largest_tables]
    indexes = [(i.name, float(i.bytes), human_bytes(i.bytes)) for i in report.largest_indexes]
    sizes = bar_chart("Largest tables (with indexes and TOAST)", tables, "#3866d6") + bar_chart(
        "Largest indexes", indexes, "#7c4dcc"
    )
    queries = bar_chart(
        "Top queries by total time", _query_rows(report.top_by_total, mean=False), "#d6543a"
    ) + bar_chart("Top queries by mean time", _query_rows(report.top_by_mean, mean=True), "#c98a12")
    return (
        f"<h2>Sizes <small>(database: {human_bytes(report.database_bytes)})</small></h2>"
        f"<section>{sizes}</section><h2>Top queries</h2><section>{queries}</section>"
    )


def render_html(report: Report) -> str:
    """The report as one HTML document with inline CSS and SVG charts."""
    title = f"pgkeel doctor: {report.database}"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>"
        f"<header><h1>{escape(title)}</h1><p>PostgreSQL {escape(report.server_version)} · "
        f"{escape(report.generated_at)} · {report.duration_s:.2f} s</p></header><main>"
        f"{_summary(report)}{_findings(report)}{_notes(report)}{_charts(report)}"
        "</main></body></html>\n"
    )
