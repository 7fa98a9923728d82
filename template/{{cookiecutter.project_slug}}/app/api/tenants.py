"""Tenants: created by the operator of the service (put this route behind your admin auth)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy.exc import IntegrityError

from app.api.database import SessionDep
from app.api.problems import Problem
from app.api.schemas import TenantIn, TenantOut
from app.models import Tenant

router = APIRouter(prefix="/tenants", tags=["tenants"])


@router.post("", status_code=201)
async def create_tenant(body: TenantIn, session: SessionDep, response: Response) -> TenantOut:
    """A new tenant; its id is what clients send as ``X-Tenant-ID``."""
    tenant = Tenant(name=body.name)
    session.add(tenant)
    try:
        await session.commit()
    except IntegrityError:
        raise Problem(
            409, "Conflict", f"A tenant named {body.name!r} exists. Fix: choose another name."
        ) from None
    response.headers["Location"] = f"/tenants/{tenant.id}"
    return TenantOut.model_validate(tenant)
