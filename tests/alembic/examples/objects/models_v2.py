"""Example, second version: the function, trigger and policy change; notes lose RLS."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy.orm import DeclarativeBase, Mapped

from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.dbobjects import Policy, RowLevelSecurity, Trigger, TriggerFunction, attach
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.types import TYPE_ANNOTATION_MAP

TRIM_TITLE = TriggerFunction(
    name="documents_trim_title", body="NEW.title := btrim(NEW.title, ' .');\nRETURN NEW;"
)
OWNER = "owner = current_user OR pg_has_role(current_user, 'pg_read_all_data', 'member')"


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
    Trigger(table="documents", name="trg_documents_trim_title", function=TRIM_TITLE),
    RowLevelSecurity(table="documents"),
    Policy(table="documents", name="owner_only", using=OWNER, with_check=OWNER),
)
