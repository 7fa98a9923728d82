"""Where pgkeel's PostgreSQL comes from, and the clusters it starts (never as root)."""

from __future__ import annotations

from pgkeel.database.binaries import Attempt, PostgresBinaries, find_binaries
from pgkeel.database.cluster import Cluster, PersistentCluster, throwaway_cluster
from pgkeel.database.resolve import (
    DATABASE_URL_ENV,
    Server,
    check_connects,
    conninfo,
    parse_database_url,
    provide_server,
)

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
