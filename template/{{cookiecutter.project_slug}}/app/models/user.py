"""Users: the people who sign in."""

from pgkeel import {% if cookiecutter.__tenants == "yes" %}MultiTenantModel{% else %}BaseModel{% endif %}, SoftDeleteMixin, Str255
from sqlalchemy.orm import Mapped, mapped_column


class User({% if cookiecutter.__tenants == "yes" %}MultiTenantModel{% else %}BaseModel{% endif %}, SoftDeleteMixin):
    """A person who signs in. Deleting one keeps the row and frees the email for a new user."""

    # Unique among live users{% if cookiecutter.__tenants == "yes" %} of a tenant{% endif %}: pgkeel turns unique=True on a soft-delete model into a
    # partial unique index{% if cookiecutter.__tenants == "yes" %} on (tenant_id, email){% endif %} WHERE deleted_at IS NULL.
    email: Mapped[Str255] = mapped_column(unique=True)
    display_name: Mapped[Str255]
