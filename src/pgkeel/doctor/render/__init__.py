"""A report as text, JSON, Prometheus exposition text or one self-contained HTML page."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pgkeel.doctor.render.as_html import render_html
from pgkeel.doctor.render.as_json import JSON_SCHEMA_VERSION, render_json
from pgkeel.doctor.render.as_prometheus import render_prometheus
from pgkeel.doctor.render.as_text import render_text

if TYPE_CHECKING:
    from collections.abc import Callable

    from pgkeel.doctor.model import Report

__all__ = ["FORMATS", "JSON_SCHEMA_VERSION", "render"]

_RENDERERS: dict[str, Callable[[Report], str]] = {
    "text": render_text,
    "json": render_json,
    "html": render_html,
    "prometheus": render_prometheus,
}
FORMATS = tuple(_RENDERERS)


def render(report: Report, output_format: str = "text") -> str:
    """``report`` in ``output_format``: ``text``, ``json``, ``html`` or ``prometheus``."""
    try:
        renderer = _RENDERERS[output_format]
    except KeyError:
        raise ValueError(
            f"unknown report format {output_format!r}. Fix: use one of {', '.join(FORMATS)}."
        ) from None
    return renderer(report)
