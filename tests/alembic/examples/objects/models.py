"""Example: a trigger function, a trigger and policies of the project's own."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy.orm import DeclarativeBase, Mapped

from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.dbobjects import Policy, RowLevelSecurity, Trigger, TriggerFunction, attach
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.types import TYPE_ANNOTATION_MAP

TRIM_TITLE = TriggerFunction(
    name="documents_trim_title", body="NEW.title := btrim(NEW.title);\nRETURN NEW;"
)
OWNER = "owner = current_user"


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Document(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    title: Mapped[str]
    owner: Mapped[str]


class Note(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    owner: Mapped[str]


attach(
    Document.__table__,
    TRIM_TITLE,
    Trigger(
        table="documents",
        name="trg_documents_trim_title",
        function=TRIM_TITLE,
        events=("INSERT", "UPDATE"),
    ),
    RowLevelSecurity(table="documents"),
    Policy(table="documents", name="owner_only", using=OWNER, with_check=OWNER),
)
attach(
    Note.__table__,
    RowLevelSecurity(table="notes"),
    Policy(table="notes", name="owner_only", using=OWNER, with_check=OWNER),
)
