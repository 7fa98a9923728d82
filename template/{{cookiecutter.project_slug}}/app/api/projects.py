"""Projects over REST: keyset pages, optimistic locking by ETag, soft delete and restore.

- ``GET /projects?limit=&after=``: pages in creation order; ``next`` (and a ``Link`` header)
  holds the URL of the next page, with an opaque cursor in ``after``.
- ``GET /projects/{id}``: the project, its version as ``ETag``.
- ``POST /projects``: 201, ``Location`` and ``ETag``; 409 if a live project has the name.
- ``PATCH /projects/{id}``: needs ``If-Match: <ETag>`` (428 without, 412 if stale).
- ``DELETE /projects/{id}``: a soft delete (204; then 404); ``If-Match`` is checked if sent.
- ``POST /projects/{id}/restore``: brings a deleted project back; 409 if a live one took its name.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, {% if cookiecutter.__tenants == "yes" %}Depends, {% endif %}Header, Query, Request, Response
from pgkeel.pagination import InvalidCursorError, paginate
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from app.api.database import SessionDep
from app.api.problems import Problem
from app.api.schemas import ProjectIn, ProjectOut, ProjectPage, ProjectPatch
{%- if cookiecutter.__tenants == "yes" %}
from app.api.tenancy import NamedTenantDep, check_tenant_exists, require_tenant
{%- endif %}
from app.models import Project, User

router = APIRouter(prefix="/projects", tags=["projects"]{% if cookiecutter.__tenants == "yes" %}, dependencies=[Depends(require_tenant)]{% endif %})
{%- if cookiecutter.__tenants == "yes" %}
# The list checks that the tenant exists only when its page is empty: a row on the page is a row
# of the request's tenant (row-level security), whose foreign key proves that the tenant exists.
# Every other route of `router` checks first (require_tenant).
pages = APIRouter(prefix="/projects", tags=["projects"])
{%- else %}
pages = router
{%- endif %}
IfMatch = Annotated[str | None, Header()]


def _not_found(project_id: uuid.UUID) -> Problem:
    return Problem(404, "Not Found", f"No project {project_id}.")


def etag(project: Project) -> str:
    """The ``ETag`` of a project's current version."""
    return f'"{project.version}"'


def _quoted(tag: str) -> bool:
    """Whether ``tag`` is an entity tag as HTTP writes it: ``"3"``."""
    return len(tag) >= 2 and tag[0] == tag[-1] == '"'


def _check_version(project: Project, if_match: str | None, *, required: bool) -> None:
    """428 without ``If-Match`` (when required), 412 when it names another version."""
    if if_match is None:
        if required:
            raise Problem(
                428,
                "Precondition Required",
                f"Send If-Match: {etag(project)} (the ETag of the version you changed), so that "
                "a change made meanwhile by someone else is not overwritten.",
            )
        return
    # The ETag names a version of the project's state, not bytes of one representation: a weak
    # tag of the same version (a proxy that compresses the body makes ``W/"3"`` of ``"3"``) means
    # the same version, and refusing it would leave such clients unable to update at all.
    wanted = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    unquoted = sorted(tag for tag in wanted if tag != "*" and not _quoted(tag))
    if unquoted:
        raise Problem(
            400,
            "Malformed If-Match",
            f"If-Match takes entity tags in double quotes, as the ETag header gives them: "
            f'{unquoted[0]} has none. Fix: send If-Match: "{unquoted[0]}".',
        )
    if "*" not in wanted and etag(project) not in wanted:
        raise Problem(
            412,
            "Precondition Failed",
            f"The project changed: it is at version {etag(project)}, you sent {if_match}. Fix: "
            "GET it again, reapply your change, and send the new ETag.",
            headers={"ETag": etag(project)},
        )


async def _load(session: AsyncSession, project_id: uuid.UUID, *, deleted: bool = False) -> Project:
    options = {"include_deleted": True} if deleted else {}
    project = await session.get(Project, project_id, execution_options=options)
    if project is None:
        raise _not_found(project_id)
    return project


async def _check_owner(session: AsyncSession, owner_id: uuid.UUID | None) -> None:
    """422 for an owner who is not a live user{% if cookiecutter.__tenants == "yes" %} of this tenant (the same for another tenant's){% endif %}."""
    if owner_id is not None and await session.get(User, owner_id) is None:
        raise Problem(422, "Unknown owner", f"No user {owner_id}. Fix: send the id of a user.")


