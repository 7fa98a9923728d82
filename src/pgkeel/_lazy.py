"""Modules and public names imported on first use: what a process does not use stays unloaded.

Importing pgkeel and defining models runs in every process of a service (each command, each
test session, each serverless cold start); psycopg, for example, is only needed once SQL is
composed or sent, and the process that sends SQL has imported it for its engine anyway.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
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


def lazy_exports(
    package: str, homes: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` (PEP 562) of ``package``, serving ``homes`` lazily.

    Each public name in ``homes`` is imported from its module on first access, then kept in the
    package's namespace, so later reads are plain attribute lookups. A package's import then costs
    only what it imports eagerly: ``pgkeel --help``, the pytest plugin and ``from pgkeel import
    BaseModel`` load just the modules they use.
    """
    namespace = vars(importlib.import_module(package))

    def load(name: str) -> Any:  # noqa: ANN401  # whichever public object is asked for
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        namespace[name] = value
        return value

    def names() -> list[str]:
        return sorted([*namespace, *homes])

    return load, names
