"""Example: models that break several rules at once (autogenerate must refuse them all)."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import JSON, Column, DateTime, Integer, Table, Text
from sqlalchemy.orm import DeclarativeBase

from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


Table(
    "event_log",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("happenedAt", DateTime()),
    Column("payload", JSON()),
    Column("note", Text()),
)
