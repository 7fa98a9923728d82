"""Projects: work owned by a user."""

import uuid

from pgkeel import {% if cookiecutter.multi_tenant == "yes" %}MultiTenantModel{% else %}BaseModel{% endif %}, Str255
from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.user import User


class Project({% if cookiecutter.multi_tenant == "yes" %}MultiTenantModel{% else %}BaseModel{% endif %}):
    """A piece of work with one owner; the migration indexes its owner_id foreign key."""

    name: Mapped[Str255]
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(User.id))
    owner: Mapped[User] = relationship()
