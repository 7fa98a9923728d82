"""A report as text, JSON, Prometheus exposition text or one self-contained HTML page."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pgkeel.doctor.model import Report
    from pgkeel.doctor.render.as_json import JSON_SCHEMA_VERSION

__all__ = ["FORMATS", "JSON_SCHEMA_VERSION", "render"]

# Each format's module loads when a report is rendered in it: `pgkeel --help` and
# `pgkeel doctor --help` need only the names of the formats.
_RENDERERS: dict[str, tuple[str, str]] = {
    "text": ("pgkeel.doctor.render.as_text", "render_text"),
    "json": ("pgkeel.doctor.render.as_json", "render_json"),
    "html": ("pgkeel.doctor.render.as_html", "render_html"),
    "prometheus": ("pgkeel.doctor.render.as_prometheus", "render_prometheus"),
}
FORMATS = tuple(_RENDERERS)


def __getattr__(name: str) -> Any:  # noqa: ANN401  # the one constant defined with its format
    """``JSON_SCHEMA_VERSION``, read from the JSON format's module on first use."""
    if name != "JSON_SCHEMA_VERSION":
        raise AttributeError(f"module 'pgkeel.doctor.render' has no attribute {name!r}")
    return importlib.import_module(_RENDERERS["json"][0]).JSON_SCHEMA_VERSION


def render(report: Report, output_format: str = "text") -> str:
    """``report`` in ``output_format``: ``text``, ``json``, ``html`` or ``prometheus``."""
    try:
        module, function = _RENDERERS[output_format]
    except KeyError:
        raise ValueError(
            f"unknown report format {output_format!r}. Fix: use one of {', '.join(FORMATS)}."
        ) from None
    renderer = getattr(importlib.import_module(module), function)
    return str(renderer(report))
