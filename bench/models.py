"""What pgkeel's BaseModel costs on the hot path: an ORM insert of 100,000 rows.

The baseline is the model a developer would write by hand without pgkeel: plain
``DeclarativeBase``, the same columns and types, a Python-side UUIDv7 default and ``now()``
server defaults. The peer is advanced-alchemy's ``UUIDv7AuditBase`` (in ``.venv-bench``). All
run in the same process against the same throwaway cluster, in a rotating order, and every
INSERT statement is counted to show that the ORM's multi-row batching is kept.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, Engine, String, create_engine, event, func, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from uuid_utils.compat import uuid7

from bench._envs import has_peer, not_installed
from pgkeel import Base, BaseModel, Str255
from pgkeel.database import provide_server
from pgkeel.testing.databases import create_database

TITLE = "Models: ORM insert of 100,000 rows, BaseModel vs a hand-written model and advanced-alchemy"
ROWS = 100_000
RUNS = 2  # sized so that `make bench` as a whole stays under 10 minutes
BUILDS = 1
BUILT_HOW = f"best of {BUILDS}" if BUILDS > 1 else "once each"
WARM_UP_ROWS = 2_000  # mappers, statement cache, connection pool: no need for the full count
NAIVE_ROWS = 10_000  # the row-at-a-time contrast, compared per row: 100,000 would take minutes
GOAL_RATIO = 1.10


class BenchOrder(BaseModel):
    """An order: pgkeel's id, created_at, updated_at (trigger) and three columns."""

    customer: Mapped[Str255]
    quantity: Mapped[int]
    note: Mapped[str | None]


class Plain(DeclarativeBase):
    pass


class PlainOrder(Plain):
    """The same table written by hand, without pgkeel."""

    __tablename__ = "plain_orders"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    customer: Mapped[str] = mapped_column(String(255))
    quantity: Mapped[int]
    note: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class NaiveOrder(Plain):
    """Hand-written with a server-side id default too, as pgkeel needs for raw SQL inserts,
    but without ``insert_sentinel=True``: SQLAlchemy can no longer batch its INSERTs."""

    __tablename__ = "naive_orders"
    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, default=uuid7, server_default=text("gen_random_uuid()")
    )
    customer: Mapped[str] = mapped_column(String(255))
    quantity: Mapped[int]
    note: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


def _peer_model() -> type | None:
    """The same table on advanced-alchemy's ``UUIDv7AuditBase``, when it is installed."""
    if not has_peer("advanced_alchemy"):
        return None
    from advanced_alchemy.base import UUIDv7AuditBase  # noqa: PLC0415  # a bench-only peer

    class PeerOrder(UUIDv7AuditBase):
        """advanced-alchemy: UUIDv7 id, ``created_at``/``updated_at`` set in Python."""

        __tablename__ = "peer_orders"
        customer: Mapped[str] = mapped_column(String(255))
        quantity: Mapped[int]
        note: Mapped[str | None]

    return PeerOrder


PEER_CANNOT = (
    "what advanced-alchemy's `UUIDv7AuditBase` does not express: the timestamps come from the "
    "client's clock (Python defaults), not the database's; `updated_at` moves only through the "
    "ORM (`onupdate` and a session listener), so raw SQL and other clients leave it stale (pgkeel: "
    "a trigger); the id has no server default, so an INSERT outside the ORM must supply it"
)


