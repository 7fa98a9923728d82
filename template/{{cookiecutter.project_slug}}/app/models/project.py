"""Projects: work of a {% if cookiecutter.__tenants == "yes" %}tenant{% else %}team{% endif %}, optionally owned by a user."""

import uuid

from pgkeel import {% if cookiecutter.__tenants == "yes" %}MultiTenantModel{% else %}BaseModel{% endif %}, SoftDeleteMixin, Str255, VersionedMixin
from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.user import User


class Project({% if cookiecutter.__tenants == "yes" %}MultiTenantModel{% else %}BaseModel{% endif %}, SoftDeleteMixin, VersionedMixin):
    """A piece of work; deleting one keeps the row, and every update checks its version."""

    # Unique among live projects{% if cookiecutter.__tenants == "yes" %} of a tenant{% endif %}: a deleted project frees its name, and restoring
    # it fails while a live project has taken the name.
    name: Mapped[Str255] = mapped_column(unique=True)
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey(User.id))
    owner: Mapped[User | None] = relationship()
