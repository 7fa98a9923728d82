#!/usr/bin/env bash
# Installs the system programs pgkeel needs, when they are missing and this is possible:
#   server     a PostgreSQL server (only if none is on this machine and the pgserver wheel cannot
#              serve), for `make demo` and the tests
#   pgbouncer  PgBouncer, for the connection-pooling tests
#   chromium   headless Chromium, for the test that renders pgkeel doctor's HTML report
# Usage: system-deps.sh PYTHON [server|all]   (default: all)
# Needs root and apt-get. Otherwise it says what to install and exits 0 (the tests that need a
# missing program are skipped with that reason), except under CI (CI set), where a missing
# program is an error: CI must run every test.
set -euo pipefail

python="${1:-python3}"
want="${2:-all}"

have_server() {
    command -v initdb >/dev/null 2>&1 && return 0
    command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ] && return 0
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && return 0
    "$python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('pgserver') is None)" \
        >/dev/null 2>&1 && return 0
    return 1
}

have_chromium() {
    command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]
}

have_pgbouncer() {
    [ -n "${PGKEEL_PGBOUNCER:-}" ] && [ -x "${PGKEEL_PGBOUNCER}" ] && return 0
    command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]
}

missing=()
have_server || missing+=(postgresql)
if [ "$want" = all ]; then
    have_pgbouncer || missing+=(pgbouncer)
    have_chromium || missing+=(chromium)
fi

[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "pgkeel: missing system packages: ${missing[*]}; install them with your package manager." >&2
    [ -n "${CI:-}" ] && exit 1
    exit 0
fi
echo "pgkeel: installing ${missing[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
