"""The declarative base of the service's models: pgkeel's ``Base``.

Its metadata carries pgkeel's naming convention and type map, so a model gives the same names
in Python, in the migration and in the catalog. Models usually derive from pgkeel's abstract
bases built on it: ``BaseModel`` (UUIDv7 ``id``, ``created_at``, ``updated_at``){% if cookiecutter.__tenants == "yes" %} and
``MultiTenantModel`` (the same, plus ``tenant_id`` and row-level security){% endif %}.
"""

from pgkeel import Base

__all__ = ["Base"]
