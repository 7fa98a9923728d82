"""Users: the people who sign in."""

from pgkeel import {% if cookiecutter.multi_tenant == "yes" %}MultiTenantModel{% else %}BaseModel{% endif %}, SoftDeleteMixin, Str255
from sqlalchemy.orm import Mapped, mapped_column


class User({% if cookiecutter.multi_tenant == "yes" %}MultiTenantModel{% else %}BaseModel{% endif %}, SoftDeleteMixin):
    """A person who signs in. Deleting one keeps the row and frees the email for a new user."""

    email: Mapped[Str255] = mapped_column(unique=True)
    display_name: Mapped[Str255]
