"""Projects: work of a {% if cookiecutter.__tenants == "yes" %}tenant{% else %}team{% endif %}, optionally owned by a user."""

import uuid

from pgkeel import {% if cookiecutter.__tenants == "yes" %}MultiTenantModel{% else %}BaseModel{% endif %}, SoftDeleteMixin, Str255, VersionedMixin
{%- if cookiecutter.__tenants == "yes" %}
from pgkeel.tenancy import tenant_foreign_key
from sqlalchemy import Index
{%- else %}
from sqlalchemy import ForeignKey, Index
{%- endif %}
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.user import User


class Project({% if cookiecutter.__tenants == "yes" %}MultiTenantModel{% else %}BaseModel{% endif %}, SoftDeleteMixin, VersionedMixin):
    """A piece of work; deleting one keeps the row, and every update checks its version."""

    # Unique among live projects{% if cookiecutter.__tenants == "yes" %} of a tenant{% endif %}: a deleted project frees its name, and restoring
    # it fails while a live project has taken the name.
    name: Mapped[Str255] = mapped_column(unique=True)
{%- if cookiecutter.__tenants == "yes" %}
    # The owner is a user of the same tenant: the key (tenant_id, owner_id) -> users(tenant_id, id)
    # makes PostgreSQL refuse a project that points at another tenant's user, for every role.
    # A plain ForeignKey(User.id) would not (foreign-key checks bypass row-level security).
    owner_id: Mapped[uuid.UUID | None] = mapped_column()
    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id])

    __table_args__ = (
        tenant_foreign_key("owner_id", "users.id"),
        # Pages in creation order (pgkeel.pagination's default key, created_at then id) within
        # a tenant: each page is one index range scan, however deep.
        Index(None, "tenant_id", "created_at", "id"),
    )
{%- else %}
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey(User.id))
    owner: Mapped[User | None] = relationship()

    # Pages in creation order (pgkeel.pagination's default key, created_at then id): each page
    # is one index range scan, however deep.
    __table_args__ = (Index(None, "created_at", "id"),)
{%- endif %}
