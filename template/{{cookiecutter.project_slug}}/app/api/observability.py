"""A request id on every request, in its response and in every log line written while it runs.

The id comes from the client's ``X-Request-ID`` header when it is a short token, otherwise it is
made here. An error no handler took is logged here, with the id, and answered with a problem
document, so that no log line of a request lacks its id.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
LOG_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"
_ACCEPTED_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_request_id: ContextVar[str] = ContextVar("request_id", default="-")
_log = logging.getLogger(__name__)


def current_request_id() -> str:
    """The id of the request being served, ``-`` outside any request."""
    return _request_id.get()


def _incoming_id(scope: Scope) -> str:
    given = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
    return given if _ACCEPTED_ID.fullmatch(given) else uuid.uuid4().hex


def _internal_error(request_id: str) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": f"The service failed; its log has the details under request id {request_id}.",
        "request_id": request_id,
    }
    return JSONResponse(body, status_code=500, media_type="application/problem+json")


class RequestIdMiddleware:
    """Give each HTTP request an id (``X-Request-ID``) for its response and its log lines."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request with its id set; log and answer an error no handler took."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope)
        token = _request_id.set(request_id)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            _log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if not started:
                await _internal_error(request_id)(scope, receive, send_with_id)
        finally:
            _request_id.reset(token)


def install_request_id_in_logs() -> None:
    """Give every log record a ``request_id`` attribute (``-`` outside requests); idempotent."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "adds_request_id", False):
        return

    def with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        record.request_id = _request_id.get()
        return record

    with_request_id.adds_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(with_request_id)


def log_config(level: str = "INFO") -> dict[str, Any]:
    """uvicorn's ``log_config``: one format, with the request id, for the service and uvicorn."""
    handler = {"class": "logging.StreamHandler", "formatter": "default"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"format": LOG_FORMAT}},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            name: {"handlers": [], "propagate": True, "level": level}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }
