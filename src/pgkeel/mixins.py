"""The mixins every table starts from: UUIDv7 keys, database-kept timestamps, optimistic locking.

Each mixin works alone on ``Base``; ``BaseModel`` combines the first two, as the standards'
"BaseModel (id UUID, created_at, updated_at)".
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import FetchedValue, event, func, inspect, text
from sqlalchemy.orm import Mapped, mapped_column
from uuid_utils.compat import uuid7

from pgkeel.base import Base
from pgkeel.dbobjects import attach
from pgkeel.ddl import timestamp_objects

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import InstanceState, Mapper

SERVER_UUID_DEFAULT = "gen_random_uuid()"
SERVER_UUID7_SQL = (
    "encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing "
    "substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) "
    "FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid"
)
"""A UUIDv7 made by PostgreSQL, one per row: the 48-bit Unix time in milliseconds over a random
UUID, version bits set from 4 to 7 (used where one Python default would serve many rows)."""


def new_id() -> uuid.UUID:
    """A new RFC 9562 UUIDv7: time-ordered, so primary-key B-trees stay compact."""
    return uuid7()


class UUIDPrimaryKeyMixin:
    """``id uuid PRIMARY KEY``: a UUIDv7 from Python, a default in SQL for raw inserts.

    A new object has its id before flush: reading ``obj.id`` makes it (it can go into a URL, a
    log line or a foreign key at once), and a flush makes the ids nobody read, so ids follow
    the order rows are inserted in and the primary-key B-tree grows at its right edge. Objects
    cost nothing extra to build and ORM inserts stay batched. Raw SQL inserts without an id get
    ``gen_random_uuid()``.
    """

    # ``insert_sentinel``: the ids come from Python, so SQLAlchemy may match the rows of one
    # multi-row ``INSERT ... RETURNING`` to their objects by id. Without it the server default
    # makes the ORM fall back to one INSERT per row whenever it fetches server defaults.
    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True,
        default=new_id,
        server_default=text(SERVER_UUID_DEFAULT),
        insert_sentinel=True,
        sort_order=-100,
        comment="Primary key: UUIDv7 from the application, gen_random_uuid() from raw SQL.",
    )


def _id_on_first_read(_state: InstanceState[Any], value: object, dict_: dict[str, Any]) -> object:
    """``init_scalar``: reading the id of a new object makes it, once."""
    if value is None:
        value = dict_["id"] = new_id()
    return value


def _id_instead_of_none(
    state: InstanceState[Any], value: object, _old: object, _initiator: object
) -> object:
    """``set``: ``id=None`` on a new object means "make one", never a NULL key."""
    return new_id() if value is None and state.key is None else value


@event.listens_for(UUIDPrimaryKeyMixin, "after_mapper_constructed", propagate=True)
def _listen_to_id(_mapper: Mapper[Any], cls: type[UUIDPrimaryKeyMixin]) -> None:
    """Give each mapped class's ``id`` attribute the two listeners above."""
    attribute = cls.id
    event.listen(attribute, "init_scalar", _id_on_first_read, raw=True, retval=True)
    event.listen(attribute, "set", _id_instead_of_none, raw=True, retval=True)


class TimestampMixin:
    """``created_at``/``updated_at timestamptz NOT NULL DEFAULT now()``, kept right by a trigger.

    The ORM reads the new ``updated_at`` from ``UPDATE ... RETURNING`` (eager defaults), with
    no extra SELECT.
    """

    created_at: Mapped[datetime] = mapped_column(
        server_default=func.now(), sort_order=100, comment="When the row was inserted."
    )
    updated_at: Mapped[datetime] = mapped_column(
        server_default=func.now(),
        server_onupdate=FetchedValue(),
        sort_order=101,
        comment="When the row was last updated (set by a trigger).",
    )

    @classmethod
    def _pgkeel_setup_table(cls, table: Table) -> None:
        # A joined-inheritance subclass's own table holds neither column: its parent's does.
        if {"created_at", "updated_at"} <= set(table.c.keys()):
            attach(table, *timestamp_objects(table))

    @classmethod
    def _pgkeel_mapper_args(cls) -> dict[str, Any]:
        return {"eager_defaults": True}


@event.listens_for(TimestampMixin, "after_update", propagate=True)
def _forget_written_created_at(_mapper: Mapper[Any], _conn: Connection, target: object) -> None:
    """The trigger kept the old ``created_at``: reload it rather than trust the value written."""
    state = inspect(target)
    if "created_at" in state.committed_state and state.session is not None:
        state.session.expire(target, ["created_at"])


class VersionedMixin:
    """``version integer NOT NULL``: optimistic locking; a stale update raises StaleDataError."""

    version: Mapped[int] = mapped_column(
        server_default=text("1"),
        sort_order=102,
        comment="Row version for optimistic locking, incremented on every ORM update.",
    )

    @classmethod
    def _pgkeel_mapper_args(cls) -> dict[str, Any]:
        column = cls.__table__.c.get("version")  # type: ignore[attr-defined]
        # A joined-inheritance subclass has no version column of its own: its mapper inherits
        # the parent's version_id_col.
        return {} if column is None else {"version_id_col": column}


class BaseModel(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """Abstract base of most tables: a UUIDv7 ``id``, ``created_at`` and ``updated_at``."""

    __abstract__ = True
