#!/usr/bin/env bash
# Installs the system programs pgkeel's tests use, when they are missing and this is possible:
# a PostgreSQL server (only if none is on this machine and the pgserver wheel cannot serve) and
# PgBouncer (for the connection-pooling tests). Needs root and apt-get; otherwise it says what
# to install by hand and the tests that need a missing program are skipped with that reason.
set -euo pipefail

missing=()
have_server() {
    command -v initdb >/dev/null 2>&1 && return 0
    command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ] && return 0
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && return 0
    [ -n "${1:-}" ] && "$1" -c "import pgserver" >/dev/null 2>&1 && return 0
    return 1
}

have_server "${1:-}" || missing+=(postgresql)
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)

[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "pgkeel: missing system packages: ${missing[*]}; install them with your package manager." >&2
    exit 0
fi
echo "pgkeel: installing ${missing[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
