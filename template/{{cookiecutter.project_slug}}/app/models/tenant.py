"""Tenants: the organisations whose rows row-level security keeps apart."""

from pgkeel import BaseModel, Str255
from sqlalchemy.orm import Mapped, mapped_column


class Tenant(BaseModel):
    """An organisation using the service; every tenant-scoped row belongs to one."""

    name: Mapped[Str255] = mapped_column(unique=True)
