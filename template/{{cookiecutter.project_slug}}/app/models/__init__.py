"""Every model of the service. Alembic's autogenerate sees only the models imported here."""

from app.models.base import Base
from app.models.project import Project
{%- if cookiecutter.__tenants == "yes" %}
from app.models.tenant import Tenant
{%- endif %}
from app.models.user import User

__all__ = ["Base", "Project",{% if cookiecutter.__tenants == "yes" %} "Tenant",{% endif %} "User"]
