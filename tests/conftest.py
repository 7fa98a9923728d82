"""Shared helpers for pgkeel's own tests; the database fixtures come from ``pgkeel.testing``."""

from __future__ import annotations

pytest_plugins = ["pytester"]
