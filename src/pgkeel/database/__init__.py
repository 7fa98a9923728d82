"""Where pgkeel's PostgreSQL comes from, and the clusters it starts (never as root).

The public names are imported on first use (PEP 562), each from the module that defines it:
a process that only reads ``DATABASE_URL`` (every Alembic command) never loads the cluster
machinery or the search for binaries.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pgkeel.database.binaries import Attempt, PostgresBinaries, find_binaries
    from pgkeel.database.cluster import Cluster, PersistentCluster, throwaway_cluster
    from pgkeel.database.resolve import Server, check_connects, conninfo, provide_server
    from pgkeel.database.url import DATABASE_URL_ENV, parse_database_url

_HOME = {
    "DATABASE_URL_ENV": "pgkeel.database.url",
    "Attempt": "pgkeel.database.binaries",
    "Cluster": "pgkeel.database.cluster",
    "PersistentCluster": "pgkeel.database.cluster",
    "PostgresBinaries": "pgkeel.database.binaries",
    "Server": "pgkeel.database.resolve",
    "check_connects": "pgkeel.database.resolve",
    "conninfo": "pgkeel.database.resolve",
    "find_binaries": "pgkeel.database.binaries",
    "parse_database_url": "pgkeel.database.url",
    "provide_server": "pgkeel.database.resolve",
    "throwaway_cluster": "pgkeel.database.cluster",
}

__all__ = [
    "DATABASE_URL_ENV",
    "Attempt",
    "Cluster",
    "PersistentCluster",
    "PostgresBinaries",
    "Server",
    "check_connects",
    "conninfo",
    "find_binaries",
    "parse_database_url",
    "provide_server",
    "throwaway_cluster",
]


def __getattr__(name: str) -> Any:  # noqa: ANN401  # whichever public object is asked for
    """Import the module that defines public name ``name`` and return that object."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'pgkeel.database' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later reads are plain attribute lookups
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])