async def _commit(session: AsyncSession, project: Project) -> None:
    """Commit; a taken name is a 409, a concurrent change a 412."""
    name = project.name  # read before a failed commit expires the object
    try:
        await session.commit()
    except IntegrityError as error:
        await session.rollback()
        if isinstance(error.orig, psycopg.errors.UniqueViolation):
            raise Problem(
                409,
                "Conflict",
                f"A live project is named {name!r}. Fix: choose another name, or delete "
                "or rename that project first.",
            ) from None
        raise
    except StaleDataError:
        await session.rollback()
        raise Problem(
            412,
            "Precondition Failed",
            "The project changed while this request ran. Fix: GET it again and retry.",
        ) from None


def _shown(project: Project, response: Response) -> ProjectOut:
    response.headers["ETag"] = etag(project)
    return ProjectOut.model_validate(project)


# The list reads the columns its page shows, not whole objects: no identity map, no ORM state
# per row; pgkeel's filters apply to column selects of a model as to the model itself.
_LISTED = select(
    Project.id,
    Project.name,
    Project.owner_id,
    Project.version,
    Project.created_at,
    Project.updated_at,
)
_LISTED_FIELDS = tuple(column.key for column in _LISTED.selected_columns)


@pages.get("", response_model=ProjectPage)
async def list_projects(
    request: Request,
    response: Response,
{%- if cookiecutter.__tenants == "yes" %}
    tenant: NamedTenantDep,
{%- endif %}
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(max_length=512)] = None,
) -> dict[str, Any]:
    """A page of live projects, oldest first."""
    # The busiest read opens its session here rather than through SessionDep: a dependency with
    # yield costs FastAPI more per request than the page's query does. Committed at the end, as
    # get_session does (app/api/database.py says why reads commit).
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions.begin() as session:
        try:
            page = await session.run_sync(paginate, _LISTED, limit=limit, after=after)
        except InvalidCursorError as error:
            raise Problem(400, "Invalid cursor", str(error)) from None
{%- if cookiecutter.__tenants == "yes" %}
        if not page.items:
            await check_tenant_exists(session, tenant)
{%- endif %}
    following = None
    if page.next_cursor is not None:
        following = str(request.url.include_query_params(limit=limit, after=page.next_cursor))
        response.headers["Link"] = f'<{following}>; rel="next"'
    items = [dict(zip(_LISTED_FIELDS, row, strict=True)) for row in page.items]
    return {"items": items, "next": following}  # checked and written as a ProjectPage


@router.get("/{project_id}")
async def get_project(project_id: uuid.UUID, session: SessionDep, response: Response) -> ProjectOut:
    """One live project."""
    return _shown(await _load(session, project_id), response)


@router.post("", status_code=201)
async def create_project(body: ProjectIn, session: SessionDep, response: Response) -> ProjectOut:
    """A new project."""
    await _check_owner(session, body.owner_id)
    project = Project(name=body.name, owner_id=body.owner_id)
    session.add(project)
    await _commit(session, project)
    response.headers["Location"] = f"/projects/{project.id}"
    return _shown(project, response)


@router.patch("/{project_id}")
async def update_project(
    project_id: uuid.UUID,
    body: ProjectPatch,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> ProjectOut:
    """Change a project, if it is still at the version the client read."""
    project = await _load(session, project_id)
    _check_version(project, if_match, required=True)
    changes = body.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] is None:
        raise Problem(422, "Invalid request", "body.name: a project's name cannot be null.")
    if "owner_id" in changes:
        await _check_owner(session, changes["owner_id"])
    for name, value in changes.items():
        setattr(project, name, value)
    await _commit(session, project)
    return _shown(project, response)


@router.delete("/{project_id}", status_code=204)
async def delete_project(
    project_id: uuid.UUID, session: SessionDep, if_match: IfMatch = None
) -> Response:
    """Soft-delete a project: it leaves every list and read, and can be restored."""
    project = await _load(session, project_id)
    _check_version(project, if_match, required=False)
    await session.delete(project)
    await _commit(session, project)
    return Response(status_code=204)


@router.post("/{project_id}/restore")
async def restore_project(
    project_id: uuid.UUID, session: SessionDep, response: Response
) -> ProjectOut:
    """Bring a deleted project back (a live one is returned as it is)."""
    project = await _load(session, project_id, deleted=True)
    if project.deleted_at is not None:
        project.restore()
        await _commit(session, project)
    return _shown(project, response)