@contextmanager
def counting_inserts(engine: Engine) -> Iterator[list[int]]:
    """Rows per INSERT statement sent while the block runs."""
    rows: list[int] = []

    def count(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        if statement.startswith("INSERT"):
            rows.append(statement.count("%(id"))

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield rows
    finally:
        event.remove(engine, "before_cursor_execute", count)


@dataclass(frozen=True)
class Timing:
    """One insert of ``ROWS`` rows: wall seconds, this process's CPU seconds, rows per INSERT."""

    wall: float
    cpu: float
    batches: list[int]


def insert_rows(engine: Engine, model: Callable[..., object], count: int = ROWS) -> Timing:
    """Build ``count`` objects, add them, commit."""
    gc.collect()  # both models start from the same garbage-collector state
    with counting_inserts(engine) as rows:
        started, cpu_started = time.perf_counter(), time.process_time()
        with Session(engine) as session:
            session.add_all([model(customer=f"c{n}", quantity=n, note=None) for n in range(count)])
            session.commit()
        timing = Timing(time.perf_counter() - started, time.process_time() - cpu_started, rows)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {model.__tablename__}"))  # type: ignore[attr-defined]
    return timing


def construct_only(model: Callable[..., object]) -> float:
    """Seconds to build ``ROWS`` objects (no session): the cost of the id at construction."""
    started = time.perf_counter()
    objects = [model(customer=f"c{n}", quantity=n, note=None) for n in range(ROWS)]
    elapsed = time.perf_counter() - started
    assert len(objects) == ROWS
    return elapsed


def measure(engine: Engine, models: dict[str, Callable[..., object]]) -> list[dict[str, Timing]]:
    """``RUNS`` rounds of adjacent inserts, one per model, each round in another order."""
    for model in models.values():
        insert_rows(engine, model, WARM_UP_ROWS)
    rounds = []
    for run in range(RUNS):
        order = list(models.items())
        order = order[run % len(order) :] + order[: run % len(order)]
        order = order if run % 2 == 0 else order[::-1]
        rounds.append({name: insert_rows(engine, model) for name, model in order})
    return rounds


def _row(label: str, timing: Timing, ratio: str, goal: str, count: int = ROWS) -> str:
    single = sum(1 for batch in timing.batches if batch == 1)
    statements = len(timing.batches)
    cells = [
        label,
        f"{timing.wall:.2f} s",
        f"{count / timing.wall:,.0f}",
        ratio,
        f"{timing.cpu:.2f} s",
        f"{statements:,} ({_rows(count // max(statements, 1))} each)",
        f"{single:,}",
        goal,
    ]
    return "| " + " | ".join(cells) + " |"


def _rows(count: int) -> str:
    return "1 row" if count == 1 else f"{count:,} rows"


def _median_timing(timings: list[Timing]) -> Timing:
    return Timing(
        statistics.median(t.wall for t in timings),
        statistics.median(t.cpu for t in timings),
        timings[-1].batches,
    )


def _ratios(rounds: list[dict[str, Timing]], name: str, baseline: str) -> str:
    wall = statistics.median(r[name].wall / r[baseline].wall for r in rounds)
    cpu = statistics.median(r[name].cpu / r[baseline].cpu for r in rounds)
    return f"{wall:.2f}x (CPU {cpu:.2f}x)"


def run() -> str:
    """Run the measurement on a throwaway cluster and return the Markdown section."""
    load_before = os.getloadavg()[0]
    peer = _peer_model()
    models: dict[str, Callable[..., object]] = {"pgkeel": BenchOrder, "plain": PlainOrder}
    if peer is not None:
        models["peer"] = peer
    with provide_server({}) as server:
        engine = create_engine(create_database(server.url, "bench_models"))
        try:
            Base.metadata.create_all(engine, tables=[Base.metadata.tables["bench_orders"]])
            Plain.metadata.create_all(engine)
            if peer is not None:
                peer.metadata.create_all(engine, tables=[peer.__table__])  # type: ignore[attr-defined]
            rounds = measure(engine, models)
            naive = insert_rows(engine, NaiveOrder, NAIVE_ROWS)
            built = {
                name: min(construct_only(model) for _ in range(BUILDS))
                for name, model in models.items()
            }
        finally:
            engine.dispose()
    timings = {name: _median_timing([r[name] for r in rounds]) for name in models}
    ratio = statistics.median(r["pgkeel"].wall / r["plain"].wall for r in rounds)
    batched = all(count > 1 for r in rounds for count in r["pgkeel"].batches)
    verdict = "met" if ratio <= GOAL_RATIO and batched else "NOT met"
    header = [
        (
            "| model | wall (median) | rows/s | ratio vs hand-written | client CPU | INSERTs "
            "| row-at-a-time | goal |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = [
        _row(
            "`BaseModel` subclass",
            timings["pgkeel"],
            _ratios(rounds, "pgkeel", "plain"),
            f"<= {GOAL_RATIO:.2f}x and 0 row-at-a-time: {verdict}",
        ),
        _row("baseline: hand-written model", timings["plain"], "1.00x", ""),
    ]
    if peer is not None:
        rows.append(
            _row(
                "peer: advanced-alchemy `UUIDv7AuditBase` subclass",
                timings["peer"],
                _ratios(rounds, "peer", "plain"),
                "",
            )
        )
    else:
        rows.append(f"| peer: advanced-alchemy | {not_installed('advanced-alchemy')} |||||||")
    per_row = (naive.wall / NAIVE_ROWS) / (timings["plain"].wall / ROWS)
    rows.append(
        _row(
            f"for contrast: hand-written, server id default, no insert sentinel (1 run of "
            f"{NAIVE_ROWS:,} rows; ratio per row)",
            naive,
            f"{per_row:.2f}x",
            "",
            NAIVE_ROWS,
        )
    )
    built_text = ", ".join(
        f"{built[name]:.2f} s {label}"
        for name, label in (
            ("pgkeel", "with `BaseModel`"),
            ("plain", "by hand"),
            ("peer", "with advanced-alchemy"),
        )
        if name in built
    )
    notes = (
        f"Each measurement builds {ROWS:,} objects, adds them to a plain `Session` and commits "
        "(no library's session hooks: the model bases are what is measured). "
        "`created_at`/`updated_at` come back through `INSERT ... RETURNING` for pgkeel and the "
        f"hand-written model. {RUNS} rounds after one warm-up insert of {WARM_UP_ROWS:,} rows "
        "each; each round inserts with every model back to back, in a rotating order; ratios "
        "are medians of the "
        "rounds' ratios (wall clock, and this process's CPU time, which a busy machine "
        "disturbs less). Building the objects alone, no session "
        f"({BUILT_HOW}): {built_text} (in pgkeel's and the hand-written model, the flush makes the "
        "UUIDv7 of an object whose id was not read). Throwaway cluster: fsync and "
        "synchronous_commit off."
    )
    if peer is not None:
        versus = _ratios(rounds, "pgkeel", "peer")
        notes += f" pgkeel against advanced-alchemy: {versus}; {PEER_CANNOT}."
    load = f"Load average (1 min) before and after: {load_before:.1f}, {os.getloadavg()[0]:.1f}."
    return f"{notes} {load}\n\n" + "\n".join(header + rows)
