"""Example: an existing project's models, written before pgkeel (its own base and conventions).

Integer keys, a singular table name, ``modified_at`` instead of ``updated_at``, an interval
column, and a naming convention whose long names SQLAlchemy shortens with a hash.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import DateTime, ForeignKey, Index, Interval, MetaData, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

CONVENTION = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_references_%(referred_table_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
}


NOW = func.now()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=CONVENTION)


class Workspace(Base):
    __tablename__ = "workspace"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    modified_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class ScheduledMaintenanceWindowAssignment(Base):
    __tablename__ = "scheduled_maintenance_window_assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_identifier_for_assignment: Mapped[int] = mapped_column(
        ForeignKey("workspace.id"), index=True
    )
    every: Mapped[timedelta] = mapped_column(Interval())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    modified_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (Index(None, "every", "workspace_identifier_for_assignment"),)
