"""Errors as problem details (RFC 9457): ``application/problem+json`` with the request id."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException

from app.api.observability import current_request_id

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 5
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeoutError)
"""What the database's absence raises: no connection, a lost one, a full pool, a cancelled query."""
_log = logging.getLogger(__name__)


class Problem(Exception):  # noqa: N818  # named after what it is: an RFC 9457 problem
    """An error the API answers with: status, a short title and a detail saying what to do."""

    def __init__(
        self, status: int, title: str, detail: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers


def problem_response(
    path: str,
    status: int,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    **extra: Any,  # extension members of the problem
) -> JSONResponse:
    """The problem document of an error (``type`` is ``about:blank``: the status says it all)."""
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": path,
        "request_id": current_request_id(),
        **extra,
    }
    return JSONResponse(
        jsonable_encoder(body), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


async def _on_problem(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, Problem)  # noqa: S101  # registered for Problem only
    return problem_response(
        request.url.path, error.status, error.title, error.detail, error.headers
    )


async def _on_http_error(request: Request, error: Exception) -> JSONResponse:
    """Starlette's own errors (no such route, method not allowed) in the same shape."""
    assert isinstance(error, HTTPException)  # noqa: S101  # registered for HTTPException only
    return problem_response(
        request.url.path, error.status_code, str(error.detail), str(error.detail), error.headers
    )


async def _on_invalid_request(request: Request, error: Exception) -> JSONResponse:
    """A body, query or path that does not fit the schema: 422 with every error listed."""
    assert isinstance(error, RequestValidationError)  # noqa: S101  # registered for it only
    errors = [
        {"location": ".".join(str(part) for part in item["loc"]), "message": item["msg"]}
        for item in error.errors()
    ]
    detail = "; ".join(f"{item['location']}: {item['message']}" for item in errors)
    return problem_response(request.url.path, 422, "Invalid request", detail, errors=errors)


async def _on_database_unavailable(request: Request, error: Exception) -> JSONResponse:
    """503 with ``Retry-After`` when the database does not answer: the reason stays in the log.

    The driver's message names hosts, ports and roles; the client learns only to retry.
    """
    _log.error("database unavailable: %s", error, exc_info=error)
    return problem_response(
        request.url.path,
        503,
        "Service Unavailable",
        "The database is not answering. Retry in a few seconds.",
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every handled error as a problem document."""
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_invalid_request)
    for error in DATABASE_UNAVAILABLE:
        app.add_exception_handler(error, _on_database_unavailable)
