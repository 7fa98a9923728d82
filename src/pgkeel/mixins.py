"""The mixins every table starts from: UUIDv7 keys, database-kept timestamps, optimistic locking.

Each mixin works alone on ``Base``; ``BaseModel`` combines the first two, as the standards'
"BaseModel (id UUID, created_at, updated_at)".
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import FetchedValue, event, func, text
from sqlalchemy.orm import Mapped, mapped_column
from uuid_utils.compat import uuid7

from pgkeel.base import Base
from pgkeel.dbobjects import attach
from pgkeel.ddl import timestamp_objects

if TYPE_CHECKING:
    from sqlalchemy import Table

SERVER_UUID_DEFAULT = "gen_random_uuid()"


def new_id() -> uuid.UUID:
    """A new RFC 9562 UUIDv7: time-ordered, so primary-key B-trees stay compact."""
    return uuid7()


class UUIDPrimaryKeyMixin:
    """``id uuid PRIMARY KEY``: UUIDv7 from Python when the object is built, a default in SQL.

    The id exists before flush (it can be used in URLs, logs and foreign keys at once) and ORM
    bulk inserts stay batched. Raw SQL inserts without an id get ``gen_random_uuid()``.
    """

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True,
        default=new_id,
        server_default=text(SERVER_UUID_DEFAULT),
        sort_order=-100,
        comment="Primary key: UUIDv7 from the application, gen_random_uuid() from raw SQL.",
    )


@event.listens_for(UUIDPrimaryKeyMixin, "init", propagate=True)
def _assign_id(_target: object, _args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Give a new object its id when it is constructed, unless one was passed."""
    if kwargs.get("id") is None:
        kwargs["id"] = new_id()


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
        attach(table, *timestamp_objects(table))

    @classmethod
    def _pgkeel_mapper_args(cls) -> dict[str, Any]:
        return {"eager_defaults": True}


class VersionedMixin:
    """``version integer NOT NULL``: optimistic locking; a stale update raises StaleDataError."""

    version: Mapped[int] = mapped_column(
        server_default=text("1"),
        sort_order=102,
        comment="Row version for optimistic locking, incremented on every ORM update.",
    )

    @classmethod
    def _pgkeel_mapper_args(cls) -> dict[str, Any]:
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


class BaseModel(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """Abstract base of most tables: a UUIDv7 ``id``, ``created_at`` and ``updated_at``."""

    __abstract__ = True
