"""What the API reads and writes (pydantic v2); unknown fields in a request are refused."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _without_nul(value: str) -> str:
    """``value``, refused if it holds a NUL character, which PostgreSQL text cannot store."""
    if "\x00" in value:
        raise ValueError(
            "contains a NUL character (\\u0000), which the database cannot store; remove it"
        )
    return value


# Every text field of a request: 1 to 255 characters, none of them NUL.
Name = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_without_nul)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)
{%- if cookiecutter.__tenants == "yes" %}


class TenantIn(_Input):
    """A new tenant."""

    name: Name


class TenantOut(_Output):
    """A tenant; its id goes in the ``X-Tenant-ID`` header."""

    id: uuid.UUID
    name: str
{%- endif %}


class ProjectIn(_Input):
    """A new project."""

    name: Name
    owner_id: uuid.UUID | None = None


class ProjectPatch(_Input):
    """The fields of a project to change; the others stay as they are."""

    name: Name | None = None
    owner_id: uuid.UUID | None = None


class ProjectOut(_Output):
    """A project as the API shows it; ``version`` is also its ``ETag``."""

    id: uuid.UUID
    name: str
    owner_id: uuid.UUID | None
    version: int
    created_at: datetime
    updated_at: datetime


class ProjectPage(BaseModel):
    """One page of projects and the link to the next (``null`` on the last page)."""

    items: list[ProjectOut]
    next: str | None
