"""`make demo`: start a throwaway PostgreSQL with pgkeel, create tables in it, show what happened.

It never uses DATABASE_URL (your own database stays untouched): the server comes from the
PostgreSQL binaries on this machine or the pgserver wheel, or from testcontainers, and it is
stopped and removed at the end.
"""

from __future__ import annotations

import sys
import time
import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, create_engine, func, inspect, select, text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.schema import CreateIndex, CreateTable

from pgkeel.database import provide_server
from pgkeel.errors import PgkeelError


class Base(DeclarativeBase):
    """The demo's models."""


class Customer(Base):
    """A customer: UUID key made by the server, timestamps kept by the server."""

    __tablename__ = "customers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Invoice(Base):
    """An invoice of one customer; its foreign key has an index."""

    __tablename__ = "invoices"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"), index=True)
    total_cents: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


def say(line: str = "") -> None:
    """Print one line of the demo's story."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def show_ddl(statement: CreateTable | CreateIndex, dialect: Dialect) -> None:
    """Print one DDL statement as PostgreSQL will receive it."""
    lines = str(statement.compile(dialect=dialect)).strip().splitlines()
    say("\n".join(f"    {line.rstrip()}" for line in lines) + ";")


def show_schema(dialect: Dialect) -> None:
    """Print the DDL that ``create_all`` is about to run."""
    for table in Base.metadata.sorted_tables:
        show_ddl(CreateTable(table), dialect)
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            show_ddl(CreateIndex(index), dialect)


def demo() -> None:
    """Start the server, create the tables, write and read a row, and say what happened."""
    say("pgkeel demo: a throwaway PostgreSQL and a small schema, created with SQLAlchemy")
    started = time.perf_counter()
    with provide_server({}) as server:
        say(f"- server: {server.origin}, ready in {time.perf_counter() - started:.1f} s")
        engine = create_engine(server.url)
        try:
            with engine.connect() as connection:
                say(f"- {connection.execute(text('select version()')).scalar_one()}")
            say("- creating the tables:")
            show_schema(engine.dialect)
            Base.metadata.create_all(engine)
            say(f"- tables in the database: {sorted(inspect(engine).get_table_names())}")
            with Session(engine) as session:
                acme = Customer(name="Acme")
                session.add(acme)
                session.flush()
                session.add(Invoice(customer_id=acme.id, total_cents=4200))
                session.commit()
                row = session.execute(select(Customer.name, Invoice.total_cents).join(Invoice))
                say(f"- wrote and read back: {tuple(row.one())} (key {acme.id})")
        finally:
            engine.dispose()
    say("- the server is stopped and its directory removed; nothing is left behind")


def main() -> int:
    """Run the demo; a missing PostgreSQL is explained, not dumped as a traceback."""
    try:
        demo()
    except PgkeelError as exc:
        say(f"pgkeel demo could not start PostgreSQL:\n{exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
