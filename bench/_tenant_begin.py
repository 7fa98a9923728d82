"""Ways of sending the tenant with a transaction's ``BEGIN``, on raw psycopg.

``python -m bench._tenant_begin`` (not part of ``make bench``): a transaction of ``BEGIN``, a
one-row query and ``ROLLBACK``, with the tenant sent in no way (the baseline's shape), as a
statement of its own, as two extended-protocol queries in libpq's pipeline mode, and as one
simple query, with ``set_config`` or ``SET LOCAL`` (what ``pgkeel.session._begin`` sends).
Rounds run the five in a shuffled order;
prints the median wall time and the mean CPU time of this thread per transaction, as the table
of docs/performance.md ("The tenant round trip").
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import generators, pq

from pgkeel.database import conninfo, provide_server
from pgkeel.testing.databases import create_database

ROUNDS = 3000
WARM_UP = 300
ONE_ROW = "SELECT 1"
SET_TENANT = "SELECT set_config('app.tenant_id', %s, true)"


def _pipelined(connection: psycopg.Connection[Any], tenant: bytes) -> None:
    pgconn = connection.pgconn

    def exchange() -> Any:  # noqa: ANN401  # psycopg's generator protocol
        pgconn.enter_pipeline_mode()
        try:
            pgconn.send_query_params(b"BEGIN", None)
            pgconn.send_query_params(b"SELECT set_config('app.tenant_id', $1, true)", [tenant])
            pgconn.pipeline_sync()
            yield from generators.send(pgconn)
            for _ in range(3):  # BEGIN's result, set_config's, the Sync's
                yield from generators.fetch_many(pgconn)
        finally:
            pgconn.exit_pipeline_mode()

    connection.wait(exchange())


def _simple(connection: psycopg.Connection[Any], tenant: bytes) -> None:
    pgconn = connection.pgconn
    quoted = pq.Escaping(pgconn).escape_literal(tenant)
    pgconn.send_query(b"BEGIN; SELECT set_config('app.tenant_id', " + quoted + b", true)")
    connection.wait(generators.execute(pgconn))


def _simple_set_local(connection: psycopg.Connection[Any], tenant: bytes) -> None:
    pgconn = connection.pgconn
    quoted = pq.Escaping(pgconn).escape_literal(tenant)
    pgconn.send_query(b"BEGIN; SET LOCAL app.tenant_id = " + quoted)
    connection.wait(generators.execute(pgconn))


def _ways(connection: psycopg.Connection[Any], tenant: str) -> dict[str, Callable[[], None]]:
    encoded = tenant.encode()

    def transaction(send_tenant: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            send_tenant()
            connection.execute(ONE_ROW).fetchall()
            connection.rollback()

        return run

    return {
        "none (the baseline's shape)": transaction(lambda: None),
        "`set_config` as a statement of its own": transaction(
            lambda: connection.execute(SET_TENANT, (tenant,))
        ),
        "`BEGIN` + `set_config` as two queries in libpq's pipeline mode": transaction(
            lambda: _pipelined(connection, encoded)
        ),
        "`BEGIN; SELECT set_config(...)` as one simple query": transaction(
            lambda: _simple(connection, encoded)
        ),
        "`BEGIN; SET LOCAL app.tenant_id = ...` as one simple query": transaction(
            lambda: _simple_set_local(connection, encoded)
        ),
    }


def main() -> None:
    """Measure each way and print a Markdown table."""
    with provide_server({}) as server:
        url = create_database(server.url, "bench_tenant_begin")
        with psycopg.connect(conninfo(url)) as connection:
            ways = _ways(connection, str(uuid.uuid4()))
            for way in ways.values():
                for _ in range(WARM_UP):
                    way()
            wall: dict[str, list[float]] = {name: [] for name in ways}
            cpu: dict[str, list[float]] = {name: [] for name in ways}
            order = list(ways.items())
            shuffler = random.Random(0)  # noqa: S311  # an order of measurements, not a secret
            for _ in range(ROUNDS):
                shuffler.shuffle(order)
                for name, way in order:
                    started, cpu_started = time.perf_counter(), time.thread_time()
                    way()
                    wall[name].append(time.perf_counter() - started)
                    cpu[name].append(time.thread_time() - cpu_started)
    print("| way of sending the tenant | wall | client CPU |")
    print("|---|---|---|")
    for name in ways:
        median = statistics.median(wall[name]) * 1e6
        print(f"| {name} | {median:.0f} µs | {statistics.mean(cpu[name]) * 1e6:.0f} µs |")


if __name__ == "__main__":
    main()
