"""``python -m app.api``: the API under uvicorn on ``HOST``:``PORT``, request ids in its log."""

from __future__ import annotations

import os

import uvicorn

from app.api.observability import log_config
from app.core.startup import check_or_exit


def main() -> None:
    """Check the database and the role (see app.core.startup), then serve ``create_app()``."""
    check_or_exit()
    uvicorn.run(
        "app.api:create_app",
        factory=True,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8000")),
        log_config=log_config(os.environ.get("LOG_LEVEL", "INFO")),
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
