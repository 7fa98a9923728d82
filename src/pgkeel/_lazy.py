"""A module imported on first use: what pgkeel needs only to run DDL or queries stays unloaded.

Importing pgkeel and defining models runs in every process of a service (each command, each
test session, each serverless cold start); psycopg, for example, is only needed once SQL is
composed or sent, and the process that sends SQL has imported it for its engine anyway.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import ModuleType


class LazyModule:
    """Stands for the module ``name``; the first attribute read imports it."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:  # noqa: ANN401  # any attribute of a module
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"
