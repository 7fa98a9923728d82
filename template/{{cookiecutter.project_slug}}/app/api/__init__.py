"""The HTTP API: ``create_app()`` builds it; ``python -m app.api`` serves it with uvicorn."""

from app.api.main import create_app

__all__ = ["create_app"]
